package proxy

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zest-proxy/zest/ratelimit"
)

// TestRLHeadersOnEveryResponse walks every kind of answer with a request and a token limit
// and checks the x-ratelimit-* and RateLimit headers on each; every answer, hits included,
// takes one request.
func TestRLHeadersOnEveryResponse(t *testing.T) {
	const rpm, tpm = 50, 100000
	g := &xGate{}
	up := xGatedUpstream(t, g, completionJSON)
	x := xNewEnv(t, up, xCfg{semantic: true, limits: &ratelimit.Limits{RequestsPerMinute: rpm, TokensPerMinute: tpm}})
	used := 0
	next := func(t *testing.T, r *result, cacheStatus string) {
		t.Helper()
		used++
		wantStatus(t, r, http.StatusOK, cacheStatus)
		xWantLimitHeaders(t, r.header, rpm, tpm, used)
	}

	t.Run("miss", func(t *testing.T) { next(t, x.chat(xChat(xPromptA, "")), "MISS") })
	t.Run("exact hit", func(t *testing.T) { next(t, x.chat(xChat(xPromptA, "")), "HIT") })
	t.Run("semantic hit", func(t *testing.T) {
		x.settle(t, used)
		r := x.chat(xChat(xPromptA2, ""))
		next(t, r, "HIT")
		if r.header.Get("X-Cache-Type") != "semantic" {
			t.Fatalf("X-Cache-Type = %q, want semantic", r.header.Get("X-Cache-Type"))
		}
	})
	t.Run("stream headers before the first byte", func(t *testing.T) {
		g.close()
		defer g.open()
		req, _ := http.NewRequest(http.MethodPost, x.srv.URL+"/v1/chat/completions",
			strings.NewReader(xChat("A prompt only streamed", `"stream":true`)))
		req.Header.Set("Authorization", "Bearer sk-client-one")
		resp, err := x.client.Do(req) // returns with the headers while the upstream holds the rest
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		used++
		if resp.Header.Get("X-Cache-Status") != "MISS" {
			t.Errorf("X-Cache-Status = %q", resp.Header.Get("X-Cache-Status"))
		}
		xWantLimitHeaders(t, resp.Header, rpm, tpm, used)
		g.open()
		b, _ := io.ReadAll(resp.Body)
		if _, done := ssePayloads(t, b); !done {
			t.Errorf("stream did not end with [DONE]: %s", b)
		}
	})
	t.Run("stream hit", func(t *testing.T) {
		next(t, x.chat(xChat("A prompt only streamed", `"stream":true`)), "HIT")
	})
	t.Run("coalesced follower", func(t *testing.T) {
		g.close()
		body := xChat("A prompt asked twice at once", "")
		res := make([]*result, 2)
		var wg sync.WaitGroup
		for i := range res {
			wg.Go(func() { res[i] = x.chat(body) })
		}
		waitFlightRefs(t, x.h, 2)
		g.open()
		wg.Wait()
		layers := ""
		for i, r := range res {
			used++
			wantStatus(t, r, http.StatusOK, map[bool]string{true: "HIT", false: "MISS"}[r.header.Get("X-Cache-Type") == "coalesced"])
			layers += r.header.Get("X-Cache-Type") + ";"
			if r.header.Get("x-ratelimit-limit-requests") != strconv.Itoa(rpm) {
				t.Errorf("answer %d lacks rate-limit headers: %v", i, r.header)
			}
			if pol := r.header.Get("RateLimit-Policy"); pol == "" {
				t.Errorf("answer %d lacks RateLimit-Policy", i)
			}
		}
		if !strings.Contains(layers, "coalesced") {
			t.Errorf("no answer was a coalesced follower: %q", layers)
		}
		wantCalls(t, up, 3)
	})
	t.Run("non-chat path", func(t *testing.T) {
		r := x.do(http.MethodGet, "/v1/models", "")
		used++
		if r.status != http.StatusOK {
			t.Fatalf("status %d", r.status)
		}
		xWantLimitHeaders(t, r.header, rpm, tpm, used)
	})
}

