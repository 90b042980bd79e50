package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zest-proxy/zest/cache"
	"github.com/zest-proxy/zest/proxy/h1"
)

// fakeClock is a settable clock shared by the proxy and its cache.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 7, 31, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// upstreamCall is what the fake upstream received.
type upstreamCall struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
}

// upstream is an httptest upstream that records every call and then runs fn.
type upstream struct {
	srv   *httptest.Server
	mu    sync.Mutex
	calls []upstreamCall
}

func newUpstream(t testing.TB, fn http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.calls = append(u.calls, upstreamCall{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
		u.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		fn(w, r)
	}))
	t.Cleanup(u.close)
	return u
}

func (u *upstream) close() {
	u.srv.CloseClientConnections()
	u.srv.Close()
}

// base is the OpenAI-style base URL of the upstream.
func (u *upstream) base() string { return u.srv.URL + "/v1" }

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.calls)
}

func (u *upstream) last() upstreamCall {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.calls) == 0 {
		return upstreamCall{}
	}
	return u.calls[len(u.calls)-1]
}

// completionJSON is a plain chat.completion the JSON upstreams answer with.
const completionJSON = `{"id":"chatcmpl-zest1","object":"chat.completion","created":1753958400,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Paris is the capital of France.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":14,"completion_tokens":7,"total_tokens":21}}`

