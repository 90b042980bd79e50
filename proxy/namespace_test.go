package proxy

import (
	"net/http"
	"regexp"
	"testing"
	"time"
)

func TestNamespaces(t *testing.T) {
	type step struct {
		token, user string // user "" = no user member
		want        string // X-Cache-Status
	}
	tests := []struct {
		ns    string
		steps []step
	}{
		{"key", []step{
			{"sk-a", "", "MISS"},
			{"sk-b", "", "MISS"}, // another tenant never sees A's entry
			{"sk-a", "", "HIT"},
			{"sk-b", "", "HIT"},
			{"sk-a", "alice", "HIT"}, // the body's user is not part of the key
			{"", "", "MISS"},         // no token: its own namespace
		}},
		{"shared", []step{
			{"sk-a", "", "MISS"},
			{"sk-b", "", "HIT"},
			{"sk-c", "bob", "HIT"},
			{"", "", "HIT"},
		}},
		{"user", []step{
			{"sk-a", "alice", "MISS"},
			{"sk-b", "alice", "HIT"}, // same user through another key
			{"sk-a", "bob", "MISS"},  // another user through the same key
			{"sk-a", "", "MISS"},     // no user: the key's namespace
			{"sk-a", "", "HIT"},
			{"sk-b", "", "MISS"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.ns, func(t *testing.T) {
			up := newUpstream(t, jsonAnswer(200, completionJSON))
			e := newEnv(t, up, func(o *Options) { o.Namespace = tc.ns })
			calls := 0
			for i, s := range tc.steps {
				extra := ""
				if s.user != "" {
					extra = `"user":"` + s.user + `"`
				}
				opt := withToken(s.token)
				if s.token == "" {
					opt = func(r *http.Request) { r.Header.Del("Authorization") }
				}
				r := e.chat(chatBody(extra), opt)
				if r.status != 200 || r.header.Get("X-Cache-Status") != s.want {
					t.Fatalf("step %d (%+v): status %d, X-Cache-Status %q, want %s", i, s, r.status, r.header.Get("X-Cache-Status"), s.want)
				}
				if s.want == "MISS" {
					calls++
				}
			}
			wantCalls(t, up, calls)
		})
	}
	if _, err := New(Options{Upstream: "http://127.0.0.1:1/v1", Namespace: "tenant"}); err == nil {
		t.Error("New accepted an unknown namespace")
	}
}

// TestUpstreamKey: with an upstream key, the client's token only names the tenant.
func TestUpstreamKey(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	e := newEnv(t, up, func(o *Options) { o.UpstreamAPIKey = "sk-zest-upstream" })
	for _, tc := range []struct{ method, path, body string }{
		{http.MethodPost, "/v1/chat/completions", chatBody("")},
		{http.MethodPost, "/v1/chat/completions", `{"model":`}, // malformed: forwarded as is
		{http.MethodGet, "/v1/models", ""},
		{http.MethodPost, "/v1/embeddings", `{"model":"e","input":"x"}`},
	} {
		e.do(tc.method, tc.path, tc.body, withToken("sk-client-secret"))
		if got := up.last().Header.Get("Authorization"); got != "Bearer sk-zest-upstream" {
			t.Errorf("%s %s: upstream Authorization = %q, want the upstream key", tc.method, tc.path, got)
		}
	}
	// Tenants are still told apart by their own tokens.
	wantStatus(t, e.chat(chatBody(""), withToken("sk-client-other")), 200, "MISS")
	wantStatus(t, e.chat(chatBody(""), withToken("sk-client-secret")), 200, "HIT")
}

// TestClientTokenPassedWithoutUpstreamKey: without an upstream key the client's own token goes upstream.
func TestClientTokenPassedWithoutUpstreamKey(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	e := newEnv(t, up, nil)
	e.chat(chatBody(""), withToken("sk-client-secret"))
	if got := up.last().Header.Get("Authorization"); got != "Bearer sk-client-secret" {
		t.Errorf("upstream Authorization = %q", got)
	}
}

var hexKey = regexp.MustCompile(`^[0-9a-f]{64}$`)

// TestResponseHeaders: X-Cache-Status / X-Cache-Type / Age / X-Cache-Key per DESIGN §3.
func TestResponseHeaders(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	e := newEnv(t, up, nil)

	miss := e.chat(chatBody(""))
	wantStatus(t, miss, 200, "MISS")
	key := miss.header.Get("X-Cache-Key")
	if !hexKey.MatchString(key) {
		t.Errorf("MISS X-Cache-Key = %q, want a hex SHA-256", key)
	}
	if v := miss.header.Get("X-Cache-Type"); v != "" {
		t.Errorf("MISS has X-Cache-Type %q", v)
	}
	if v := miss.header.Get("X-Upstream"); v != "yes" {
		t.Errorf("MISS lost the upstream's headers: X-Upstream = %q", v)
	}

	hit := e.chat(chatBody(""))
	wantStatus(t, hit, 200, "HIT")
	if v := hit.header.Get("X-Cache-Type"); v != "exact" {
		t.Errorf("HIT X-Cache-Type = %q, want exact", v)
	}
	if v := hit.header.Get("X-Cache-Key"); v != key {
		t.Errorf("HIT X-Cache-Key = %q, want the MISS's %q", v, key)
	}
	if ct := hit.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("HIT Content-Type = %q", ct)
	}
	for _, step := range []struct {
		advance int
		want    string
	}{{0, "0"}, {42, "42"}, {3000, "3042"}, {557, "3599"}} {
		e.clock.Advance(time.Duration(step.advance) * time.Second)
		hit := e.chat(chatBody(""))
		wantStatus(t, hit, 200, "HIT")
		if v := hit.header.Get("Age"); v != step.want {
			t.Errorf("Age = %q, want %s", v, step.want)
		}
	}
	wantCalls(t, up, 1)

	by := e.chat(chatBody(`"cache_control":{"type":"no_cache"}`))
	wantStatus(t, by, 200, "BYPASS")
	for _, h := range []string{"X-Cache-Type", "X-Cache-Key", "Age"} {
		if v := by.header.Get(h); v != "" {
			t.Errorf("BYPASS carries %s: %q", h, v)
		}
	}

	// A different body is a different key.
	other := e.chat(chatBody(`"temperature":1`))
	wantStatus(t, other, 200, "MISS")
	if other.header.Get("X-Cache-Key") == key {
		t.Error("two different requests share an X-Cache-Key")
	}
}