// TestRLUpstreamLimitHeadersReplaced: an upstream that sends its own x-ratelimit-* headers
// (OpenAI does) must not leave the client with two conflicting values: zest's limits are the
// ones the client meets first.
func TestRLUpstreamLimitHeadersReplaced(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-ratelimit-limit-requests", "10000")
		w.Header().Set("x-ratelimit-remaining-requests", "9999")
		jsonAnswer(200, completionJSON)(w, r)
	})
	x := xNewEnv(t, up, xCfg{limits: &ratelimit.Limits{RequestsPerMinute: 5, TokensPerMinute: 100000}})
	for i, p := range []string{"/v1/chat/completions", "/v1/models"} {
		t.Run(p, func(t *testing.T) {
			method, body := http.MethodPost, chatBody("")
			if p == "/v1/models" {
				method, body = http.MethodGet, ""
			}
			r := x.do(method, p, body)
			if r.status != 200 {
				t.Fatalf("status %d", r.status)
			}
			xWantLimitHeaders(t, r.header, 5, 100000, i+1)
		})
	}
}

// TestRL429 checks zest's 429 as DESIGN §3 shows it, for the request and the token limit.
func TestRL429(t *testing.T) {
	est := ratelimit.EstimateTokens("gpt-4o-mini", []string{"What is the capital of France?"}, 40)
	tpm := 2*est + est/2
	cases := []struct {
		name     string
		limits   ratelimit.Limits
		typ      string
		admitted int // requests admitted before the 429
		wait     time.Duration
	}{
		{"requests", ratelimit.Limits{RequestsPerMinute: 2}, "requests", 2, 30 * time.Second},
		// Two estimates fit, the third waits for one estimate's refill.
		{"tokens", ratelimit.Limits{TokensPerMinute: tpm}, "tokens", 2,
			time.Duration(est-est/2) * time.Minute / time.Duration(tpm)},
	}
	noUsage := `{"id":"c","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Paris."},"finish_reason":"stop"}]}`
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, jsonAnswer(200, noUsage)) // no usage: the estimate stands
			x := xNewEnv(t, up, xCfg{limits: &tc.limits})
			body := chatBody(`"max_tokens":40`)
			nc := withHeader("Cache-Control", "no-cache")
			for i := 0; i < tc.admitted; i++ {
				wantStatus(t, x.chat(body, nc), 200, "BYPASS")
			}
			r := x.chat(body, nc)
			e := wantError(t, r, http.StatusTooManyRequests, tc.typ, "")
			if e.Code == nil || *e.Code != "rate_limit_exceeded" {
				t.Errorf("code = %v, want rate_limit_exceeded", e.Code)
			}
			if !strings.HasPrefix(e.Message, "Rate limit reached for "+tc.typ) || !strings.Contains(e.Message, "Please try again in ") {
				t.Errorf("message = %q", e.Message)
			}
			if r.header.Get("X-Cache-Status") == "" {
				t.Error("429 lacks X-Cache-Status")
			}
			ms, err := strconv.ParseInt(r.header.Get("retry-after-ms"), 10, 64)
			if err != nil {
				t.Fatalf("retry-after-ms = %q", r.header.Get("retry-after-ms"))
			}
			wantMs := int64((tc.wait + time.Millisecond - 1) / time.Millisecond)
			if ms < wantMs-1 || ms > wantMs+1 {
				t.Errorf("retry-after-ms = %d, want about %d", ms, wantMs)
			}
			if ra := r.header.Get("Retry-After"); ra != strconv.FormatInt((ms+999)/1000, 10) {
				t.Errorf("Retry-After = %q, want whole seconds rounded up from %d ms", ra, ms)
			}
			wantCalls(t, up, tc.admitted)

			// Honest: a client that waits 1 ms less is still refused; one that waits the
			// advertised time is admitted.
			x.clock.Advance(time.Duration(ms-1) * time.Millisecond)
			wantError(t, x.chat(body, nc), http.StatusTooManyRequests, tc.typ, "")
			x.clock.Advance(time.Millisecond)
			wantStatus(t, x.chat(body, nc), 200, "BYPASS")
			wantCalls(t, up, tc.admitted+1)
		})
	}
}