// jsonAnswer answers every call with status and body as application/json.
func jsonAnswer(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream", "yes")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// env is a zest Handler served on loopback in front of an upstream.
type env struct {
	t      testing.TB
	h      *Handler
	srv    *testServer
	up     *upstream
	cache  *cache.Cache
	clock  *fakeClock
	client *http.Client
	upTr   idleCloser // zest's transport to the upstream
}

// idleCloser is a transport whose idle connections a test closes when it ends.
type idleCloser interface {
	http.RoundTripper
	CloseIdleConnections()
}

// shippedTransport is the upstream transport zest uses by default for base (package h1's for
// the tests' plain-http upstreams).
func shippedTransport(t testing.TB, base string) idleCloser {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	return upstreamTransport(u).(idleCloser)
}

// newEnv builds zest with an exact cache and a fake clock; mod edits the options.
func newEnv(t testing.TB, up *upstream, mod func(*Options)) *env {
	t.Helper()
	return newEnvSized(t, up, 4<<20, mod)
}

// newEnvSized is newEnv with an exact cache of cacheBytes.
func newEnvSized(t testing.TB, up *upstream, cacheBytes int64, mod func(*Options)) *env {
	t.Helper()
	clock := newClock()
	c, err := cache.New(cache.Options{MaxBytes: cacheBytes, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	tr := shippedTransport(t, up.base())
	opts := Options{Upstream: up.base(), Cache: c, Now: clock.Now, Transport: tr}
	if mod != nil {
		mod(&opts)
	}
	h, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, h: h, up: up, cache: c, clock: clock, upTr: tr}
	e.srv = newTestServer(t, h)
	ctr := &http.Transport{MaxIdleConnsPerHost: 200}
	e.client = &http.Client{Transport: ctr}
	t.Cleanup(func() {
		ctr.CloseIdleConnections()
		e.srv.Close()
		tr.CloseIdleConnections()
		h.Wait(context.Background()) // stores still running must finish before the cache closes
		c.Close()
	})
	return e
}

// testServer serves a handler with the server zest ships (h1.Server) on loopback.
type testServer struct {
	URL      string
	Listener net.Listener
	srv      *h1.Server
	done     chan struct{}
}

func newTestServer(t testing.TB, h http.Handler) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{URL: "http://" + ln.Addr().String(), Listener: ln, done: make(chan struct{}),
		srv: &h1.Server{Handler: h}}
	go func() {
		defer close(s.done)
		s.srv.Serve(ln)
	}()
	return s
}

// Close closes every connection and waits for the handlers still running to return.
func (s *testServer) Close() {
	s.srv.Close()
	<-s.done
	s.srv.Shutdown(context.Background())
}

// result is a fully read response.
type result struct {
	status int
	header http.Header
	body   []byte
	err    error // reading the body failed (a cut stream)
}

// reqOpt edits an outgoing client request.
type reqOpt func(*http.Request)

func withHeader(k, v string) reqOpt { return func(r *http.Request) { r.Header.Set(k, v) } }
func withToken(tok string) reqOpt   { return withHeader("Authorization", "Bearer "+tok) }

// do sends a request to zest and reads the whole answer.
func (e *env) do(method, path, body string, opts ...reqOpt) *result {
	e.t.Helper()
	return e.doCtx(context.Background(), method, path, body, opts...)
}

func (e *env) doCtx(ctx context.Context, method, path, body string, opts ...reqOpt) *result {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer sk-client-one")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return &result{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return &result{status: resp.StatusCode, header: resp.Header, body: b, err: err}
}

// chat posts a chat-completions body.
func (e *env) chat(body string, opts ...reqOpt) *result {
	e.t.Helper()
	return e.do(http.MethodPost, "/v1/chat/completions", body, opts...)
}

// chatBody is a small chat-completions request; extra members are spliced in after model.
func chatBody(extra string) string {
	if extra != "" {
		extra += ","
	}
	return `{"model":"gpt-4o-mini",` + extra + `"messages":[{"role":"user","content":"What is the capital of France?"}]}`
}

// wantStatus checks the status and cache status of a result.
func wantStatus(t testing.TB, r *result, status int, cacheStatus string) {
	t.Helper()
	if r.err != nil {
		t.Fatalf("request failed: %v", r.err)
	}
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	if got := r.header.Get("X-Cache-Status"); got != cacheStatus {
		t.Fatalf("X-Cache-Status = %q, want %q", got, cacheStatus)
	}
}

func wantCalls(t testing.TB, up *upstream, n int) {
	t.Helper()
	if got := up.count(); got != n {
		t.Fatalf("upstream calls = %d, want %d", got, n)
	}
}

// apiErr is OpenAI's error envelope as a client decodes it.
type apiErr struct {
	Message string
	Type    string
	Param   *string
	Code    *string
}

// wantError checks that r is zest's own error: the status, a JSON envelope with all four
// members (param and code may be null), and the given type and param ("" = null).
func wantError(t testing.TB, r *result, status int, typ, param string) apiErr {
	t.Helper()
	if r.err != nil {
		t.Fatalf("request failed: %v", r.err)
	}
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var env map[string]map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &env); err != nil {
		t.Fatalf("error body is not an OpenAI envelope: %v: %s", err, r.body)
	}
	inner, ok := env["error"]
	if !ok {
		t.Fatalf("error body has no error member: %s", r.body)
	}
	for _, k := range []string{"message", "type", "param", "code"} {
		if _, ok := inner[k]; !ok {
			t.Errorf("error envelope lacks %q: %s", k, r.body)
		}
	}
	var e apiErr
	json.Unmarshal(inner["message"], &e.Message)
	json.Unmarshal(inner["type"], &e.Type)
	json.Unmarshal(inner["param"], &e.Param)
	json.Unmarshal(inner["code"], &e.Code)
	if e.Message == "" {
		t.Errorf("error message is empty: %s", r.body)
	}
	if e.Type != typ {
		t.Errorf("error type = %q, want %q", e.Type, typ)
	}
	gotParam := ""
	if e.Param != nil {
		gotParam = *e.Param
	}
	if gotParam != param {
		t.Errorf("error param = %q, want %q (%s)", gotParam, param, r.body)
	}
	return e
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// golden reads a file of proxy/testdata.
func golden(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkGoroutines records the goroutine count and, at cleanup (registered first, so it runs
// after every other cleanup of the test), waits for the count to settle back.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		var n int
		for i := 0; i < 500; i++ {
			n = runtime.NumGoroutine()
			if n <= before {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("goroutines: %d before, %d after the test; leaked:\n%s", before, n, buf)
	})
}

// heldAnswer is answer held back: the first call closes started, and every call waits for
// release (or its client to leave) before answering. Tests of coalescing use it to let
// followers join a call before it answers.
func heldAnswer(started chan<- struct{}, release <-chan struct{}, answer http.HandlerFunc) http.HandlerFunc {
	var once sync.Once
	return func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(started) })
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		answer(w, r)
	}
}

// chatTogether sends bodies as one coalesced call to e's upstream, held by heldAnswer(started,
// release, ...): the first becomes the leader, the rest join it, and release is closed once the
// flight has them all. It returns each body's result.
func chatTogether(t testing.TB, e *env, started <-chan struct{}, release chan<- struct{}, bodies ...string) []*result {
	t.Helper()
	results := make([]*result, len(bodies))
	var wg sync.WaitGroup
	for i, b := range bodies {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = e.chat(b) }()
		if i == 0 {
			<-started
		}
	}
	waitFlightRefs(t, e.h, len(bodies))
	close(release)
	wg.Wait()
	return results
}

// waitFlightRefs polls until the live flight of key has n clients (white box: tests of
// coalescing need every follower to have joined before the upstream answers).
func waitFlightRefs(t testing.TB, h *Handler, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		got := 0
		h.flights.mu.Lock()
		for _, f := range h.flights.m {
			f.mu.Lock()
			got = max(got, f.refs)
			f.mu.Unlock()
		}
		h.flights.mu.Unlock()
		if got == n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("the flight never reached %d clients (flights: %d)", n, len(h.flights.m))
}
