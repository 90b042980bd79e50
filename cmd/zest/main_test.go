package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the server's logger and the test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func noEnv(string) string { return "" }

func TestRunBadInputExits2(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"-bogus"}, "flag provided but not defined: -bogus"},
		{"stray argument", []string{"serve"}, `unexpected argument "serve"`},
		{"missing config", []string{"-config", "/nonexistent/zest.toml"}, "no such file"},
		{"bad config", []string{"-config", writeConfig(t, "[cache]\nnamespace = 3\n")}, "namespace"},
		{"bad upstream", []string{"-upstream", "ftp://x", "-listen", "127.0.0.1:0"}, "upstream.url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb syncBuffer
			code := run(context.Background(), tc.args, noEnv, &out, &errb)
			if code != 2 {
				t.Fatalf("exit code %d, want 2 (stderr %q)", code, errb.String())
			}
			msg := errb.String()
			if !strings.Contains(msg, tc.want) || strings.Count(msg, "\n") != 1 {
				t.Errorf("stderr = %q, want one line containing %q", msg, tc.want)
			}
		})
	}
}

func TestRunVersion(t *testing.T) {
	var out, errb syncBuffer
	if code := run(context.Background(), []string{"-version"}, noEnv, &out, &errb); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !strings.HasPrefix(out.String(), "zest ") || out.String() == "zest dev\n" {
		t.Errorf("version output %q", out.String())
	}
}

