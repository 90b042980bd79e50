package h1

// Each test here pins behaviour against net/http's Transport (run alongside as the reference). Where a test must show
// that a call never returns, a generous watchdog (not a timing loop) bounds it; the pass
// condition is always an event.

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const watchdog = 5 * time.Second

// rawServer accepts connections and hands the i-th one (from 0) to serve.
type rawServer struct {
	ln    net.Listener
	n     atomic.Int64
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func newRawServer(t *testing.T, serve func(i int, c net.Conn, br *bufio.Reader)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			i := int(s.n.Add(1) - 1)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				serve(i, c, bufio.NewReader(c))
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *rawServer) host() string { return s.ln.Addr().String() }
func (s *rawServer) url() string  { return "http://" + s.host() }

// readReq reads one request with its whole body.
func readReq(br *bufio.Reader) (*http.Request, error) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(io.Discard, req.Body)
	return req, err
}

// both runs f against this package's Transport and, as the reference, net/http's.
func both(t *testing.T, host string, f func(t *testing.T, rt http.RoundTripper)) {
	t.Run("h1", func(t *testing.T) { f(t, transportFor(t, host, nil)) })
	t.Run("nethttp", func(t *testing.T) {
		std := &http.Transport{}
		t.Cleanup(std.CloseIdleConnections)
		f(t, std)
	})
}

// blockingBody yields head, then blocks until release is closed (a client uploading slowly).
type blockingBody struct {
	head    []byte
	release chan struct{}
	closed  atomic.Bool
}

func (b *blockingBody) Read(p []byte) (int, error) {
	if len(b.head) > 0 {
		n := copy(p, b.head)
		b.head = b.head[n:]
		return n, nil
	}
	<-b.release
	return 0, io.ErrUnexpectedEOF
}

func (b *blockingBody) Close() error { b.closed.Store(true); return nil }

type result struct {
	resp *http.Response
	err  error
}

// TestEarlyResponse: an upstream that answers before reading the request body (401, 413)
// while the client's body is still streaming. net/http's Transport writes the body on its own
// goroutine and returns the answer; h1, which writes a body whole before it reads anything,
// leaves a streamed body to its fallback (here net/http's Transport, as in zest).
func TestEarlyResponse(t *testing.T) {
	s := newRawServer(t, func(i int, c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 6\r\nConnection: close\r\n\r\ndenied")
		io.Copy(io.Discard, br) // hold the connection until the test ends
	})
	std := &http.Transport{}
	t.Cleanup(std.CloseIdleConnections)
	for name, rt := range map[string]http.RoundTripper{
		"h1": transportFor(t, s.host(), func(o *Options) { o.Fallback = std }), "nethttp": std,
	} {
		t.Run(name, func(t *testing.T) { earlyResponse(t, s, rt) })
	}
}

func earlyResponse(t *testing.T, s *rawServer, rt http.RoundTripper) {
	body := &blockingBody{head: []byte("first bytes"), release: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); close(body.release) }()
	req, _ := http.NewRequestWithContext(ctx, "POST", s.url()+"/v1/files", body)
	done := make(chan result, 1)
	go func() { r, err := rt.RoundTrip(req); done <- result{r, err} }()
	select {
	case r := <-done:
		if r.err != nil || r.resp.StatusCode != 401 {
			t.Fatalf("got %v %v, want the upstream's 401", r.resp, r.err)
		}
		r.resp.Body.Close()
	case <-time.After(watchdog):
		t.Fatalf("no answer after %v: the upstream's 401 is never read while the request body is still being sent", watchdog)
	}
}

// TestEarlyResponseGoUpstream: the same with a net/http upstream that refuses a large
// body without reading it (a 413 or 401 from its handler): it discards 256 KiB, then closes.
// net/http's Transport returns the 413; so does h1, which reads the answer when its write fails.
func TestEarlyResponseGoUpstream(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
	})
	both(t, strings.TrimPrefix(s.URL, "http://"), func(t *testing.T, rt http.RoundTripper) {
		req, _ := http.NewRequest("POST", s.URL+"/v1/chat/completions", strings.NewReader(strings.Repeat("x", 32<<20)))
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatalf("err = %v, want the upstream's 413", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 413 {
			t.Fatalf("status %d, want 413", resp.StatusCode)
		}
	})
}

// gateConn holds a deadline in the past (the transport's cancellation hook) until gate opens:
// the hook's goroutine simply has not run yet.
type gateConn struct {
	net.Conn
	gate chan struct{}
}

