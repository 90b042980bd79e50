package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// modeTable is DESIGN.md §2 (exact columns; the semantic cache is not wired yet).
var modeTable = []struct {
	typ         string
	cc          string // the body member, "" = absent
	read, write bool
}{
	{"absent", "", true, true},
	{"default", `"cache_control":{"type":"default"}`, true, true},
	{"no_cache", `"cache_control":{"type":"no_cache"}`, false, false},
	{"no_store", `"cache_control":{"type":"no_store"}`, true, false},
	{"response_only", `"cache_control":{"type":"response_only"}`, true, true},
	{"semantic_only", `"cache_control":{"type":"semantic_only"}`, false, false},
}

func TestCacheControlModes(t *testing.T) {
	for _, tc := range modeTable {
		t.Run(tc.typ+"/read", func(t *testing.T) {
			up := newUpstream(t, jsonAnswer(200, completionJSON))
			e := newEnv(t, up, nil)
			wantStatus(t, e.chat(chatBody("")), 200, "MISS") // prime with a default request
			r := e.chat(chatBody(tc.cc))
			if tc.read {
				wantStatus(t, r, 200, "HIT")
				wantCalls(t, up, 1)
				if string(r.body) != completionJSON {
					t.Errorf("hit body differs from the stored answer:\n%s", r.body)
				}
			} else {
				wantStatus(t, r, 200, "BYPASS")
				wantCalls(t, up, 2)
			}
		})
		t.Run(tc.typ+"/write", func(t *testing.T) {
			up := newUpstream(t, jsonAnswer(200, completionJSON))
			e := newEnv(t, up, nil)
			first := "MISS"
			if !tc.read {
				first = "BYPASS"
			}
			r := e.chat(chatBody(tc.cc))
			wantStatus(t, r, 200, first)
			if string(r.body) != completionJSON {
				t.Errorf("miss body differs from the upstream's:\n%s", r.body)
			}
			wantCalls(t, up, 1)
			r = e.chat(chatBody(""))
			if tc.write {
				wantStatus(t, r, 200, "HIT")
				wantCalls(t, up, 1)
			} else {
				wantStatus(t, r, 200, "MISS")
				wantCalls(t, up, 2)
			}
		})
	}
}

// TestDefaultTypeOption: the configured default type applies to a request naming none.
func TestDefaultTypeOption(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	e := newEnv(t, up, func(o *Options) { o.DefaultType = TypeNoStore })
	wantStatus(t, e.chat(chatBody("")), 200, "MISS")
	wantStatus(t, e.chat(chatBody("")), 200, "MISS")
	wantCalls(t, up, 2)
	wantStatus(t, e.chat(chatBody(`"cache_control":{"type":"default"}`)), 200, "MISS")
	wantStatus(t, e.chat(chatBody("")), 200, "HIT")
	wantCalls(t, up, 3)
}

func TestMaxAge(t *testing.T) {
	tests := []struct {
		name   string
		cc     string // body member
		header string // Cache-Control header
		ttl    time.Duration
		fresh  time.Duration // still a hit at this age
	}{
		{"body max_age", `"cache_control":{"max_age":60}`, "", 0, 60 * time.Second},
		{"body max_age with type", `"cache_control":{"type":"response_only","max_age":600}`, "", 0, 600 * time.Second},
		{"configured ttl", "", "", 10 * time.Minute, 10 * time.Minute},
		{"default ttl is 1h", "", "", 0, time.Hour},
		{"clamped above 86400", `"cache_control":{"max_age":100000}`, "", 0, 86400 * time.Second},
		{"huge clamped", `"cache_control":{"max_age":99999999999999999999}`, "", 0, 86400 * time.Second},
		{"header max-age", "", "max-age=30", 0, 30 * time.Second},
		{"header max-age clamped", "", "max-age=999999", 0, 86400 * time.Second},
		{"body beats header", `"cache_control":{"max_age":120}`, "max-age=30", 0, 120 * time.Second},
		{"ttl option capped at 24h", "", "", 48 * time.Hour, 86400 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, jsonAnswer(200, completionJSON))
			e := newEnv(t, up, func(o *Options) { o.TTL = tc.ttl })
			var opts []reqOpt
			if tc.header != "" {
				opts = append(opts, withHeader("Cache-Control", tc.header))
			}
			wantStatus(t, e.chat(chatBody(tc.cc), opts...), 200, "MISS")
			e.clock.Advance(tc.fresh - time.Second)
			r := e.chat(chatBody(""))
			wantStatus(t, r, 200, "HIT")
			if want := fmt.Sprint(int((tc.fresh - time.Second) / time.Second)); r.header.Get("Age") != want {
				t.Errorf("Age = %q, want %s", r.header.Get("Age"), want)
			}
			e.clock.Advance(2 * time.Second)
			wantStatus(t, e.chat(chatBody("")), 200, "MISS")
			wantCalls(t, up, 2)
		})
	}
}

