package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zest-proxy/zest/ratelimit"
)

// Regression tests of the defects an outside audit found (issue 10). Each failed before its fix.

func withoutAuth() reqOpt { return func(r *http.Request) { r.Header.Del("Authorization") } }

// promptBody is a chat body whose only user message is prompt.
func promptBody(prompt, extra string) string {
	if extra != "" {
		extra += ","
	}
	return fmt.Sprintf(`{"model":"gpt-4o-mini",%s"messages":[{"role":"user","content":%q}]}`, extra, prompt)
}

// TestStoreVisibleWhenAnswered: a client that has its answer finds it on its next request,
// at once, in every mode that stores exactly, for plain and streamed answers. The second
// request is no_store, which reads the cache but never joins a call in progress, so it sees
// only what the cache holds.
func TestStoreVisibleWhenAnswered(t *testing.T) {
	f := loadSSE(t, "text.sse")
	for _, tc := range []struct{ name, cc, stream string }{
		{"default", "", ""},
		{"response_only", `"cache_control":{"type":"response_only"}`, ""},
		{"default streamed", "", `"stream":true`},
		{"max_age streamed", `"cache_control":{"max_age":600}`, `"stream":true`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, sseAnswer(f, completionJSON))
			e := newEnv(t, up, nil)
			for i := range 100 {
				p := fmt.Sprintf("Question number %d?", i)
				extra := strings.Trim(tc.cc+","+tc.stream, ",")
				wantStatus(t, e.chat(promptBody(p, extra)), 200, "MISS")
				r := e.chat(promptBody(p, `"cache_control":{"type":"no_store"}`))
				if r.header.Get("X-Cache-Status") != "HIT" {
					t.Fatalf("request %d: the answer just received was not in the cache: %s", i, r.header.Get("X-Cache-Status"))
				}
			}
			wantCalls(t, up, 100)
		})
	}
}

// cutStream sends two chunks of a stream and then resets the connection.
func cutStream(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(200)
	fmt.Fprint(w, `data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}`+"\n\n")
	w.(http.Flusher).Flush()
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

// TestCutStreamReleasesSlot: a stream the upstream breaks off gives back the client's
// concurrency slot (and a follower's), and is still logged and counted.
func TestCutStreamReleasesSlot(t *testing.T) {
	up := newUpstream(t, cutStream)
	x := xNewEnv(t, up, xCfg{limits: &ratelimit.Limits{MaxConcurrent: 1}, metrics: true})
	for i := range 3 {
		r := x.chat(promptBody("Tell me a story", `"stream":true`))
		if r.status == http.StatusTooManyRequests {
			t.Fatalf("request %d: 429: the slot of an earlier cut stream was never given back", i)
		}
		if r.err == nil {
			t.Errorf("request %d: a cut stream read as complete: %s", i, r.body)
		}
	}
	x.settle(t, 3)
	for _, l := range x.logs.requests(t) {
		if l["failure"] != "upstream stream cut" {
			t.Errorf("log line %v: want failure=upstream stream cut", l)
		}
	}
	m := x.scrape(t)
	if got := m[xSeries("zest_requests_total", "path", "/v1/chat/completions", "status", "200", "cache", "miss", "layer", "")]; got != 3 {
		t.Errorf("zest_requests_total for the cut streams = %v, want 3", got)
	}
}

// TestErrorAnswersNotStored: a 200 that is an error in disguise is relayed, never stored.
func TestErrorAnswersNotStored(t *testing.T) {
	for _, tc := range []struct{ name, body string }{
		{"empty choices with error", `{"choices":[],"error":{"message":"overloaded","code":502}}`},
		{"choices and error", `{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"error":{"message":"partial"}}`},
		{"finish_reason error", `{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":""},"finish_reason":"error"}]}`},
		{"choices not a list", `{"id":"x","object":"chat.completion","choices":{"index":0}}`},
		{"choice without message", `{"id":"x","object":"chat.completion","choices":[{"index":0,"finish_reason":"stop"}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, jsonAnswer(200, tc.body))
			e := newEnv(t, up, nil)
			for range 2 {
				r := e.chat(chatBody(""))
				wantStatus(t, r, 200, "MISS")
				if string(r.body) != tc.body {
					t.Errorf("relayed body changed: %s", r.body)
				}
				if k := r.header.Get("X-Cache-Key"); k != "" {
					t.Errorf("X-Cache-Key %q on an answer that is not stored", k)
				}
			}
			wantCalls(t, up, 2)
		})
	}
	const hel = `data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}`
	for _, tc := range []struct {
		name   string
		events []string
	}{
		{"streamed finish_reason error", []string{hel,
			`data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"error"}]}`}},
		{"streamed error chunk", []string{hel,
			`data: {"error":{"message":"provider failed"}}`,
			`data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				for _, ev := range tc.events {
					fmt.Fprint(w, ev+"\n\n")
				}
				fmt.Fprint(w, "data: [DONE]\n\n")
			})
			e := newEnv(t, up, nil)
			for range 2 {
				wantStatus(t, e.chat(chatBody(`"stream":true`)), 200, "MISS")
			}
			wantCalls(t, up, 2)
		})
	}
}

