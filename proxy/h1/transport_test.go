package h1

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// server is an httptest upstream that counts the connections it accepted.
type server struct {
	*httptest.Server
	conns atomic.Int64
}

func newServer(t *testing.T, h http.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewUnstartedServer(h)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// fallback records the requests passed on to it.
type fallback struct {
	mu   sync.Mutex
	urls []string
}

func (f *fallback) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	f.urls = append(f.urls, r.URL.String())
	f.mu.Unlock()
	return &http.Response{StatusCode: 299, Body: http.NoBody, Request: r}, nil
}

func newTransport(t *testing.T, s *server, mod func(*Options)) *Transport {
	t.Helper()
	return transportFor(t, strings.TrimPrefix(s.URL, "http://"), mod)
}

// transportFor is a Transport for host with a recording fallback, closed when the test ends.
func transportFor(t *testing.T, host string, mod func(*Options)) *Transport {
	t.Helper()
	o := Options{Host: host, Fallback: &fallback{}}
	if mod != nil {
		mod(&o)
	}
	tr, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// call sends a request through tr and reads the whole answer.
func call(t *testing.T, tr http.RoundTripper, ctx context.Context, method, url, body string) (*http.Response, string, error) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// TestAnswersReuseOneConnection: answers of every framing (a length, chunks, none at all) come
// back whole and leave their connection for the next call.
func TestAnswersReuseOneConnection(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		in, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/length":
			w.Write(append([]byte("echo:"), in...))
		case "/chunked":
			io.WriteString(w, "part one,")
			w.(http.Flusher).Flush()
			io.WriteString(w, "part two")
		case "/empty":
			w.Header().Set("Content-Length", "0")
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
		case "/hints":
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			io.WriteString(w, "after hints")
		}
	})
	tr := newTransport(t, s, nil)
	cases := []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"POST", "/length", `{"a":1}`, 200, `echo:{"a":1}`},
		{"GET", "/chunked", "", 200, "part one,part two"},
		{"GET", "/empty", "", 200, ""},
		{"GET", "/nocontent", "", 204, ""},
		{"HEAD", "/length", "", 200, ""},
		{"GET", "/hints", "", 200, "after hints"},
		{"POST", "/length", "again", 200, "echo:again"},
	}
	for _, c := range cases {
		resp, got, err := call(t, tr, context.Background(), c.method, s.URL+c.path, c.body)
		if err != nil {
			t.Fatalf("%s %s: %v", c.method, c.path, err)
		}
		if resp.StatusCode != c.status || got != c.want {
			t.Errorf("%s %s: %d %q, want %d %q", c.method, c.path, resp.StatusCode, got, c.status, c.want)
		}
		if n := tr.IdleConns(); n != 1 {
			t.Errorf("%s %s: %d idle connections after the answer, want 1", c.method, c.path, n)
		}
	}
	if n := s.conns.Load(); n != 1 {
		t.Errorf("upstream accepted %d connections for %d calls, want 1", n, len(cases))
	}
}

// waitClosed blocks until the upstream's close of c's connection has reached this end.
func waitClosed(t *testing.T, c *conn) {
	t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.nc.SetReadDeadline(time.Time{})
	if _, err := c.br.Peek(1); err != io.EOF {
		t.Fatalf("peek on a connection the upstream closed: %v, want EOF", err)
	}
}

// TestUpstreamClosedIdleConnection: a pooled connection the upstream has closed (its keep-alive
// timeout, a restart) is noticed before it carries a request; the call dials a new one.
func TestUpstreamClosedIdleConnection(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	tr := newTransport(t, s, nil)
	if _, got, err := call(t, tr, context.Background(), "POST", s.URL+"/", "x"); err != nil || got != "ok" {
		t.Fatalf("first call: %q %v", got, err)
	}
	s.CloseClientConnections()
	tr.mu.Lock()
	idle := tr.idle[0]
	tr.mu.Unlock()
	waitClosed(t, idle)
	if _, got, err := call(t, tr, context.Background(), "POST", s.URL+"/", "x"); err != nil || got != "ok" {
		t.Fatalf("call after the upstream closed the idle connection: %q %v", got, err)
	}
	if n := s.conns.Load(); n != 2 {
		t.Errorf("upstream accepted %d connections, want 2", n)
	}
}

