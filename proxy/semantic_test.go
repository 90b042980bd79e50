package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/zest-proxy/zest/semantic"
	"github.com/zest-proxy/zest/semantic/verify"
)

var xSimilarityRe = regexp.MustCompile(`^[01]\.\d{4}$`)

// xPrime sends body as a miss and waits until its answer is filed in both caches.
func (x *xEnv) prime(t *testing.T, body string, opts ...reqOpt) *result {
	t.Helper()
	before := x.semStores()
	n := len(x.logs.requests(t))
	r := x.chat(body, opts...)
	wantStatus(t, r, http.StatusOK, "MISS")
	x.settle(t, n+1)
	if x.semStores() != before+1 {
		t.Fatalf("the miss was not stored semantically (stores %d → %d)", before, x.semStores())
	}
	return r
}

// TestSemHit: a paraphrase of a stored prompt is answered from the semantic cache, as JSON
// or SSE, with the headers of DESIGN §3; a prompt below the threshold is not.
func TestSemHit(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	x := xNewEnv(t, up, xCfg{semantic: true})
	first := x.prime(t, xChat(xPromptA, ""))
	key := first.header.Get("X-Cache-Key")
	if key == "" {
		t.Fatal("the miss has no X-Cache-Key")
	}
	want := viewOfCompletion(t, first.body)

	t.Run("json", func(t *testing.T) {
		x.clock.Advance(3 * time.Second)
		r := x.chat(xChat(xPromptA2, ""))
		wantStatus(t, r, 200, "HIT")
		for k, v := range map[string]string{"X-Cache-Type": "semantic", "X-Cache-Similarity": "1.0000", "X-Cache-Key": key, "Age": "3"} {
			if got := r.header.Get(k); got != v {
				t.Errorf("%s = %q, want %q", k, got, v)
			}
		}
		wantView(t, "semantic hit", viewOfCompletion(t, r.body), want)
	})
	t.Run("near prompt", func(t *testing.T) {
		r := x.chat(xChat(xPromptNear, ""))
		wantStatus(t, r, 200, "HIT")
		if s := r.header.Get("X-Cache-Similarity"); s != "0.9500" || !xSimilarityRe.MatchString(s) {
			t.Errorf("X-Cache-Similarity = %q, want 0.9500", s)
		}
	})
	t.Run("stream", func(t *testing.T) {
		for _, usage := range []bool{false, true} {
			extra := `"stream":true`
			if usage {
				extra += `,"stream_options":{"include_usage":true}`
			}
			r := x.chat(xChat(xPromptA2, extra))
			wantStatus(t, r, 200, "HIT")
			if ct := r.header.Get("Content-Type"); ct != "text/event-stream; charset=utf-8" {
				t.Errorf("Content-Type = %q", ct)
			}
			if r.header.Get("X-Cache-Type") != "semantic" {
				t.Errorf("X-Cache-Type = %q", r.header.Get("X-Cache-Type"))
			}
			ps, done := ssePayloads(t, r.body)
			if !done {
				t.Errorf("no [DONE]: %s", r.body)
			}
			got := viewOfStream(t, ps)
			if usage {
				wantView(t, "streamed semantic hit with usage", got, want)
			} else {
				wantView(t, "streamed semantic hit", got, want.noUsage())
			}
		}
	})
	t.Run("below threshold", func(t *testing.T) {
		wantStatus(t, x.chat(xChat(xPromptFar, "")), 200, "MISS")
	})
	t.Run("other tenant", func(t *testing.T) {
		r := x.chat(xChat(xPromptA2, ""), withToken("sk-client-two"))
		wantStatus(t, r, 200, "MISS")
	})
	wantCalls(t, up, 3)
}