// TestRunHelp: -h says what zest is, its flags and its environment, on stdout, exit 0.
func TestRunHelp(t *testing.T) {
	var out, errb syncBuffer
	if code := run(context.Background(), []string{"-h"}, noEnv, &out, &errb); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"reverse proxy", "-upstream", "-config", "ZEST_UPSTREAM_API_KEY", "ZEST_ADMIN_TOKEN"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-h output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestGracefulShutdown starts zest, begins a slow request, asks zest to stop, and checks that
// the request still completes and zest exits 0.
func TestGracefulShutdown(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"object":"list","data":[]}`)
	}))
	defer upstream.Close()

	ctx, stop := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-upstream", upstream.URL + "/v1"}, noEnv, &out, &errb)
	}()
	addr := waitForAddr(t, &errb)

	got := make(chan string, 1)
	go func() {
		resp, err := http.Get(addr + "/v1/models")
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- resp.Status + " " + string(b)
	}()
	// Wait until the request is in flight (the upstream has it), then ask zest to stop.
	<-arrived
	stop()
	waitFor(t, func() bool { return strings.Contains(errb.String(), "shutting down") })
	close(release)
	if r := <-got; !strings.HasPrefix(r, "200") || !strings.Contains(r, `"list"`) {
		t.Fatalf("in-flight request during shutdown got %q", r)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit code %d, stderr %s", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("zest did not exit after shutdown")
	}
}

// postChat sends body to zest at addr as a chat completion with the bearer token, and returns
// the response with its body read.
func postChat(t *testing.T, addr, body, token string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, addr+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

var addrRE = regexp.MustCompile(`addr=(http://[0-9.:]+)`)

func waitForAddr(t *testing.T, b *syncBuffer) string {
	t.Helper()
	var addr string
	waitFor(t, func() bool {
		m := addrRE.FindStringSubmatch(b.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	})
	return addr
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLogWriterFlushes(t *testing.T) {
	var out syncBuffer
	lw := newLogWriter(&out, 10*time.Millisecond)
	io.WriteString(lw, "line one\n")
	waitFor(t, func() bool { return out.String() == "line one\n" })
	io.WriteString(lw, "line two\n")
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "line one\nline two\n" {
		t.Fatalf("after Close the output is %q", got)
	}
}

// TestWiredFromConfig runs zest from a config file with limits, prices and the admin token, and
// checks what each piece of wiring shows a client: rate-limit headers, a HIT, the money saved on
// /metrics, and the admin API.
func TestWiredFromConfig(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o-mini",`+
			`"choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],`+
			`"usage":{"prompt_tokens":1000000,"completion_tokens":1000000,"total_tokens":2000000}}`)
	}))
	defer upstream.Close()
	cfg := writeConfig(t, `
listen = "127.0.0.1:0"
[upstream]
url = "`+upstream.URL+`/v1"
[semantic]
enabled = false
[ratelimit]
requests_per_minute = 60
[telemetry.prices]
"gpt-4o-mini" = { input = 0.15, output = 0.6 }
`)
	env := func(k string) string {
		if k == "ZEST_ADMIN_TOKEN" {
			return "admin-secret"
		}
		return ""
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"-config", cfg}, env, &out, &errb) }()
	addr := waitForAddr(t, &errb)

	chat := func() *http.Response {
		return postChat(t, addr, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`, "sk-client")
	}
	first, second := chat(), chat()
	if first.Header.Get("X-Cache-Status") != "MISS" || second.Header.Get("X-Cache-Status") != "HIT" {
		t.Fatalf("cache statuses %q then %q", first.Header.Get("X-Cache-Status"), second.Header.Get("X-Cache-Status"))
	}
	if got := second.Header.Get("x-ratelimit-limit-requests"); got != "60" {
		t.Errorf("x-ratelimit-limit-requests = %q, want 60", got)
	}
	if got := second.Header.Get("x-ratelimit-remaining-requests"); got != "58" {
		t.Errorf("x-ratelimit-remaining-requests = %q, want 58 (the hit counts)", got)
	}

	resp, err := http.Get(addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// One hit saved 1M input and 1M output tokens: 0.15 + 0.6 dollars.
	if !strings.Contains(string(metrics), `zest_cost_saved_usd_total{model="gpt-4o-mini"} 0.75`) {
		t.Errorf("/metrics lacks the money saved:\n%s", metrics)
	}

	req, _ := http.NewRequest(http.MethodGet, addr+"/admin/stats", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("admin without a token: %v %v", resp.StatusCode, err)
	}
	req.Header.Set("Authorization", "Bearer admin-secret")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("admin with the token: %v %v", resp.StatusCode, err)
	}
	stop()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if strings.Contains(errb.String(), "sk-client") || strings.Contains(errb.String(), "admin-secret") {
		t.Error("a secret reached the log")
	}
}

// TestMemoryLimit: with GOMEMLIMIT unset, the soft limit leaves the collector half the caches'
// budgets as working room on top of them, plus the fixed overhead; a cache that is off counts
// for nothing.
func TestMemoryLimit(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		name            string
		exact, semantic bool
		want            int64
	}{
		{"defaults", true, true, (256+32)*mib*3/2 + 64*mib},
		{"exact only", true, false, 256*mib*3/2 + 64*mib},
		{"caches off", false, false, 64 * mib},
	} {
		var cfg Config
		cfg.Cache.Enabled, cfg.Cache.MaxBytes = c.exact, 256*mib
		cfg.Semantic.Enabled, cfg.Semantic.MaxBytes = c.semantic, 32*mib
		if got := memoryLimit(cfg); got != c.want {
			t.Errorf("%s: memoryLimit = %d MiB, want %d MiB", c.name, got/mib, c.want/mib)
		}
	}
}

// TestMaxConnections: past max_connections a client is not served until a connection closes;
// then it is, and nothing was refused.
func TestMaxConnections(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"object":"list","data":[]}`)
	}))
	defer upstream.Close()
	cfg := writeConfig(t, `
listen = "127.0.0.1:0"
max_connections = 1
[upstream]
url = "`+upstream.URL+`/v1"
`)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"-config", cfg}, noEnv, &out, &errb) }()
	hostport := strings.TrimPrefix(waitForAddr(t, &errb), "http://")

	get := func(c net.Conn) (string, error) {
		if _, err := io.WriteString(c, "GET /v1/models HTTP/1.1\r\nHost: zest\r\n\r\n"); err != nil {
			return "", err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.Status + " " + string(b), err
	}
	first, err := net.Dial("tcp", hostport)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := get(first); err != nil || !strings.HasPrefix(got, "200") {
		t.Fatalf("first connection: %q, %v", got, err)
	}
	// The first connection stays open (kept alive), holding the one slot.
	second, err := net.Dial("tcp", hostport)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	// A negative check: this can only pass wrongly (a slow zest), never fail wrongly.
	second.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if got, err := get(second); err == nil {
		t.Fatalf("second connection served past max_connections = 1: %q", got)
	}
	second.Close()

	third, err := net.Dial("tcp", hostport)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	third.SetReadDeadline(time.Now().Add(10 * time.Second))
	first.Close()
	if got, err := get(third); err != nil || !strings.HasPrefix(got, "200") {
		t.Fatalf("after the first connection closed: %q, %v", got, err)
	}
	stop()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}