func (c *gateConn) SetDeadline(d time.Time) error {
	if !d.IsZero() && d.Before(time.Now()) {
		<-c.gate
	}
	return c.Conn.SetDeadline(d)
}

// TestDoneContextNotSent: a call whose context has already ended sends nothing upstream, even
// on a pooled connection whose cancellation hook has not run yet (for zest: no billable call
// after every client left), as net/http's Transport checks the context first.
func TestDoneContextNotSent(t *testing.T) {
	var requests atomic.Int64
	s := newRawServer(t, func(i int, c net.Conn, br *bufio.Reader) {
		for {
			if _, err := readReq(br); err != nil {
				return
			}
			requests.Add(1)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		}
	})
	gate := make(chan struct{})
	defer close(gate)
	tr := transportFor(t, s.host(), func(o *Options) {
		o.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &gateConn{Conn: nc, gate: gate}, nil
		}
	})
	if _, _, err := call(t, tr, context.Background(), "POST", s.url()+"/", "x"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := call(t, tr, ctx, "POST", s.url()+"/v1/chat/completions", "billable")
	if n := requests.Load(); n != 1 || !errors.Is(err, context.Canceled) {
		t.Fatalf("call with a cancelled context: err = %v, upstream saw %d requests; want context.Canceled and 1", err, n)
	}
}