func TestCacheControlInvalid(t *testing.T) {
	tests := []struct {
		name, cc, header, param string
	}{
		{"max_age zero", `{"max_age":0}`, "", "cache_control.max_age"},
		{"max_age negative", `{"max_age":-5}`, "", "cache_control.max_age"},
		{"max_age fraction", `{"max_age":1.5}`, "", "cache_control.max_age"},
		{"max_age string", `{"max_age":"60"}`, "", "cache_control.max_age"},
		{"max_age bool", `{"type":"default","max_age":true}`, "", "cache_control.max_age"},
		{"unknown type", `{"type":"forever"}`, "", "cache_control.type"},
		{"type not a string", `{"type":3}`, "", "cache_control"},
		{"string", `"no_store"`, "", "cache_control"},
		{"array", `[{"type":"no_store"}]`, "", "cache_control"},
		{"number", `5`, "", "cache_control"},
		{"header max-age negative", "", "max-age=-1", "cache_control.max_age"},
		{"header max-age fraction", "", "max-age=1.5", "cache_control.max_age"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, jsonAnswer(200, completionJSON))
			e := newEnv(t, up, nil)
			body := chatBody("")
			if tc.cc != "" {
				body = chatBody(`"cache_control":` + tc.cc)
			}
			var opts []reqOpt
			if tc.header != "" {
				opts = append(opts, withHeader("Cache-Control", tc.header))
			}
			for _, stream := range []bool{false, true} {
				b := body
				if stream {
					b = strings.Replace(b, `{`, `{"stream":true,`, 1)
				}
				wantError(t, e.chat(b, opts...), http.StatusBadRequest, "invalid_request_error", tc.param)
			}
			wantCalls(t, up, 0)
		})
	}
}

// TestCacheControlStripped: the top-level member never reaches the upstream, every other
// byte does, unchanged (cache_control inside content blocks included); an ephemeral hint is
// passed on whole and otherwise means the default mode.
func TestCacheControlStripped(t *testing.T) {
	const msgs = `"messages":[{"role":"user","content":[{"type":"text","text":"Long doc…\n","cache_control":{"type":"ephemeral"}}]}]`
	tests := []struct {
		name, body, want string
	}{
		{"middle",
			`{"model":"gpt-4o-mini",  "cache_control":{"type":"no_store","max_age":60},` + msgs + `,"temperature":0.50}`,
			`{"model":"gpt-4o-mini",  ` + msgs + `,"temperature":0.50}`},
		{"first",
			`{"cache_control":{"type":"no_store"},"model":"gpt-4o-mini",` + msgs + `}`,
			`{"model":"gpt-4o-mini",` + msgs + `}`},
		{"last",
			`{"model":"gpt-4o-mini",` + msgs + `,"cache_control":{"type":"no_store"}}`,
			`{"model":"gpt-4o-mini",` + msgs + `}`},
		{"ephemeral passed on",
			`{"model":"gpt-4o-mini","cache_control":{"type":"ephemeral"},` + msgs + `}`,
			`{"model":"gpt-4o-mini","cache_control":{"type":"ephemeral"},` + msgs + `}`},
		{"absent",
			`{"model":"gpt-4o-mini" , ` + msgs + ` , "seed":7 }`,
			`{"model":"gpt-4o-mini" , ` + msgs + ` , "seed":7 }`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, jsonAnswer(200, completionJSON))
			e := newEnv(t, up, nil)
			e.chat(tc.body)
			wantCalls(t, up, 1)
			if got := string(up.last().Body); got != tc.want {
				t.Errorf("upstream body:\n got %s\nwant %s", got, tc.want)
			}
			if !json.Valid(up.last().Body) {
				t.Errorf("upstream body is not valid JSON")
			}
		})
	}
}

// TestEphemeralIsDefaultMode: {"type":"ephemeral"} reads and writes like default.
func TestEphemeralIsDefaultMode(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	e := newEnv(t, up, nil)
	eph := chatBody(`"cache_control":{"type":"ephemeral"}`)
	wantStatus(t, e.chat(eph), 200, "MISS")
	wantStatus(t, e.chat(chatBody("")), 200, "HIT")
	wantStatus(t, e.chat(eph), 200, "HIT")
	wantCalls(t, up, 1)
}