// TestSemPartition: a candidate must match on everything but the last user message.
func TestSemPartition(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	x := xNewEnv(t, up, xCfg{semantic: true})
	base := func(model, system, temp, earlier, last string) string {
		return `{"model":"` + model + `","temperature":` + temp + `,"messages":[{"role":"system","content":"` + system + `"},` +
			earlier + `{"role":"user","content":"` + last + `"}]}`
	}
	earlier := `{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello!"},`
	x.prime(t, base("gpt-4o-mini", "Be brief.", "0.2", earlier, xPromptA))
	calls := up.count()
	for _, tc := range []struct{ name, body string }{
		{"system prompt", base("gpt-4o-mini", "Be verbose.", "0.2", earlier, xPromptA2)},
		{"model", base("gpt-4o", "Be brief.", "0.2", earlier, xPromptA2)},
		{"temperature", base("gpt-4o-mini", "Be brief.", "0.9", earlier, xPromptA2)},
		{"earlier turn", base("gpt-4o-mini", "Be brief.", "0.2", `{"role":"user","content":"Hey"},{"role":"assistant","content":"Hello!"},`, xPromptA2)},
		{"no earlier turns", base("gpt-4o-mini", "Be brief.", "0.2", "", xPromptA2)},
		{"tools", `{"model":"gpt-4o-mini","temperature":0.2,"tools":[{"type":"function","function":{"name":"f","parameters":{}}}],"messages":[{"role":"system","content":"Be brief."},` +
			earlier + `{"role":"user","content":"` + xPromptA2 + `"}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantStatus(t, x.chat(tc.body), 200, "MISS")
			calls++
			wantCalls(t, up, calls)
		})
	}
	t.Run("same partition", func(t *testing.T) {
		r := x.chat(base("gpt-4o-mini", "Be brief.", "0.2", earlier, xPromptA2))
		wantStatus(t, r, 200, "HIT")
		wantCalls(t, up, calls)
	})
}

// TestSemMinSimilarity: a request may make the threshold stricter (body or header), never
// looser.
func TestSemMinSimilarity(t *testing.T) {
	cases := []struct {
		name   string
		prompt string
		extra  string
		header string
		hit    bool
	}{
		{"default threshold", xPromptNear, "", "", true},
		{"body stricter", xPromptNear, `"cache_control":{"min_similarity":0.97}`, "", false},
		{"header stricter", xPromptNear, "", "0.97", false},
		{"body stricter but met", xPromptNear, `"cache_control":{"min_similarity":0.93}`, "", true},
		{"body looser", xPromptFar, `"cache_control":{"min_similarity":0.5}`, "", false},
		{"header looser", xPromptFar, "", "0.5", false},
		{"body wins over header", xPromptNear, `"cache_control":{"min_similarity":0.93}`, "0.99", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, jsonAnswer(200, completionJSON))
			x := xNewEnv(t, up, xCfg{semantic: true})
			x.prime(t, xChat(xPromptA, ""))
			var opts []reqOpt
			if tc.header != "" {
				opts = append(opts, withHeader("X-Cache-Min-Similarity", tc.header))
			}
			r := x.chat(xChat(tc.prompt, tc.extra), opts...)
			if tc.hit {
				wantStatus(t, r, 200, "HIT")
				wantCalls(t, up, 1)
			} else {
				wantStatus(t, r, 200, "MISS")
				wantCalls(t, up, 2)
			}
		})
	}
}

// TestSemModes checks the semantic columns of the cache_control table (DESIGN §2).
func TestSemModes(t *testing.T) {
	cases := []struct {
		typ            string
		read, write    bool
		missStatus     string // X-Cache-Status when the semantic read does not happen or misses
		exactSelfWrite bool
	}{
		{"default", true, true, "MISS", true},
		{"no_cache", false, false, "BYPASS", false},
		{"no_store", true, false, "MISS", false},
		{"response_only", false, false, "MISS", true},
		{"semantic_only", true, true, "MISS", false},
	}
	for _, tc := range cases {
		cc := `"cache_control":{"type":"` + tc.typ + `"}`
		t.Run(tc.typ+"/read", func(t *testing.T) {
			up := newUpstream(t, jsonAnswer(200, completionJSON))
			x := xNewEnv(t, up, xCfg{semantic: true})
			x.prime(t, xChat(xPromptA, ""))
			r := x.chat(xChat(xPromptA2, cc))
			if tc.read {
				wantStatus(t, r, 200, "HIT")
				if r.header.Get("X-Cache-Type") != "semantic" {
					t.Errorf("X-Cache-Type = %q", r.header.Get("X-Cache-Type"))
				}
				wantCalls(t, up, 1)
			} else {
				wantStatus(t, r, 200, tc.missStatus)
				wantCalls(t, up, 2)
			}
		})
		t.Run(tc.typ+"/write", func(t *testing.T) {
			up := newUpstream(t, jsonAnswer(200, completionJSON))
			x := xNewEnv(t, up, xCfg{semantic: true})
			wantStatus(t, x.chat(xChat(xPromptA, cc)), 200, tc.missStatus)
			x.settle(t, 1)
			if got := x.semStores(); got != map[bool]uint64{true: 1, false: 0}[tc.write] {
				t.Errorf("semantic stores = %d, want write=%v", got, tc.write)
			}
			// Only the semantic layer can answer a paraphrase.
			r := x.chat(xChat(xPromptA2, ""))
			if tc.write {
				wantStatus(t, r, 200, "HIT")
				wantCalls(t, up, 1)
			} else {
				wantStatus(t, r, 200, "MISS")
				wantCalls(t, up, 2)
			}
		})
	}
	t.Run("semantic_only repeats answer semantically", func(t *testing.T) {
		up := newUpstream(t, jsonAnswer(200, completionJSON))
		x := xNewEnv(t, up, xCfg{semantic: true})
		body := xChat(xPromptA, `"cache_control":{"type":"semantic_only"}`)
		x.prime(t, body)
		r := x.chat(body)
		wantStatus(t, r, 200, "HIT")
		if r.header.Get("X-Cache-Type") != "semantic" {
			t.Errorf("X-Cache-Type = %q, want semantic (no exact read)", r.header.Get("X-Cache-Type"))
		}
		// The answer is kept once, in the exact cache's store, but never served by an exact read.
		x.settle(t, 2)
		wantStatus(t, x.chat(xChat(xPromptA, `"cache_control":{"type":"response_only"}`)), 200, "MISS")
	})
}

// xToolAnswer is a completion that calls a tool.
const xToolAnswer = `{"id":"chatcmpl-t","object":"chat.completion","created":1753958400,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":20,"completion_tokens":9,"total_tokens":29}}`

// TestSemToolCalls: answers that call tools are served by meaning only when allowed.
func TestSemToolCalls(t *testing.T) {
	for _, allow := range []bool{false, true} {
		t.Run(map[bool]string{false: "default", true: "allowed"}[allow], func(t *testing.T) {
			up := newUpstream(t, jsonAnswer(200, xToolAnswer))
			x := xNewEnv(t, up, xCfg{semantic: true, mod: func(o *Options) { o.SemanticToolCalls = allow }})
			wantStatus(t, x.chat(xChat(xPromptA, "")), 200, "MISS")
			x.settle(t, 1)
			r := x.chat(xChat(xPromptA2, ""))
			if !allow {
				wantStatus(t, r, 200, "MISS")
				wantCalls(t, up, 2)
				// The exact cache still answers the very same request.
				wantStatus(t, x.chat(xChat(xPromptA, "")), 200, "HIT")
				return
			}
			wantStatus(t, r, 200, "HIT")
			wantCalls(t, up, 1)
			wantView(t, "tool-call hit", viewOfCompletion(t, r.body), viewOfCompletion(t, []byte(xToolAnswer)))
		})
	}
}

// TestSemShadow: shadow mode finds and counts hits but never serves them.
func TestSemShadow(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	x := xNewEnv(t, up, xCfg{semantic: true, mod: func(o *Options) { o.SemanticShadow = true }})
	x.prime(t, xChat(xPromptA, ""))
	r := x.chat(xChat(xPromptA2, ""))
	wantStatus(t, r, 200, "MISS")
	if r.header.Get("X-Cache-Similarity") != "" {
		t.Errorf("a shadow hit leaked X-Cache-Similarity %q", r.header.Get("X-Cache-Similarity"))
	}
	wantCalls(t, up, 2)
	st := x.h.Stats().Semantic
	if st.ShadowHits != 1 || st.Hits != 0 || !st.Shadow {
		t.Errorf("stats = %+v, want 1 shadow hit, 0 hits, shadow on", *st)
	}
}

// TestSemEmbedderFailure: an embedder that fails or misses its deadline sends the request
// upstream (fail open) and is counted.
func TestSemEmbedderFailure(t *testing.T) {
	for _, mode := range []string{"error", "timeout"} {
		t.Run(mode, func(t *testing.T) {
			up := newUpstream(t, jsonAnswer(200, completionJSON))
			x := xNewEnv(t, up, xCfg{semantic: true, semOpts: func(o *semantic.Options) { o.EmbedTimeout = 50 * time.Millisecond }})
			x.prime(t, xChat(xPromptA, ""))
			if mode == "error" {
				x.emb.fail.Store(true)
			} else {
				x.emb.hang.Store(true)
			}
			r := x.chat(xChat(xPromptA2, ""))
			wantStatus(t, r, 200, "MISS")
			wantView(t, "fail-open answer", viewOfCompletion(t, r.body), viewOfCompletion(t, []byte(completionJSON)))
			wantCalls(t, up, 2)
			x.settle(t, 2)
			if st := x.h.Stats().Semantic; st.Errors < 1 || st.Hits != 0 {
				t.Errorf("stats = %+v, want the failure counted", *st)
			}
			// The exact cache is unaffected.
			wantStatus(t, x.chat(xChat(xPromptA, "")), 200, "HIT")
		})
	}
}

// TestSemTTL: a semantic entry lives as long as the request's max_age (or the default TTL).
func TestSemTTL(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	x := xNewEnv(t, up, xCfg{semantic: true, mod: func(o *Options) { o.TTL = time.Minute }})
	x.prime(t, xChat(xPromptA, `"cache_control":{"max_age":10}`))
	x.clock.Advance(9 * time.Second)
	wantStatus(t, x.chat(xChat(xPromptA2, `"cache_control":{"type":"no_store"}`)), 200, "HIT")
	x.clock.Advance(2 * time.Second)
	wantStatus(t, x.chat(xChat(xPromptA2, `"cache_control":{"type":"no_store"}`)), 200, "MISS")
	wantCalls(t, up, 2)

	x.prime(t, xChat(xPromptFar, "")) // the default TTL
	x.clock.Advance(59 * time.Second)
	wantStatus(t, x.chat(xChat(xPromptFar, `"cache_control":{"type":"semantic_only"}`)), 200, "HIT")
	x.clock.Advance(2 * time.Second)
	wantStatus(t, x.chat(xChat(xPromptFar, `"cache_control":{"type":"no_store"}`)), 200, "MISS")
}

// TestSemWithoutExactCache: the semantic layer works on its own (no exact cache configured).
func TestSemWithoutExactCache(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	x := xNewEnv(t, up, xCfg{semantic: true, mod: func(o *Options) { o.Cache = nil }})
	x.prime(t, xChat(xPromptA, ""))
	for _, p := range []string{xPromptA2, xPromptA} {
		r := x.chat(xChat(p, ""))
		wantStatus(t, r, 200, "HIT")
		if r.header.Get("X-Cache-Type") != "semantic" {
			t.Errorf("%q: X-Cache-Type = %q", p, r.header.Get("X-Cache-Type"))
		}
	}
	wantCalls(t, up, 1)
}

// TestSemNamedPrompts: among many prompts that differ only in a name the local embedder does
// not know (so all are equally near), a paraphrase gets the answer given for its own name, and
// a name never asked goes upstream.
func TestSemNamedPrompts(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Messages []struct{ Content string } `json:"messages"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Messages) == 0 {
			http.Error(w, "bad request", 400)
			return
		}
		content, _ := json.Marshal("answer to: " + req.Messages[len(req.Messages)-1].Content)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":%s},"finish_reason":"stop"}]}`, content)
	})
	local, err := semantic.NewLocal()
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	x := xNewEnv(t, up, xCfg{semantic: true, semOpts: func(o *semantic.Options) {
		o.Embedder, o.Verifier, o.Threshold = local, v, semantic.LocalThreshold
	}})
	name := func(i int) string {
		h := uint64(i+7) * 0x9E3779B97F4A7C15
		b := make([]byte, 7)
		for j := range b {
			b[j] = byte('a' + h%26)
			h /= 26
		}
		return string(b)
	}
	const n = 40
	for i := range n {
		x.prime(t, xChat("Summarize the onboarding guide for the team "+name(i)+".", ""))
	}
	before := x.sem.Stats().Anchored
	for _, i := range []int{0, n / 2, n - 1} {
		r := x.chat(xChat("Please summarize the onboarding guide for the team "+name(i)+"?", ""))
		wantStatus(t, r, 200, "HIT")
		if want := "answer to: Summarize the onboarding guide for the team " + name(i) + "."; !bytes.Contains(r.body, []byte(want)) {
			t.Errorf("team %s got %s", name(i), r.body)
		}
	}
	wantStatus(t, x.chat(xChat("Please summarize the onboarding guide for the team "+name(n)+"?", "")), 200, "MISS")
	if a := x.sem.Stats().Anchored - before; a != 4 {
		t.Errorf("%d of 4 lookups read the entries filed under the name", a)
	}
}
