package proxy

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/zest-proxy/zest/ratelimit"
)

const xAdminToken = "zest-admin-token-for-tests"

// TestAdminOff: without an admin token the admin API does not exist.
func TestAdminOff(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	x := xNewEnv(t, up, xCfg{semantic: true})
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/admin/stats"}, {http.MethodDelete, "/admin/cache"},
	} {
		r := x.do(c.method, c.path, "", withToken(xAdminToken))
		wantError(t, r, http.StatusNotFound, "invalid_request_error", "")
	}
	wantCalls(t, up, 0)
}

// TestAdminAuth: a missing or wrong token (a client's API key included) is a 401.
func TestAdminAuth(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	x := xNewEnv(t, up, xCfg{mod: func(o *Options) { o.AdminToken = xAdminToken }})
	noAuth := func(r *http.Request) { r.Header.Del("Authorization") }
	for name, opt := range map[string]reqOpt{
		"none":        noAuth,
		"client key":  withToken("sk-client-one"),
		"wrong":       withToken(xAdminToken + "x"),
		"prefix":      withToken(xAdminToken[:10]),
		"not bearer":  withHeader("Authorization", "Basic "+xAdminToken),
		"api-key hdr": func(r *http.Request) { noAuth(r); r.Header.Set("Api-Key", xAdminToken) },
	} {
		t.Run(name, func(t *testing.T) {
			for _, m := range []string{http.MethodGet, http.MethodDelete} {
				p := map[string]string{http.MethodGet: "/admin/stats", http.MethodDelete: "/admin/cache"}[m]
				r := x.do(m, p, "", opt)
				wantError(t, r, http.StatusUnauthorized, "invalid_request_error", "")
				if r.header.Get("WWW-Authenticate") == "" {
					t.Error("401 lacks WWW-Authenticate")
				}
			}
		})
	}
	t.Run("right token", func(t *testing.T) {
		if r := x.do(http.MethodGet, "/admin/stats", "", withToken(xAdminToken)); r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
	})
	t.Run("wrong method", func(t *testing.T) {
		r := x.do(http.MethodGet, "/admin/cache", "", withToken(xAdminToken))
		wantError(t, r, http.StatusMethodNotAllowed, "invalid_request_error", "")
		if r.header.Get("Allow") != "DELETE" {
			t.Errorf("Allow = %q", r.header.Get("Allow"))
		}
	})
}

// TestAdminStats: GET /admin/stats reports every layer as JSON.
func TestAdminStats(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	x := xNewEnv(t, up, xCfg{semantic: true, limits: &ratelimit.Limits{RequestsPerMinute: 100},
		mod: func(o *Options) { o.AdminToken = xAdminToken }})
	x.prime(t, xChat(xPromptA, ""))
	wantStatus(t, x.chat(xChat(xPromptA, "")), 200, "HIT")
	wantStatus(t, x.chat(xChat(xPromptA2, "")), 200, "HIT")
	r := x.do(http.MethodGet, "/admin/stats", "", withToken(xAdminToken))
	if r.status != 200 || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, Content-Type %q", r.status, r.header.Get("Content-Type"))
	}
	var st struct {
		Uptime   string `json:"uptime"`
		Upstream string `json:"upstream"`
		Exact    struct {
			Hits    uint64 `json:"hits"`
			Stores  uint64 `json:"stores"`
			Entries int    `json:"entries"`
		} `json:"exact_cache"`
		Semantic struct {
			Lookups uint64 `json:"lookups"`
			Hits    uint64 `json:"hits"`
			Stores  uint64 `json:"stores"`
			Index   struct {
				Entries int `json:"entries"`
			} `json:"index"`
		} `json:"semantic_cache"`
		InFlight *int `json:"coalescing_flights"`
		Buckets  *int `json:"ratelimit_buckets"`
	}
	if err := json.Unmarshal(r.body, &st); err != nil {
		t.Fatalf("stats are not JSON: %v: %s", err, r.body)
	}
	if st.Upstream != up.base() || st.Uptime == "" {
		t.Errorf("upstream %q uptime %q", st.Upstream, st.Uptime)
	}
	if st.Exact.Hits != 1 || st.Exact.Stores != 1 || st.Exact.Entries != 1 {
		t.Errorf("exact = %+v, want 1 hit, 1 store, 1 entry", st.Exact)
	}
	if st.Semantic.Lookups != 2 || st.Semantic.Hits != 1 || st.Semantic.Stores != 1 || st.Semantic.Index.Entries != 1 {
		t.Errorf("semantic = %+v, want 2 lookups, 1 hit, 1 store, 1 entry", st.Semantic)
	}
	if st.InFlight == nil || *st.InFlight != 0 || st.Buckets == nil || *st.Buckets != 1 {
		t.Errorf("flights %v buckets %v, want 0 and 1: %s", st.InFlight, st.Buckets, r.body)
	}
}