// TestCancel: a request context that ends while the call waits for the answer's head, or while
// its body is read, ends the call with the context's error; the connection is not reused.
func TestCancel(t *testing.T) {
	hold := make(chan struct{})
	defer close(hold)
	arrived := make(chan struct{}, 2)
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/body" {
			io.WriteString(w, "first part")
			w.(http.Flusher).Flush()
		}
		arrived <- struct{}{}
		select {
		case <-hold:
		case <-r.Context().Done():
		}
	})
	tr := newTransport(t, s, nil)

	t.Run("head", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-arrived; cancel() }()
		_, _, err := call(t, tr, ctx, "POST", s.URL+"/head", "x")
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("body", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/body", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		<-arrived
		buf := make([]byte, len("first part"))
		if _, err := io.ReadFull(resp.Body, buf); err != nil {
			t.Fatal(err)
		}
		cancel()
		if _, err := resp.Body.Read(buf); !errors.Is(err, context.Canceled) {
			t.Fatalf("read after cancel: %v, want context.Canceled", err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		defer cancel()
		if _, _, err := call(t, tr, ctx, "POST", s.URL+"/head", "x"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want context.DeadlineExceeded", err)
		}
	})
	if n := tr.IdleConns(); n != 0 {
		t.Errorf("%d idle connections after cancelled calls, want 0", n)
	}
}

// TestNotReused: a body closed before its end, an answer that says Connection: close and a
// request that asked for it (req.Close or the header) each leave their connection closed.
func TestNotReused(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/close" {
			w.Header().Set("Connection", "close")
		}
		io.WriteString(w, strings.Repeat("x", 64<<10))
	})
	tr := newTransport(t, s, nil)

	req, _ := http.NewRequest("GET", s.URL+"/early", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Read(make([]byte, 10))
	resp.Body.Close()
	if n := tr.IdleConns(); n != 0 {
		t.Errorf("body closed early: %d idle connections, want 0", n)
	}
	if _, _, err := call(t, tr, context.Background(), "GET", s.URL+"/close", ""); err != nil {
		t.Fatal(err)
	}
	if n := tr.IdleConns(); n != 0 {
		t.Errorf("Connection: close answer: %d idle connections, want 0", n)
	}
	for name, ask := range map[string]func(*http.Request){
		"Close":                      func(r *http.Request) { r.Close = true },
		"a Connection: close header": func(r *http.Request) { r.Header.Set("Connection", "close") },
	} {
		req, _ = http.NewRequest("GET", s.URL+"/", nil)
		ask(req)
		resp, err = tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if n := tr.IdleConns(); n != 0 {
			t.Errorf("request with %s: %d idle connections, want 0", name, n)
		}
	}
	if n := s.conns.Load(); n != 4 {
		t.Errorf("upstream accepted %d connections, want 4", n)
	}
}

// TestFallback: https, another host, a protocol upgrade and CONNECT go to the fallback.
func TestFallback(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {})
	fb := &fallback{}
	tr := newTransport(t, s, func(o *Options) { o.Fallback = fb })
	host := strings.TrimPrefix(s.URL, "http://")
	for _, u := range []string{"https://" + host + "/a", "http://other.example:80/b", s.URL + "/upgrade"} {
		req, _ := http.NewRequest("GET", u, nil)
		if strings.HasSuffix(u, "/upgrade") {
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
		}
		resp, err := tr.RoundTrip(req)
		if err != nil || resp.StatusCode != 299 {
			t.Errorf("%s: %v %v, want the fallback's 299", u, resp, err)
		}
	}
	req, _ := http.NewRequest("CONNECT", s.URL, nil)
	if resp, err := tr.RoundTrip(req); err != nil || resp.StatusCode != 299 {
		t.Errorf("CONNECT: %v %v, want the fallback's 299", resp, err)
	}
	if len(fb.urls) != 4 || s.conns.Load() != 0 {
		t.Errorf("fallback saw %v and the upstream %d connections, want 4 and 0", fb.urls, s.conns.Load())
	}
}