// TestRLRetryAfterWholeSeconds: a wait that is not whole seconds is rounded up in Retry-After.
func TestRLRetryAfterWholeSeconds(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	x := xNewEnv(t, up, xCfg{limits: &ratelimit.Limits{RequestsPerMinute: 7}}) // 60/7 s = 8.571s
	nc := withHeader("Cache-Control", "no-cache")
	for i := 0; i < 7; i++ {
		wantStatus(t, x.chat(chatBody(""), nc), 200, "BYPASS")
	}
	r := x.chat(chatBody(""), nc)
	wantError(t, r, 429, "requests", "")
	if got := r.header.Get("Retry-After"); got != "9" {
		t.Errorf("Retry-After = %q, want 9", got)
	}
	if got := r.header.Get("retry-after-ms"); got != "8572" {
		t.Errorf("retry-after-ms = %q, want 8572", got)
	}
	if reset := r.header.Get("x-ratelimit-reset-requests"); reset == "" {
		t.Error("429 lacks x-ratelimit-reset-requests")
	}
}

// TestRLReconcile: tokens are reserved from the estimate and settled from the answer's usage.
func TestRLReconcile(t *testing.T) {
	est := ratelimit.EstimateTokens("gpt-4o-mini", []string{"What is the capital of France?"}, 40)
	tpm := est + est/2 // one estimate fits; a second fits only after a refund
	cases := []struct {
		name   string
		usage  int
		second bool // the next request is admitted at once
	}{
		{"smaller usage refunds", est / 4, true},
		{"equal usage", est, false},
		{"larger usage charges", tpm, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, jsonAnswer(200, xCompletion("Paris.", tc.usage/2, tc.usage-tc.usage/2)))
			x := xNewEnv(t, up, xCfg{limits: &ratelimit.Limits{TokensPerMinute: tpm}})
			body := chatBody(`"max_tokens":40`)
			nc := withHeader("Cache-Control", "no-cache")
			r := x.chat(body, nc)
			wantStatus(t, r, 200, "BYPASS")
			if got, want := r.header.Get("x-ratelimit-remaining-tokens"), strconv.Itoa(tpm-est); got != want {
				t.Errorf("first answer: x-ratelimit-remaining-tokens = %q, want %s (limit less the estimate)", got, want)
			}
			x.settle(t, 1)
			r = x.chat(body, nc)
			if tc.second {
				wantStatus(t, r, 200, "BYPASS")
				if got, want := r.header.Get("x-ratelimit-remaining-tokens"), strconv.Itoa(tpm-tc.usage-est); got != want {
					t.Errorf("second answer: x-ratelimit-remaining-tokens = %q, want %s", got, want)
				}
				return
			}
			wantError(t, r, 429, "tokens", "")
			// The wait covers the actual usage, not the estimate.
			ms, _ := strconv.ParseInt(r.header.Get("retry-after-ms"), 10, 64)
			needMs := int64(time.Duration(tc.usage+est-tpm) * time.Minute / time.Duration(tpm) / time.Millisecond)
			if ms < needMs {
				t.Errorf("retry-after-ms = %d, want >= %d", ms, needMs)
			}
			x.clock.Advance(time.Duration(ms) * time.Millisecond)
			wantStatus(t, x.chat(body, nc), 200, "BYPASS")
		})
	}
}

// TestRLNeverFits: a request whose estimate exceeds the token bucket is refused at once,
// without a Retry-After that would be a lie, and never reaches the upstream.
func TestRLNeverFits(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	x := xNewEnv(t, up, xCfg{limits: &ratelimit.Limits{TokensPerMinute: 500}})
	r := x.chat(chatBody(`"max_tokens":4000`))
	e := wantError(t, r, 429, "tokens", "")
	if e.Code == nil || *e.Code != "rate_limit_exceeded" {
		t.Errorf("code = %v", e.Code)
	}
	if !strings.Contains(e.Message, "never") || !strings.Contains(e.Message, "500") {
		t.Errorf("message = %q, want it to say the request can never fit the 500-token limit", e.Message)
	}
	if ra := r.header.Get("Retry-After"); ra != "" {
		t.Errorf("Retry-After = %q on a request that can never fit", ra)
	}
	wantCalls(t, up, 0)
	// A small request still fits: the refusal took nothing.
	wantStatus(t, x.chat(chatBody(`"max_tokens":40`)), 200, "MISS")
}