// TestStaleConnRetry: the keep-alive race. The upstream closes a pooled connection just
// as a request goes out on it (its idle timeout: 5 s in uvicorn and Node). Like net/http, h1
// retries an idempotent request once on a new connection (else GET /v1/models would get a 502).
func TestStaleConnRetry(t *testing.T) {
	s := newRawServer(t, func(i int, c net.Conn, br *bufio.Reader) {
		for n := 0; ; n++ {
			if _, err := readReq(br); err != nil {
				return
			}
			if i%2 == 0 && n == 1 {
				return // read the second request, then close without an answer
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	both(t, s.host(), func(t *testing.T, rt http.RoundTripper) {
		for k := range 2 {
			if _, got, err := call(t, rt, context.Background(), "GET", s.url()+"/v1/models", ""); err != nil || got != "ok" {
				t.Fatalf("call %d: %q %v", k, got, err)
			}
		}
	})
}

// TestIdleReaped: an idle connection is closed once IdleTimeout passes even when no further
// call comes, as net/http's Transport does: a quiet zest does not keep up to MaxIdle sockets
// (in CLOSE_WAIT once the upstream times them out) for ever.
func TestIdleReaped(t *testing.T) {
	closed := make(chan struct{}, 4)
	s := newRawServer(t, func(i int, c net.Conn, br *bufio.Reader) {
		for {
			if _, err := readReq(br); err != nil {
				closed <- struct{}{}
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	const idle = 10 * time.Millisecond
	t.Run("h1", func(t *testing.T) {
		tr := transportFor(t, s.host(), func(o *Options) { o.IdleTimeout = idle })
		if _, _, err := call(t, tr, context.Background(), "GET", s.url()+"/", ""); err != nil {
			t.Fatal(err)
		}
		select {
		case <-closed:
		case <-time.After(watchdog):
			t.Fatalf("idle connection still open %v after its %v IdleTimeout (%d pooled)", watchdog, idle, tr.IdleConns())
		}
	})
	t.Run("nethttp", func(t *testing.T) {
		std := &http.Transport{IdleConnTimeout: idle}
		if _, _, err := call(t, std, context.Background(), "GET", s.url()+"/", ""); err != nil {
			t.Fatal(err)
		}
		select {
		case <-closed:
		case <-time.After(watchdog):
			t.Fatal("net/http kept the idle connection")
		}
	})
}

// TestEarlyHintsForwarded: ReverseProxy forwards 1xx answers (103 Early Hints) through
// httptrace's Got1xxResponse, which h1 calls as net/http's Transport does.
func TestEarlyHintsForwarded(t *testing.T) {
	s := newRawServer(t, func(i int, c net.Conn, br *bufio.Reader) {
		for {
			if _, err := readReq(br); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"+
				"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	both(t, s.host(), func(t *testing.T, rt http.RoundTripper) {
		u, _ := url.Parse(s.url())
		front := httptest.NewServer(&httputil.ReverseProxy{
			Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
			Transport: rt,
		})
		defer front.Close()
		var hints atomic.Int64
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
				if code == 103 {
					hints.Add(1)
				}
				return nil
			},
		})
		if _, got, err := call(t, http.DefaultTransport, ctx, "GET", front.URL+"/", ""); err != nil || got != "ok" {
			t.Fatalf("%q %v", got, err)
		}
		if hints.Load() != 1 {
			t.Fatalf("client behind ReverseProxy saw %d 103 Early Hints, want 1", hints.Load())
		}
	})
}

// TestInvalidMethod: a method that is not a token is refused, as net/http's Transport does;
// written into the request line, a method with CRLF would smuggle a second request upstream.
func TestInvalidMethod(t *testing.T) {
	got := make(chan string, 4)
	s := newRawServer(t, func(i int, c net.Conn, br *bufio.Reader) {
		for {
			req, err := readReq(br)
			if err != nil {
				return
			}
			got <- req.Method + " " + req.URL.Path
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		}
	})
	both(t, s.host(), func(t *testing.T, rt http.RoundTripper) {
		req, _ := http.NewRequest("GET", s.url()+"/a", nil)
		req.Method = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\nGET"
		resp, err := rt.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
			first := <-got
			t.Fatalf("invalid method accepted; the upstream read %q (a smuggled request), want an error", first)
		}
	})
}

// countConn counts the connections a transport has open.
type countConn struct {
	net.Conn
	open *atomic.Int64
	once sync.Once
}

func (c *countConn) Close() error {
	c.once.Do(func() { c.open.Add(-1) })
	return c.Conn.Close()
}

// TestNoConnLeak: many calls ending every way (read to the end, closed early, context
// cancelled mid-body, upstream error mid-body, Connection: close) leave no connection open
// beyond the pool, and every request body closed.
func TestNoConnLeak(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		switch r.URL.Path {
		case "/close":
			w.Header().Set("Connection", "close")
		case "/abort":
			w.Header().Set("Content-Length", "100")
			io.WriteString(w, "short")
			panic(http.ErrAbortHandler)
		case "/204":
			w.WriteHeader(204)
			return
		}
		io.WriteString(w, strings.Repeat("x", 10000))
	})
	var open atomic.Int64
	fb := &fallback{}
	tr := newTransport(t, s, func(o *Options) {
		o.MaxIdle = 4
		o.Fallback = fb
		o.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			open.Add(1)
			return &countConn{Conn: nc, open: &open}, nil
		}
	})
	var bodies []*blockingBody
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := []string{"/", "/close", "/abort", "/204", "/early", "/cancel"}[i%6]
			body := &blockingBody{head: []byte("body"), release: make(chan struct{})}
			close(body.release)
			mu.Lock()
			bodies = append(bodies, body)
			mu.Unlock()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "POST", s.URL+path, io.MultiReader(strings.NewReader("x")))
			req.Body = body
			req.ContentLength = 4
			req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("body")), nil } // in memory: h1's
			resp, err := tr.RoundTrip(req)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			switch path {
			case "/early":
				resp.Body.Read(make([]byte, 10))
			case "/cancel":
				resp.Body.Read(make([]byte, 10))
				cancel()
				io.Copy(io.Discard, resp.Body)
			default:
				io.Copy(io.Discard, resp.Body)
			}
		}()
	}
	wg.Wait()
	if len(fb.urls) != 0 {
		t.Fatalf("%d calls went to the fallback, want none", len(fb.urls))
	}
	if n, idle := open.Load(), int64(tr.IdleConns()); n != idle || idle > 4 {
		t.Errorf("%d connections open, %d pooled (MaxIdle 4): want equal", n, idle)
	}
	for i, b := range bodies {
		if !b.closed.Load() {
			t.Errorf("request body %d not closed", i)
		}
	}
	tr.CloseIdleConnections()
	if n := open.Load(); n != 0 {
		t.Errorf("%d connections open after CloseIdleConnections", n)
	}
}

// TestBodyWriteErrorType: a failed request-body write fails the call with the connection's
// *net.OpError (what zest's errText and its timeout test look for), as with net/http's
// Transport, not with Request.Write's own wrapping, which has no Unwrap.
func TestBodyWriteErrorType(t *testing.T) {
	s := newRawServer(t, func(i int, c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		c.(*net.TCPConn).SetLinger(0) // reset: the client's next write fails
	})
	tr := transportFor(t, s.host(), nil)
	req, _ := http.NewRequest("POST", s.url()+"/", strings.NewReader(strings.Repeat("x", 64<<20)))
	_, err := tr.RoundTrip(req)
	var oe *net.OpError
	if !errors.As(err, &oe) {
		t.Fatalf("err = %v (%T chain), want a *net.OpError in its chain", err, errors.Unwrap(err))
	}
}