// TestIdentityAnyCredential: whatever credential a request presents is its tenant; only a
// request with none is anonymous.
func TestIdentityAnyCredential(t *testing.T) {
	anon := withoutAuth()
	creds := map[string][]reqOpt{
		"basic":        {withHeader("Authorization", "Basic dXNlcjpwYXNz")},
		"other scheme": {withHeader("Authorization", "Token abc")},
		"empty bearer": {withHeader("Authorization", "Bearer ")},
		"x-api-key":    {anon, withHeader("X-Api-Key", "sk-ant-1")},
		"api-key":      {anon, withHeader("Api-Key", "azure-1")},
	}
	for name, opts := range creds {
		t.Run(name, func(t *testing.T) {
			up := newUpstream(t, jsonAnswer(200, completionJSON))
			e := newEnv(t, up, nil)
			wantStatus(t, e.chat(chatBody(""), anon), 200, "MISS")
			wantStatus(t, e.chat(chatBody(""), anon), 200, "HIT") // anonymous clients share one namespace
			wantStatus(t, e.chat(chatBody(""), opts...), 200, "MISS")
			wantStatus(t, e.chat(chatBody(""), opts...), 200, "HIT")
			wantCalls(t, up, 2)
		})
	}
	if KeyHash(&http.Request{Header: http.Header{"Authorization": {"Basic a"}}}) ==
		KeyHash(&http.Request{Header: http.Header{"Authorization": {"Bearer a"}}}) {
		t.Error("Basic a and Bearer a are one tenant")
	}
	if KeyHash(&http.Request{Header: http.Header{"Authorization": {"Bearer a"}}}) !=
		KeyHash(&http.Request{Header: http.Header{"Api-Key": {"a"}}}) {
		t.Error("the same key as Bearer and as api-key are two tenants")
	}
}

// TestFollowerHeadersClean: a coalesced follower gets the cleaned header set of a hit, never
// the leader's cookies or request ids.
func TestFollowerHeadersClean(t *testing.T) {
	release, started := make(chan struct{}), make(chan struct{})
	up := newUpstream(t, heldAnswer(started, release, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Set-Cookie", "session=leader")
		w.Header().Set("X-Request-Id", "req-leader")
		jsonAnswer(200, completionJSON)(w, r)
	}))
	e := newEnv(t, up, func(o *Options) { o.Namespace = "shared" })
	results := make(chan *result, 2)
	go func() { results <- e.chat(chatBody(""), withToken("sk-leader")) }()
	<-started
	go func() { results <- e.chat(chatBody(""), withToken("sk-other-tenant")) }()
	waitFlightRefs(t, e.h, 2)
	close(release)
	for range 2 {
		r := <-results
		if r.header.Get("X-Cache-Status") == "HIT" {
			if c := r.header.Get("Set-Cookie"); c != "" {
				t.Errorf("follower got the leader's Set-Cookie %q", c)
			}
			if id := r.header.Get("X-Request-Id"); id != "" {
				t.Errorf("follower got the leader's request id %q", id)
			}
		} else if r.header.Get("Set-Cookie") == "" {
			t.Error("the leader lost its own upstream headers")
		}
	}
}