// TestRLHitsCount: answers from either cache take a request from the bucket.
func TestRLHitsCount(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	x := xNewEnv(t, up, xCfg{semantic: true, limits: &ratelimit.Limits{RequestsPerMinute: 3}})
	wantStatus(t, x.chat(xChat(xPromptA, "")), 200, "MISS")
	wantStatus(t, x.chat(xChat(xPromptA, "")), 200, "HIT")
	x.settle(t, 2)
	r := x.chat(xChat(xPromptA2, ""))
	wantStatus(t, r, 200, "HIT")
	if r.header.Get("x-ratelimit-remaining-requests") != "0" {
		t.Errorf("remaining after 3 = %q", r.header.Get("x-ratelimit-remaining-requests"))
	}
	for _, p := range []string{xPromptA, xPromptA2} {
		r := x.chat(xChat(p, ""))
		wantError(t, r, 429, "requests", "")
		if r.header.Get("X-Cache-Status") == "" {
			t.Error("429 of a would-be hit lacks X-Cache-Status")
		}
	}
	wantCalls(t, up, 1)
}

// TestRLOverrides: an identity listed in Overrides gets its own limits.
func TestRLOverrides(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	x := xNewEnv(t, up, xCfg{
		limits: &ratelimit.Limits{RequestsPerMinute: 1},
		limOpts: func(o *ratelimit.Options) {
			o.Overrides = map[string]ratelimit.Limits{xKeyHash("sk-vip"): {RequestsPerMinute: 3}}
		},
	})
	nc := withHeader("Cache-Control", "no-cache")
	for i := 0; i < 3; i++ {
		r := x.chat(chatBody(""), nc, withToken("sk-vip"))
		wantStatus(t, r, 200, "BYPASS")
		if got := r.header.Get("x-ratelimit-limit-requests"); got != "3" {
			t.Errorf("vip limit header = %q, want 3", got)
		}
	}
	wantError(t, x.chat(chatBody(""), nc, withToken("sk-vip")), 429, "requests", "")
	wantStatus(t, x.chat(chatBody(""), nc, withToken("sk-plain")), 200, "BYPASS")
	wantError(t, x.chat(chatBody(""), nc, withToken("sk-plain")), 429, "requests", "")
}

// TestRLKeyModes: what a bucket belongs to under RateLimitKey key, user and ip.
func TestRLKeyModes(t *testing.T) {
	type step struct {
		tok, user string
		ok        bool
	}
	cases := []struct {
		mode  string
		steps []step
	}{
		{"key", []step{{"sk-a", "alice", true}, {"sk-a", "bob", false}, {"sk-b", "alice", true}}},
		{"user", []step{{"sk-a", "alice", true}, {"sk-b", "alice", false}, {"sk-a", "bob", true}, {"sk-a", "", true}, {"sk-a", "", false}}},
		{"ip", []step{{"sk-a", "alice", true}, {"sk-b", "bob", false}}},
	}
	for _, tc := range cases {
		t.Run(tc.mode, func(t *testing.T) {
			up := newUpstream(t, jsonAnswer(200, completionJSON))
			x := xNewEnv(t, up, xCfg{limits: &ratelimit.Limits{RequestsPerMinute: 1},
				mod: func(o *Options) { o.RateLimitKey = tc.mode }})
			for i, s := range tc.steps {
				extra := ""
				if s.user != "" {
					extra = `"user":"` + s.user + `"`
				}
				r := x.chat(chatBody(extra), withToken(s.tok), withHeader("Cache-Control", "no-cache"))
				if got := r.status == 200; got != s.ok {
					t.Errorf("step %d (%s/%q): status %d, want admitted=%v", i, s.tok, s.user, r.status, s.ok)
				}
			}
		})
	}
}

// TestRLConcurrency: with MaxConcurrent 1 a second request while one is in flight is a 429;
// once the first ends the next is admitted.
func TestRLConcurrency(t *testing.T) {
	g := &xGate{}
	g.close()
	up := xGatedUpstream(t, g, completionJSON)
	x := xNewEnv(t, up, xCfg{limits: &ratelimit.Limits{MaxConcurrent: 1}})
	first := make(chan *result, 1)
	go func() { first <- x.chat(xChat("slow one", "")) }()
	xEventually(t, "the first request to reach the upstream", func() bool { return up.count() == 1 })
	r := x.chat(xChat("second one", ""))
	e := wantError(t, r, 429, "requests", "")
	if e.Code == nil || *e.Code != "rate_limit_exceeded" {
		t.Errorf("code = %v", e.Code)
	}
	if r.header.Get("X-Cache-Status") == "" {
		t.Error("429 lacks X-Cache-Status")
	}
	g.open()
	wantStatus(t, <-first, 200, "MISS")
	x.settle(t, 2)
	wantStatus(t, x.chat(xChat("third one", "")), 200, "MISS")
	wantCalls(t, up, 2)
}