// TestAdminPurge: DELETE /admin/cache removes entries from both caches, in the scope asked
// for and no wider.
func TestAdminPurge(t *testing.T) {
	const other = "How tall is the Eiffel Tower?"
	cases := []struct {
		scope           string
		removed         int  // from each cache
		otherTenantGone bool // sk-b's entry removed too
		otherPromptGone bool // sk-a's second entry removed too
	}{
		{"all", 3, true, true},
		{"namespace", 2, false, true},
		{"key", 1, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.scope, func(t *testing.T) {
			up := newUpstream(t, jsonAnswer(200, completionJSON))
			x := xNewEnv(t, up, xCfg{semantic: true, mod: func(o *Options) { o.AdminToken = xAdminToken }})
			a, b := withToken("sk-a"), withToken("sk-b")
			key := x.prime(t, xChat(xPromptA, ""), a).header.Get("X-Cache-Key")
			x.prime(t, xChat(other, ""), a)
			x.prime(t, xChat(xPromptA, ""), b)

			opts := []reqOpt{withToken(xAdminToken)}
			path := "/admin/cache"
			switch tc.scope {
			case "namespace":
				path += "?namespace=" + url.QueryEscape("k:"+xKeyHash("sk-a"))
			case "key":
				opts = append(opts, withHeader("X-Cache-Key", key))
			}
			r := x.do(http.MethodDelete, path, "", opts...)
			if r.status != 200 {
				t.Fatalf("purge: status %d: %s", r.status, r.body)
			}
			var res PurgeResult
			if err := json.Unmarshal(r.body, &res); err != nil {
				t.Fatalf("purge answer is not JSON: %v: %s", err, r.body)
			}
			if res.Scope != tc.scope || res.Exact != tc.removed || res.Semantic != tc.removed {
				t.Errorf("purge result = %+v, want scope %s, %d removed from each cache", res, tc.scope, tc.removed)
			}

			// exact: response_only reads only the exact cache; semantic: a paraphrase with
			// semantic_only reads only the semantic one. A MISS is an upstream call.
			check := func(name string, tok reqOpt, prompt string, gone bool) {
				t.Helper()
				exact := x.chat(xChat(prompt, `"cache_control":{"type":"response_only"}`), tok)
				sem := x.chat(xChat(map[string]string{xPromptA: xPromptA2, other: other}[prompt], `"cache_control":{"type":"semantic_only"}`), tok)
				want := map[bool]string{true: "MISS", false: "HIT"}[gone]
				if exact.header.Get("X-Cache-Status") != want || sem.header.Get("X-Cache-Status") != want {
					t.Errorf("%s: exact %s, semantic %s after the purge, want %s in both",
						name, exact.header.Get("X-Cache-Status"), sem.header.Get("X-Cache-Status"), want)
				}
			}
			check("purged entry", a, xPromptA, true)
			check("same tenant, other entry", a, other, tc.otherPromptGone)
			check("other tenant", b, xPromptA, tc.otherTenantGone)
		})
	}
}

// TestAdminPurgeNoAccidentalAll: a purge request that names a scope badly (an empty
// namespace, as a script with an unset variable sends, or an unknown parameter) must not
// wipe every tenant's cache; it is refused and nothing is removed.
func TestAdminPurgeNoAccidentalAll(t *testing.T) {
	for _, q := range []string{"?namespace=", "?key=0123abcd", "?ns=k:abc"} {
		t.Run(q, func(t *testing.T) {
			up := newUpstream(t, jsonAnswer(200, completionJSON))
			x := xNewEnv(t, up, xCfg{semantic: true, mod: func(o *Options) { o.AdminToken = xAdminToken }})
			x.prime(t, xChat(xPromptA, ""))
			r := x.do(http.MethodDelete, "/admin/cache"+q, "", withToken(xAdminToken))
			if r.status != http.StatusBadRequest {
				t.Errorf("DELETE /admin/cache%s: status %d (%s), want 400", q, r.status, r.body)
			}
			wantStatus(t, x.chat(xChat(xPromptA, "")), 200, "HIT")
			wantCalls(t, up, 1)
		})
	}
}