// TestOperatorKeyDropsClientCredentials: with the operator's key, the client's other
// credentials and billing headers do not reach the upstream.
func TestOperatorKeyDropsClientCredentials(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	e := newEnv(t, up, func(o *Options) { o.UpstreamAPIKey = "sk-operator" })
	opts := []reqOpt{withHeader("Api-Key", "c1"), withHeader("X-Api-Key", "c2"),
		withHeader("OpenAI-Organization", "org-client"), withHeader("OpenAI-Project", "proj-client")}
	e.chat(chatBody(""), opts...)
	e.do(http.MethodGet, "/v1/models", "", opts...)
	for i, c := range up.calls {
		if got := c.Header.Get("Authorization"); got != "Bearer sk-operator" {
			t.Errorf("call %d: Authorization %q", i, got)
		}
		for _, k := range operatorHeaders {
			if v := c.Header.Get(k); v != "" {
				t.Errorf("call %d (%s): client header %s: %q reached the upstream", i, c.Path, k, v)
			}
		}
	}
}

// TestCacheIdentity: the query string and lone surrogates are part of the key; a repeated
// cache_control never goes upstream; the base URL's query is forwarded.
func TestCacheIdentity(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	e := newEnv(t, up, func(o *Options) { o.Upstream = up.base() + "?tenant=t1" })
	do := func(q, body string) *result {
		return e.do(http.MethodPost, "/v1/chat/completions"+q, body)
	}
	wantStatus(t, do("?api-version=A", chatBody("")), 200, "MISS")
	if q := up.last().RawQuery; q != "tenant=t1&api-version=A" {
		t.Errorf("upstream query %q, want the base URL's then the client's", q)
	}
	wantStatus(t, do("?api-version=B", chatBody("")), 200, "MISS")
	wantStatus(t, do("?api-version=A", chatBody("")), 200, "HIT")
	for _, s := range []string{`\ud800`, `\udc00`, `\ufffd`} {
		wantStatus(t, do("", promptBody("x", "")[:0]+`{"model":"m","messages":[{"role":"user","content":"a`+s+`"}]}`), 200, "MISS")
	}
	body := `{"model":"m","cache_control":{"type":"default"},"messages":[{"role":"user","content":"dup"}],"cache_control":{"type":"no_store"}}`
	do("", body)
	if b := string(up.last().Body); strings.Contains(b, "cache_control") {
		t.Errorf("a repeated cache_control went upstream: %s", b)
	}
}

// TestEscapedPathKept: %2F in a forwarded path reaches the upstream as it came.
func TestEscapedPathKept(t *testing.T) {
	var raw atomic.Value
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		raw.Store(r.RequestURI)
		w.Write([]byte(`{}`))
	})
	e := newEnv(t, up, nil)
	e.do(http.MethodGet, "/v1/models/meta-llama%2FLlama-3-8B", "")
	if got := raw.Load(); got != "/v1/models/meta-llama%2FLlama-3-8B" {
		t.Errorf("upstream saw %v", got)
	}
}

// TestEarlyHintsKeepLimitHeaders: a 103 before the answer neither eats zest's rate-limit
// headers nor becomes the logged status.
func TestEarlyHintsKeepLimitHeaders(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</x>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		w.Write([]byte(`{"data":[]}`))
	})
	x := xNewEnv(t, up, xCfg{limits: &ratelimit.Limits{RequestsPerMinute: 10}})
	r := x.do(http.MethodGet, "/v1/models", "")
	if r.status != 200 || r.header.Get("X-Ratelimit-Limit-Requests") != "10" {
		t.Errorf("status %d, x-ratelimit-limit-requests %q", r.status, r.header.Get("X-Ratelimit-Limit-Requests"))
	}
	x.settle(t, 1)
	if l := x.logs.requests(t)[0]; l["status"] != float64(200) {
		t.Errorf("logged status %v, want 200", l["status"])
	}
}

// TestHugeMaxTokensNeverFits: a max_tokens that would overflow saturates and gets the
// "can never fit" 429, not a wrapped-around small estimate.
func TestHugeMaxTokensNeverFits(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	x := xNewEnv(t, up, xCfg{limits: &ratelimit.Limits{TokensPerMinute: 100000}})
	for _, extra := range []string{`"max_tokens":9223372036854775807`, `"max_tokens":4611686018427387904,"n":4`, `"max_completion_tokens":1e30`} {
		r := x.chat(chatBody(extra))
		if r.status != http.StatusTooManyRequests {
			t.Errorf("%s: status %d, want 429", extra, r.status)
		}
	}
	wantCalls(t, up, 0)
}