// TestRLMalformedChatLimited: DESIGN §1 puts the rate limit before the body is parsed, so a
// chat body zest cannot parse (forwarded for the upstream to judge) and one with an invalid
// cache_control (zest's own 400) are still limited and still carry the rate-limit headers.
func TestRLMalformedChatLimited(t *testing.T) {
	for _, tc := range []struct{ name, body string }{
		{"malformed JSON", `{"model":"gpt-4o-mini","messages":[`},
		{"invalid cache_control", chatBody(`"cache_control":{"type":"sometimes"}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, jsonAnswer(400, `{"error":{"message":"bad json","type":"invalid_request_error","param":null,"code":null}}`))
			x := xNewEnv(t, up, xCfg{limits: &ratelimit.Limits{RequestsPerMinute: 1}})
			r := x.chat(tc.body)
			if r.status != 400 {
				t.Fatalf("status %d", r.status)
			}
			if got := r.header.Get("x-ratelimit-remaining-requests"); got != "0" {
				t.Errorf("x-ratelimit-remaining-requests = %q, want 0", got)
			}
			r = x.chat(tc.body)
			if r.status != http.StatusTooManyRequests {
				t.Errorf("second request: status %d, want 429 (upstream calls %d)", r.status, up.count())
			}
		})
	}
}

// TestRLReconcileStream: a streamed miss is reconciled from the usage chunk zest asks the
// upstream for, also when the client did not ask for usage.
func TestRLReconcileStream(t *testing.T) {
	const usage = 31 // text.sse's usage chunk
	est := ratelimit.EstimateTokens("gpt-4o-mini", []string{"What is the capital of France?"}, 40)
	if est <= usage {
		t.Fatalf("estimate %d not above the usage %d", est, usage)
	}
	tpm := est + usage + (est-usage)/2 // a second estimate fits only if the first was settled at its usage
	up := newUpstream(t, sseAnswer(loadSSE(t, "text.sse"), completionJSON))
	x := xNewEnv(t, up, xCfg{limits: &ratelimit.Limits{TokensPerMinute: tpm}})
	body := streamBody(`"max_tokens":40`, "")
	nc := withHeader("Cache-Control", "no-cache")
	r := x.chat(body, nc)
	wantStatus(t, r, 200, "BYPASS")
	if _, done := ssePayloads(t, r.body); !done {
		t.Fatalf("stream incomplete: %s", r.body)
	}
	x.settle(t, 1)
	r = x.chat(body, nc)
	wantStatus(t, r, 200, "BYPASS")
	if got, want := r.header.Get("x-ratelimit-remaining-tokens"), strconv.Itoa(tpm-usage-est); got != want {
		t.Errorf("x-ratelimit-remaining-tokens = %q, want %s (limit less the first stream's usage and this estimate)", got, want)
	}
}

// TestRLHeadersOnUpstreamFailure: zest's own 502 for an unreachable upstream carries the
// rate-limit headers like every other answer.
func TestRLHeadersOnUpstreamFailure(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	addr := closedAddr(t)
	x := xNewEnv(t, up, xCfg{limits: &ratelimit.Limits{RequestsPerMinute: 5, TokensPerMinute: 100000},
		mod: func(o *Options) { o.Upstream = "http://" + addr + "/v1" }})
	for i, p := range []string{"/v1/chat/completions", "/v1/models"} {
		method, body := http.MethodPost, chatBody("")
		if p == "/v1/models" {
			method, body = http.MethodGet, ""
		}
		r := x.do(method, p, body)
		wantError(t, r, http.StatusBadGateway, "server_error", "")
		xWantLimitHeaders(t, r.header, 5, 100000, i+1)
	}
}