// TestPoolBounds: at most MaxIdle connections stay pooled, and one idle longer than
// IdleTimeout is closed instead of reused.
func TestPoolBounds(t *testing.T) {
	const calls = 4
	arrived := make(chan struct{}, calls)
	release := make(chan struct{})
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			arrived <- struct{}{}
			<-release
		}
		io.WriteString(w, "ok")
	})
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	tr := newTransport(t, s, func(o *Options) { o.MaxIdle = 2; o.IdleTimeout = time.Minute; o.Now = clock })
	var wg sync.WaitGroup
	for range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, got, err := call(t, tr, context.Background(), "GET", s.URL+"/hold", ""); err != nil || got != "ok" {
				t.Errorf("held call: %q %v", got, err)
			}
		}()
	}
	for range calls {
		<-arrived
	}
	close(release)
	wg.Wait()
	if n := tr.IdleConns(); n != 2 {
		t.Fatalf("%d idle connections after %d calls at once, want MaxIdle 2", n, calls)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	if _, _, err := call(t, tr, context.Background(), "GET", s.URL+"/", ""); err != nil {
		t.Fatal(err)
	}
	if n, idle := s.conns.Load(), tr.IdleConns(); n != calls+1 || idle != 1 {
		t.Errorf("after the idle timeout: %d connections accepted, %d idle; want %d and 1", n, idle, calls+1)
	}
}

// TestStreamedBodyToFallback: a request body streamed from a client (no GetBody) goes to the
// fallback, body and all; an in-memory one does not.
func TestStreamedBodyToFallback(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) })
	fb := &fallback{}
	tr := newTransport(t, s, func(o *Options) { o.Fallback = fb })
	req, _ := http.NewRequest("POST", s.URL+"/streamed", io.NopCloser(strings.NewReader("body")))
	if resp, err := tr.RoundTrip(req); err != nil || resp.StatusCode != 299 {
		t.Errorf("streamed body: %v %v, want the fallback's 299", resp, err)
	}
	if _, _, err := call(t, tr, context.Background(), "POST", s.URL+"/in-memory", "body"); err != nil {
		t.Fatal(err)
	}
	if len(fb.urls) != 1 || s.conns.Load() != 1 {
		t.Errorf("fallback saw %v, the upstream %d connections; want the streamed call and 1", fb.urls, s.conns.Load())
	}
}

// TestDefaultPort: a Host without a port is dialled on port 80.
func TestDefaultPort(t *testing.T) {
	for host, want := range map[string]string{"example.com": "example.com:80", "[::1]": "[::1]:80", "10.0.0.1:8000": "10.0.0.1:8000"} {
		tr, err := New(Options{Host: host, Fallback: &fallback{}})
		if err != nil {
			t.Fatal(err)
		}
		if tr.addr != want {
			t.Errorf("Host %q dials %q, want %q", host, tr.addr, want)
		}
	}
}

// TestHeadLimit: a response head beyond MaxHeaderBytes fails the call instead of growing
// without bound; one within it passes.
func TestHeadLimit(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Big", strings.Repeat("a", 4<<10))
		io.WriteString(w, "ok")
	})
	small := newTransport(t, s, func(o *Options) { o.MaxHeaderBytes = 1 << 10 })
	if _, _, err := call(t, small, context.Background(), "GET", s.URL+"/", ""); !errors.Is(err, errHeadTooLarge) {
		t.Errorf("4 KiB header, 1 KiB limit: err = %v, want errHeadTooLarge", err)
	}
	big := newTransport(t, s, func(o *Options) { o.MaxHeaderBytes = 8 << 10 })
	for range 2 { // the second call reuses the connection: the limit is per response head
		if _, got, err := call(t, big, context.Background(), "GET", s.URL+"/", ""); err != nil || got != "ok" {
			t.Errorf("4 KiB header, 8 KiB limit: %q %v", got, err)
		}
	}
}