// TestToolAnswerContentNull: a tool-call answer stored from a stream has content null for a
// plain client, as the upstream's own plain answer has, even when the stream sent "".
func TestToolAnswerContentNull(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}`+"\n\n")
		fmt.Fprint(w, `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]}}]}`+"\n\n")
		fmt.Fprint(w, `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`+"\n\n")
		fmt.Fprint(w, "data: [DONE]\n\n")
	})
	e := newEnv(t, up, nil)
	wantStatus(t, e.chat(chatBody(`"stream":true`)), 200, "MISS")
	r := e.chat(chatBody(""))
	wantStatus(t, r, 200, "HIT")
	if !strings.Contains(string(r.body), `"content":null`) {
		t.Errorf("plain answer of a stored tool call: %s", r.body)
	}
}

// TestFailedCallFollowerIsMiss: a follower of a call that failed is told MISS, without a key.
func TestFailedCallFollowerIsMiss(t *testing.T) {
	release, started := make(chan struct{}), make(chan struct{})
	up := newUpstream(t, heldAnswer(started, release, jsonAnswer(500, `{"error":{"message":"boom","type":"server_error"}}`)))
	e := newEnv(t, up, nil)
	results := make(chan *result, 2)
	go func() { results <- e.chat(chatBody("")) }()
	<-started
	go func() { results <- e.chat(chatBody("")) }()
	waitFlightRefs(t, e.h, 2)
	close(release)
	for range 2 {
		r := <-results
		if r.status != 500 || r.header.Get("X-Cache-Status") != "MISS" || r.header.Get("X-Cache-Type") != "" {
			t.Errorf("status %d, X-Cache-Status %q, X-Cache-Type %q; want 500 MISS with no type",
				r.status, r.header.Get("X-Cache-Status"), r.header.Get("X-Cache-Type"))
		}
		if k := r.header.Get("X-Cache-Key"); k != "" {
			t.Errorf("X-Cache-Key %q on an upstream error", k)
		}
	}
}

// TestMaxAgeZeroRefreshes: Cache-Control: max-age=0 (what browsers send on reload) is not an
// error: it skips the cached answer and stores the fresh one.
func TestMaxAgeZeroRefreshes(t *testing.T) {
	var n atomic.Int32
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"c%d","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"x"},"finish_reason":"stop"}]}`, n.Add(1))
	})
	e := newEnv(t, up, nil)
	wantStatus(t, e.chat(chatBody("")), 200, "MISS")
	for _, hv := range []string{"max-age=0", "no-cache, max-age=0"} {
		r := e.chat(chatBody(""), withHeader("Cache-Control", hv))
		if r.status != 200 || r.header.Get("X-Cache-Status") == "HIT" {
			t.Fatalf("%s: status %d %q, want a fresh answer", hv, r.status, r.header.Get("X-Cache-Status"))
		}
	}
	r := e.chat(chatBody(""))
	wantStatus(t, r, 200, "HIT")
	if !strings.Contains(string(r.body), `"id":"c2"`) {
		t.Errorf("after a refresh the cache holds %s, want the refreshed answer c2", r.body)
	}
}

// TestSlowBodyTimesOut: a client that never finishes its body does not hold the connection
// past the body deadline.
func TestSlowBodyTimesOut(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	e := newEnv(t, up, func(o *Options) { o.BodyTimeout = 50 * time.Millisecond })
	for _, path := range []string{"/v1/chat/completions", "/v1/files"} {
		conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: zest\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"model\":", path)
		// The deadline only bounds a broken server: zest must end the exchange by itself.
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("%s: zest still holds a connection whose body never came", path)
			}
			continue // closed without an answer: also ends the exchange
		}
		resp.Body.Close()
		// A forwarded body streams upstream as it comes, so what the upstream makes of the cut
		// upload is its own answer; a chat body is read whole first and gets zest's 408.
		if path == "/v1/chat/completions" && resp.StatusCode != http.StatusRequestTimeout {
			t.Errorf("%s: status %d, want 408", path, resp.StatusCode)
		}
	}
}