// TestAdminStatsKeys: every key of GET /admin/stats is snake_case, and with metrics on the
// summed-up metrics are there with what the requests did.
func TestAdminStatsKeys(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	x := xNewEnv(t, up, xCfg{semantic: true, metrics: true, limits: &ratelimit.Limits{RequestsPerMinute: 100},
		mod: func(o *Options) { o.AdminToken = xAdminToken }})
	x.prime(t, xChat(xPromptA, ""))
	wantStatus(t, x.chat(xChat(xPromptA, "")), 200, "HIT")
	r := x.do(http.MethodGet, "/admin/stats", "", withToken(xAdminToken))
	var v any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("stats are not JSON: %v", err)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				if !snakeCase(k) {
					t.Errorf("key %s.%s is not snake_case", path, k)
				}
				walk(path+"."+k, c)
			}
		case []any:
			for _, c := range v {
				walk(path+"[]", c)
			}
		}
	}
	walk("", v)
	var st Stats
	if err := json.Unmarshal(r.body, &st); err != nil {
		t.Fatal(err)
	}
	if st.Metrics == nil {
		t.Fatalf("no metrics in %s", r.body)
	}
	if st.Metrics.Requests.ExactHit != 1 || st.Metrics.Requests.Miss != 1 || st.Metrics.HitRate != 0.5 {
		t.Errorf("metrics requests %+v hit rate %v, want 1 exact hit, 1 miss, 0.5", st.Metrics.Requests, st.Metrics.HitRate)
	}
	if st.Metrics.Latency.Hit.Count != 1 || st.Metrics.Saved.InputTokens == 0 {
		t.Errorf("hit latency count %d, saved %+v", st.Metrics.Latency.Hit.Count, st.Metrics.Saved)
	}
}

func snakeCase(k string) bool {
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return k != ""
}

// TestAdminDashboard: the page and its files are served without the token when the admin API
// is on (they hold no data), with a strict CSP; nothing is served when it is off.
func TestAdminDashboard(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	on := xNewEnv(t, up, xCfg{mod: func(o *Options) { o.AdminToken = xAdminToken }})
	off := xNewEnv(t, up, xCfg{})
	tests := []struct {
		name, path string
		on         bool
		wantStatus int
		wantType   string
	}{
		{"page", "/admin/", true, 200, "text/html"},
		{"script", "/admin/assets/app.js", true, 200, "text/javascript"},
		{"uplot", "/admin/assets/vendor/uplot/uPlot.iife.min.js", true, 200, "text/javascript"},
		{"uplot licence", "/admin/assets/vendor/uplot/LICENSE", true, 200, "text/plain"},
		{"directory", "/admin/assets/vendor/", true, 404, ""},
		{"missing", "/admin/assets/nope.js", true, 404, ""},
		{"traversal", "/admin/assets/../dashboard.go", true, 404, ""},
		{"redirect to the page", "/admin", true, 200, "text/html"},
		{"off", "/admin/", false, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := off
			if tt.on {
				x = on
			}
			r := x.do(http.MethodGet, tt.path, "", func(r *http.Request) { r.Header.Del("Authorization") })
			if r.status != tt.wantStatus {
				t.Fatalf("GET %s: %d, want %d", tt.path, r.status, tt.wantStatus)
			}
			if tt.wantType != "" && !strings.HasPrefix(r.header.Get("Content-Type"), tt.wantType) {
				t.Errorf("Content-Type %q, want %s", r.header.Get("Content-Type"), tt.wantType)
			}
			if tt.wantStatus == 200 && !strings.Contains(r.header.Get("Content-Security-Policy"), "default-src 'none'") {
				t.Errorf("CSP %q", r.header.Get("Content-Security-Policy"))
			}
		})
	}
}