func TestCacheControlHeaders(t *testing.T) {
	tests := []struct {
		name, header, cc string
		read, write      bool
	}{
		{"no-cache", "no-cache", "", false, false},
		{"no-store", "no-store", "", true, false},
		{"No-Store spelled loosely", " No-Store ", "", true, false},
		{"no-cache with others", "max-age=60, no-cache", "", false, false},
		{"max-age alone is default", "max-age=60", "", true, true},
		{"body type beats no-cache", "no-cache", `"cache_control":{"type":"default"}`, true, true},
		{"body type beats no-store", "no-store", `"cache_control":{"type":"response_only"}`, true, true},
		{"body no_cache beats header no-store", "no-store", `"cache_control":{"type":"no_cache"}`, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := withHeader("Cache-Control", tc.header)
			// read: does it answer from a primed entry?
			up := newUpstream(t, jsonAnswer(200, completionJSON))
			e := newEnv(t, up, nil)
			e.chat(chatBody(""))
			r := e.chat(chatBody(tc.cc), hdr)
			if tc.read {
				wantStatus(t, r, 200, "HIT")
				wantCalls(t, up, 1)
			} else {
				wantStatus(t, r, 200, "BYPASS")
				wantCalls(t, up, 2)
			}
			// write: does it store?
			up2 := newUpstream(t, jsonAnswer(200, completionJSON))
			e2 := newEnv(t, up2, nil)
			e2.chat(chatBody(tc.cc), hdr)
			if h := up2.last().Header.Get("Cache-Control"); h != "" {
				t.Errorf("zest's Cache-Control request header went upstream: %q", h)
			}
			r = e2.chat(chatBody(""))
			if tc.write {
				wantStatus(t, r, 200, "HIT")
			} else {
				wantStatus(t, r, 200, "MISS")
			}
		})
	}
}

func TestAllowedTypes(t *testing.T) {
	tests := []struct {
		name   string
		cc     string
		header string
		ok     bool
	}{
		{"allowed", `"cache_control":{"type":"no_store"}`, "", true},
		{"refused", `"cache_control":{"type":"no_cache"}`, "", false},
		{"refused by header", "", "no-cache", false},
		{"none named", "", "", true},
		{"max_age only", `"cache_control":{"max_age":60}`, "", true},
		{"ephemeral", `"cache_control":{"type":"ephemeral"}`, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, jsonAnswer(200, completionJSON))
			e := newEnv(t, up, func(o *Options) { o.AllowedTypes = []string{TypeDefault, TypeNoStore} })
			var opts []reqOpt
			if tc.header != "" {
				opts = append(opts, withHeader("Cache-Control", tc.header))
			}
			r := e.chat(chatBody(tc.cc), opts...)
			if tc.ok {
				if r.status != 200 {
					t.Fatalf("status %d, want 200: %s", r.status, r.body)
				}
				wantCalls(t, up, 1)
				return
			}
			wantError(t, r, http.StatusBadRequest, "invalid_request_error", "cache_control.type")
			wantCalls(t, up, 0)
		})
	}
	if _, err := New(Options{Upstream: "http://127.0.0.1:1/v1", AllowedTypes: []string{"forever"}}); err == nil {
		t.Error("New accepted an unknown allowed type")
	}
}

// TestCacheControlNotInKey: cache_control, stream, stream_options and user do not split entries.
func TestCacheControlNotInKey(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	e := newEnv(t, up, nil)
	wantStatus(t, e.chat(chatBody(`"cache_control":{"type":"default","max_age":300}`)), 200, "MISS")
	for _, extra := range []string{
		``,
		`"cache_control":{"type":"response_only"}`,
		`"user":"someone"`,
		`"stream":false`,
	} {
		r := e.chat(chatBody(extra))
		wantStatus(t, r, 200, "HIT")
		if !bytes.Equal(r.body, []byte(completionJSON)) {
			t.Errorf("%s: hit body differs", extra)
		}
	}
	wantStatus(t, e.chat(chatBody(`"temperature":0`)), 200, "MISS")
	wantCalls(t, up, 2)
}

// TestExpiredNotServedFromFinishedCall: once an answer has expired, the next request goes
// upstream, even when it arrives right after the call that stored it ended (a finished call
// must not take new clients: they would get its answer, Age 0, past max_age or a purge).
func TestExpiredNotServedFromFinishedCall(t *testing.T) {
	var n atomic.Int32
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"c%d","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"x"},"finish_reason":"stop"}]}`, n.Add(1))
	})
	e := newEnv(t, up, nil)
	const rounds = 200
	for i := 1; i <= rounds; i++ {
		r := e.chat(chatBody(`"cache_control":{"max_age":1}`))
		want := fmt.Sprintf(`"id":"c%d"`, i)
		if r.header.Get("X-Cache-Status") != "MISS" || !strings.Contains(string(r.body), want) {
			t.Fatalf("request %d: %q %q %s, want a MISS answered by upstream call %d",
				i, r.header.Get("X-Cache-Status"), r.header.Get("X-Cache-Type"), r.body, i)
		}
		e.clock.Advance(2 * time.Second)
	}
	wantCalls(t, up, rounds)
}