// TestUpstreamSlowerThanBodyTimeout: body_timeout bounds the client's upload only. An upstream
// that takes longer than it to answer (a long completion) is waited for, and its answer reaches
// the client and the cache; the deadline must not cancel the request once its body is in.
func TestUpstreamSlowerThanBodyTimeout(t *testing.T) {
	const bodyTimeout = 10 * time.Millisecond
	for _, path := range []string{"/v1/chat/completions", "/v1/embeddings"} {
		t.Run(path, func(t *testing.T) {
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				// Whatever the machine's speed, this answer comes well after the body deadline.
				time.Sleep(10 * bodyTimeout)
				jsonAnswer(200, completionJSON)(w, r)
			})
			e := newEnv(t, up, func(o *Options) { o.BodyTimeout = bodyTimeout })
			for _, stream := range []bool{false, true} {
				body := chatBody("")
				if stream {
					body = chatBody(`,"stream":true`)
				}
				r := e.do(http.MethodPost, path, body)
				if r.status != http.StatusOK {
					t.Fatalf("stream=%v: status %d (%s), want the upstream's 200", stream, r.status, r.body)
				}
			}
		})
	}
}

// TestTooLargeAnsweredToWriteFirstClient: a client that writes its whole body before reading
// (Python's http.client) gets the 413, not a connection reset.
func TestTooLargeAnsweredToWriteFirstClient(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	e := newEnv(t, up, func(o *Options) { o.MaxBodyBytes = 64 << 10 })
	body := `{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("a", 4<<20) + `"}]}`
	for _, path := range []string{"/v1/chat/completions", "/v1/embeddings"} {
		for _, chunked := range []bool{false, true} {
			conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			conn.SetDeadline(time.Now().Add(60 * time.Second))
			var werr error
			if chunked {
				fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: zest\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", path, len(body), body)
			} else {
				_, werr = fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: zest\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body)
			}
			if werr != nil {
				t.Fatalf("%s chunked=%v: writing the body: %v", path, chunked, werr)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("%s chunked=%v: no answer after writing the whole body: %v", path, chunked, err)
			}
			resp.Body.Close()
			conn.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("%s chunked=%v: status %d, want 413", path, chunked, resp.StatusCode)
			}
		}
	}
}

// panickyTransport panics on its first call, once release is closed; later calls go through.
type panickyTransport struct {
	inner            http.RoundTripper
	entered, release chan struct{}
	calls            atomic.Int32
}

func (p *panickyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if p.calls.Add(1) == 1 {
		close(p.entered)
		<-p.release
		panic("transport bug")
	}
	return p.inner.RoundTrip(r)
}

// TestUpstreamCallPanic: a panic inside an upstream call (here, in the transport) neither ends
// the process nor leaves the call's other clients waiting: they get a 502, and the next
// request is served. A leader's call runs on its own goroutine, streamed or not: its
// connection is dropped, as net/http does for a panicking handler.
func TestUpstreamCallPanic(t *testing.T) {
	for _, leaderStream := range []bool{false, true} {
		name := map[bool]string{false: "plain-leader", true: "stream-leader"}[leaderStream]
		t.Run(name, func(t *testing.T) {
			up := newUpstream(t, jsonAnswer(200, completionJSON))
			pt := &panickyTransport{entered: make(chan struct{}), release: make(chan struct{})}
			e := newEnv(t, up, func(o *Options) {
				pt.inner = o.Transport
				o.Transport = pt
				o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
			})
			leaderBody := chatBody("")
			if leaderStream {
				leaderBody = chatBody(`"stream":true`)
			}
			leader := make(chan *result, 1)
			go func() { leader <- e.chat(leaderBody) }()
			<-pt.entered
			follower := make(chan *result, 1)
			go func() { follower <- e.chat(chatBody("")) }()
			waitFlightRefs(t, e.h, 2)
			close(pt.release)

			var r *result
			select {
			case r = <-follower:
			case <-time.After(30 * time.Second): // only a broken build waits this long
				t.Fatal("the follower of a call that panicked is still waiting")
			}
			wantError(t, r, http.StatusBadGateway, "server_error", "")
			if lr := <-leader; lr.err == nil {
				t.Errorf("%s: status %d, want its connection dropped", name, lr.status)
			}
			wantStatus(t, e.chat(chatBody("")), 200, "MISS")
			wantStatus(t, e.chat(chatBody("")), 200, "HIT")
		})
	}
}
