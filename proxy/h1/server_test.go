package h1

// Tests of what h1.Server does beyond net/http's behaviour (server_compat_test.go): the lazy
// watch for a client going away, bounded draining, Close, and panic logging. The watch tests
// set package-level hooks, so none of them runs in parallel.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// startH1 serves h with an h1.Server on loopback and returns its address.
func startH1(t *testing.T, h http.Handler) string {
	t.Helper()
	return srvStart(t, "h1", h, srvConfig{}).addr
}

// watchHooks installs the watch test hooks for the test: started receives one value per watch
// begun, read the result of each watch read.
func watchHooks(t *testing.T) (started chan struct{}, read chan int) {
	started, read = make(chan struct{}, 16), make(chan int, 16)
	testHookWatchRead = func() { started <- struct{}{} }
	testHookWatchReadDone = func(n int, err error) { read <- n }
	t.Cleanup(func() { testHookWatchRead, testHookWatchReadDone = nil, nil })
	return started, read
}

// TestServerNoWatchUnasked: a request whose handler never asks its context for Done or Err
// costs no watch; one that asks gets exactly one, and its client going away ends the context.
func TestServerNoWatchUnasked(t *testing.T) {
	started, _ := watchHooks(t)
	gone := make(chan error, 1)
	addr := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/watch" {
			<-r.Context().Done()
			<-r.Context().Done()
			gone <- r.Context().Err()
			return
		}
		io.WriteString(w, "ok")
	}))
	c := srvDial(t, addr)
	for range 3 {
		c.send(srvReq("GET", "/", ""))
		c.read("GET")
	}
	select {
	case <-started:
		t.Fatal("a watch started for requests that never asked for one")
	default:
	}
	c.send(srvReq("GET", "/watch", ""))
	srvRecv(t, started, "the watch to start")
	c.c.Close()
	if err := srvRecv(t, gone, "the context to end"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Err() = %v, want context.Canceled", err)
	}
	if len(started) != 0 {
		t.Fatalf("%d more watches started, want one per request", len(started))
	}
}

// TestServerWatchDelayed: a handler that asks its context for Done and answers within
// watchDelay costs no watch (here the delay is an hour: no timing involved).
func TestServerWatchDelayed(t *testing.T) {
	started, _ := watchHooks(t)
	d := watchDelay
	t.Cleanup(func() { watchDelay = d }) // after the server's own cleanup, which runs first
	watchDelay = time.Hour
	addr := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Context().Done()
		io.WriteString(w, "ok")
	}))
	c := srvDial(t, addr)
	for range 3 {
		c.send(srvReq("GET", "/", ""))
		c.read("GET")
	}
	if len(started) != 0 {
		t.Fatalf("%d watches started for answers given before the delay", len(started))
	}
}

// TestServerWatchWaitsForBody: a context asked for Done before the body is read starts no
// watch (it would take body bytes); the watch starts when the body is read to its end.
func TestServerWatchWaitsForBody(t *testing.T) {
	started, _ := watchHooks(t)
	asked, sendBody := make(chan struct{}), make(chan struct{})
	got := make(chan string, 1)
	addr := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		done := r.Context().Done()
		close(asked)
		<-sendBody
		b, _ := io.ReadAll(r.Body)
		<-done
		got <- string(b)
	}))
	c := srvDial(t, addr)
	c.send(srvReq("POST", "/", "Content-Length: 5\r\n"))
	srvRecv(t, asked, "the handler to ask for Done")
	select {
	case <-started:
		t.Fatal("the watch started before the body was read")
	default:
	}
	c.send("hello")
	close(sendBody)
	srvRecv(t, started, "the watch to start after the body")
	c.c.Close()
	if b := srvRecv(t, got, "the context to end"); b != "hello" {
		t.Fatalf("body %q, want hello (the watch must not take body bytes)", b)
	}
}

// TestServerWatchKeepsNextRequest: a pipelined request's first byte read by the watch is not
// lost: the next request is served whole, and the running one is not cancelled.
func TestServerWatchKeepsNextRequest(t *testing.T) {
	started, read := watchHooks(t)
	watching, ctxErr := make(chan struct{}), make(chan error, 1)
	sent := make(chan struct{})
	addr := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/first" {
			r.Context().Done()
			close(watching)
			<-sent
			ctxErr <- r.Context().Err()
		}
		io.WriteString(w, r.URL.Path)
	}))
	c := srvDial(t, addr)
	c.send(srvReq("GET", "/first", ""))
	srvRecv(t, watching, "the handler to ask for Done")
	srvRecv(t, started, "the watch to start")
	c.send(srvReq("GET", "/second", ""))
	if n := srvRecv(t, read, "the watch's read"); n != 1 {
		t.Fatalf("the watch read %d bytes, want 1", n)
	}
	close(sent)
	if err := srvRecv(t, ctxErr, "the handler"); err != nil {
		t.Fatalf("the first request's context ended (%v) though its client is still there", err)
	}
	for _, want := range []string{"/first", "/second"} {
		if resp, body := c.read("GET"); resp.StatusCode != 200 || body != want {
			t.Fatalf("got %d %q, want %q", resp.StatusCode, body, want)
		}
	}
}

// TestServerWatchIgnoresBodyDeadline: a read deadline the handler set for its body (as zest's
// body_timeout does) bounds the body only. Once the body is in, the watch does not take the
// deadline passing for the client going away: the context stays live however long the handler
// works, and the next request on the connection is served.
func TestServerWatchIgnoresBodyDeadline(t *testing.T) {
	started, _ := watchHooks(t)
	ctxErr := make(chan error, 1)
	addr := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			http.NewResponseController(w).SetReadDeadline(time.Now().Add(time.Millisecond))
			io.ReadAll(r.Body)
			r.Context().Done()
			<-started
			// Past the deadline whatever the machine's speed: the watch would have seen it.
			time.Sleep(50 * time.Millisecond)
			ctxErr <- r.Context().Err()
		}
		io.WriteString(w, r.URL.Path)
	}))
	c := srvDial(t, addr)
	c.send(srvReq("POST", "/slow", "Content-Length: 2\r\n") + "{}")
	if err := srvRecv(t, ctxErr, "the handler"); err != nil {
		t.Fatalf("the context ended (%v) while the client waited: the body deadline reached the watch", err)
	}
	c.send(srvReq("GET", "/next", ""))
	for _, want := range []string{"/slow", "/next"} {
		if resp, body := c.read("GET"); resp.StatusCode != 200 || body != want {
			t.Fatalf("got %d %q, want %q", resp.StatusCode, body, want)
		}
	}
}

// shortWatchDelay makes the watch start 1 ms after it is asked for, for the test and until the
// test's servers are closed.
func shortWatchDelay(t *testing.T) {
	d := watchDelay
	t.Cleanup(func() { watchDelay = d }) // registered first: runs after the servers' cleanups
	watchDelay = time.Millisecond
}

// TestServerHijackKeepsWatchedByte: a byte the watch read before a Hijack is in the reader
// handed over, as net/http's is (a handler that checks Buffered before reading the raw
// connection would lose it otherwise).
func TestServerHijackKeepsWatchedByte(t *testing.T) {
	shortWatchDelay(t)
	started, read := watchHooks(t)
	watching, sent := make(chan struct{}), make(chan struct{})
	got := make(chan string, 1)
	addr := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Context().Done()
		<-started
		close(watching)
		<-sent
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			got <- "hijack: " + err.Error()
			return
		}
		defer conn.Close()
		b, _ := brw.Reader.Peek(brw.Reader.Buffered())
		got <- string(b)
	}))
	c := srvDial(t, addr)
	c.send(srvReq("GET", "/", ""))
	srvRecv(t, watching, "the watch to start")
	c.send("X")
	if n := srvRecv(t, read, "the watch's read"); n != 1 {
		t.Fatalf("the watch read %d bytes, want 1", n)
	}
	close(sent)
	if g := srvRecv(t, got, "the hijack"); g != "X" {
		t.Fatalf("after Hijack the reader buffers %q, want the byte the watch read", g)
	}
}

// TestServerDeadlineAfterWatchStarts: a read deadline set while the watch runs (the body is in)
// does not end the request's context when it passes: the client is still there.
func TestServerDeadlineAfterWatchStarts(t *testing.T) {
	shortWatchDelay(t)
	started, _ := watchHooks(t)
	got := make(chan error, 1)
	addr := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		r.Context().Done()
		<-started
		http.NewResponseController(w).SetReadDeadline(time.Now().Add(time.Millisecond))
		time.Sleep(50 * time.Millisecond) // past the deadline, whatever the machine's speed
		got <- r.Context().Err()
	}))
	c := srvDial(t, addr)
	c.send(srvReq("POST", "/", "Content-Length: 2\r\n") + "{}")
	if err := srvRecv(t, got, "the handler"); err != nil {
		t.Fatalf("the context ended (%v) while the client waited", err)
	}
}

// TestServerDrainBound: a body the handler leaves unread is drained up to 256 KiB and the
// connection kept; beyond that the answer says Connection: close and the connection closes.
func TestServerDrainBound(t *testing.T) {
	addr := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ignored")
	}))
	for _, tc := range []struct {
		size  int
		close bool
	}{{maxDrain, false}, {maxDrain + 1, true}} {
		c := srvDial(t, addr)
		go c.c.Write([]byte(srvReq("POST", "/", "Content-Length: "+strconv.Itoa(tc.size)+"\r\n") + strings.Repeat("x", tc.size)))
		resp, body := c.read("POST")
		if body != "ignored" || resp.Close != tc.close {
			t.Fatalf("%d unread bytes: %q, Close %v; want Close %v", tc.size, body, resp.Close, tc.close)
		}
		if tc.close {
			c.closed()
			continue
		}
		c.send(srvReq("GET", "/", ""))
		if _, body := c.read("GET"); body != "ignored" {
			t.Fatalf("next request after a drained body: %q", body)
		}
	}
}

// TestServerCloseActive: Close ends Serve and closes a connection whose handler is running;
// the handler's context ends once its writes fail.
func TestServerCloseActive(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	werr := make(chan error, 1)
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		var err error
		for range 64 { // past the write buffer, so the closed connection shows
			if _, err = w.Write(bytes.Repeat([]byte("x"), 4096)); err != nil {
				break
			}
		}
		if err == nil {
			err = http.NewResponseController(w).Flush()
		}
		werr <- errors.Join(err, r.Context().Err())
	})}
	addr, done := serveH1(t, s)
	c := srvDial(t, addr)
	c.send(srvReq("GET", "/", ""))
	srvRecv(t, started, "the handler to start")
	s.Close()
	if err := srvRecv(t, done, "Serve to return"); !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve: %v, want http.ErrServerClosed", err)
	}
	close(release)
	if err := srvRecv(t, werr, "the handler's writes"); err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("handler saw %v, want a write error and a cancelled context", err)
	}
}

// TestServerPanicLogged: a handler panic is logged with its value and stack; an
// http.ErrAbortHandler panic is not.
func TestServerPanicLogged(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	s := &Server{Logger: logger, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/abort" {
			panic(http.ErrAbortHandler)
		}
		panic("kaboom")
	})}
	addr, _ := serveH1(t, s)
	for _, path := range []string{"/abort", "/boom"} {
		c := srvDial(t, addr)
		c.send(srvReq("GET", path, ""))
		c.closed()
	}
	// The connection closes after recovery, which logs first: the log is complete here.
	out := buf.String()
	if strings.Count(out, "panic serving") != 1 || !strings.Contains(out, "kaboom") || !strings.Contains(out, "server_test.go") {
		t.Fatalf("log %q: want one panic entry with its value and stack", out)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serveH1 runs s on a loopback listener until the test ends, and returns its address; done
// receives Serve's result.
func serveH1(t *testing.T, s *Server) (addr string, done <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan error, 1)
	go func() { ch <- s.Serve(ln) }()
	t.Cleanup(func() { s.Close() })
	return ln.Addr().String(), ch
}

// TestChunkedWritesAllocateNothing: a streamed answer's chunks (a Write and a Flush each, as
// zest relays an SSE event) allocate nothing per chunk on the server: an answer of 65 chunks
// costs the process what one of a single chunk does, but for the client's reading.
func TestChunkedWritesAllocateNothing(t *testing.T) {
	event := []byte("data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n")
	addr := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := 1
		if r.URL.Path == "/many" {
			n = 65
		}
		for range n {
			w.Write(event)
			w.(http.Flusher).Flush()
		}
	}))
	c := srvDial(t, addr)
	get := func(path string) func() {
		req := srvReq("GET", path, "")
		return func() {
			c.send(req)
			if resp, body := c.read("GET"); resp.TransferEncoding == nil || len(body)%len(event) != 0 {
				t.Fatalf("%s: %v, %d bytes; want a chunked answer of whole events", path, resp.TransferEncoding, len(body))
			}
		}
	}
	one, many := testing.AllocsPerRun(20, get("/one")), testing.AllocsPerRun(20, get("/many"))
	t.Logf("allocations per request: %v for one chunk, %v for 65", one, many)
	if many-one > 8 && !raceEnabled { // the client's reading of the larger body takes a few
		t.Errorf("an answer of 65 chunks allocates %v times, one of a single chunk %v", many, one)
	}
}

// TestRequestAllocations counts what the server allocates to read an SDK's request, hand it to
// the handler and send a plain answer: the client here writes prepared bytes and reads the
// answer into a buffer of its own, so that every allocation counted is the server's. The
// request, its URL, body reader, header values, context wrapper, response and body wrapper
// are one allocation (exchange), the request is given its context in place, and that context
// is made cancellable only when asked for (this handler never asks): 7 allocations per request,
// where they had been 16. The handler's own Content-Type value is one of them.
func TestRequestAllocations(t *testing.T) {
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say this is a test"}]}`
	answer := []byte(`{"id":"chatcmpl-1","object":"chat.completion","choices":[]}`)
	got := make([]byte, len(body))
	addr := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadFull(r.Body, got); err != nil {
			t.Errorf("reading the body: %v", err)
		}
		w.Header()["Content-Type"] = []string{"application/json"}
		w.Write(answer)
	}))
	c := srvDial(t, addr)
	req := []byte("POST /v1/chat/completions HTTP/1.1\r\nHost: srv.test\r\nAuthorization: Bearer sk-test\r\n" +
		"Content-Type: application/json\r\nAccept: application/json\r\nUser-Agent: OpenAI/Python 1.0\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	c.send(string(req))
	first, _ := c.read("POST")
	if first.StatusCode != 200 {
		t.Fatalf("status %d", first.StatusCode)
	}
	// Every answer has the length of the first: the same head (the Date has a fixed width)
	// and body.
	size := len(answer) + len("HTTP/1.1 200 OK\r\nContent-Length: 59\r\nContent-Type: application/json\r\nDate: Mon, 02 Jan 2006 15:04:05 GMT\r\n\r\n")
	buf := make([]byte, size+1)
	allocs := testing.AllocsPerRun(50, func() {
		if _, err := c.c.Write(req); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c.br, buf[:size]); err != nil {
			t.Fatal(err)
		}
	})
	if !bytes.HasSuffix(buf[:size], answer) || string(got) != body {
		t.Fatalf("answer %q to body %q", buf[:size], got)
	}
	t.Logf("allocations per request: %v", allocs)
	if allocs > 7 && !raceEnabled {
		t.Errorf("a request allocates %v times, want at most 7", allocs)
	}
}

// deadlineConn counts the read deadlines set on a connection.
type deadlineConn struct {
	net.Conn
	set *atomic.Int32
}

func (c deadlineConn) SetReadDeadline(t time.Time) error {
	c.set.Add(1)
	return c.Conn.SetReadDeadline(t)
}

type deadlineListener struct {
	net.Listener
	set *atomic.Int32
}

func (l deadlineListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return deadlineConn{c, l.set}, nil
}

// TestIdleDeadlineKept: requests following each other on a kept-alive connection leave the
// idle deadline where the first wait put it, rather than moving it every time.
func TestIdleDeadlineKept(t *testing.T) {
	var set atomic.Int32
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const idle = time.Hour
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		IdleTimeout: idle}
	go s.Serve(deadlineListener{ln, &set})
	t.Cleanup(func() { s.Close() })
	c := srvDial(t, ln.Addr().String())
	for i := range 20 {
		c.send(srvReq("GET", "/", ""))
		if resp, body := c.read("GET"); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if n := set.Load(); n != 1 {
		t.Errorf("20 requests set a read deadline %d times, want 1 (the first wait's)", n)
	}
}

func TestKeepDeadline(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	for _, tc := range []struct {
		name      string
		set, want time.Time
		keep      bool
	}{
		{"same", t0, t0, true},
		{"set a little earlier", t0, t0.Add(time.Second), true},
		{"set just slack earlier", t0, t0.Add(2 * time.Second), true},
		{"set more than slack earlier", t0, t0.Add(2*time.Second + 1), false},
		{"set later", t0.Add(time.Millisecond), t0, false}, // would leave the connection open too long
		{"none set", time.Time{}, t0, false},
		{"none wanted", t0, time.Time{}, false},
		{"set in the past to stop a read", aLongTimeAgo, t0, false},
	} {
		if got := keepDeadline(tc.set, tc.want, 2*time.Second); got != tc.keep {
			t.Errorf("%s: keepDeadline = %v, want %v", tc.name, got, tc.keep)
		}
	}
}

// TestBodyBuffered: a request body that came whole with its head says so (Buffered), so that
// a handler need not arm a read deadline for it; one still on its way does not.
func TestBodyBuffered(t *testing.T) {
	buffered := make(chan bool, 1)
	addr := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := r.Body.(interface{ Buffered() bool })
		buffered <- ok && b.Buffered()
		body, _ := io.ReadAll(r.Body)
		io.WriteString(w, string(body))
	}))
	c := srvDial(t, addr)
	c.send(srvReq("POST", "/", "Content-Length: 5\r\n") + "hello")
	if !<-buffered {
		t.Error("a body sent with its head is not Buffered")
	}
	if _, body := c.read("POST"); body != "hello" {
		t.Fatalf("body %q", body)
	}
	c.send(srvReq("POST", "/", "Content-Length: 5\r\n") + "he")
	if <-buffered {
		t.Error("a body of which 2 bytes of 5 came is Buffered")
	}
	c.send("llo")
	if _, body := c.read("POST"); body != "hello" {
		t.Fatalf("body %q", body)
	}
}

// TestReqCtxCancellation: a request's context becomes cancellable only when asked for Done or
// Err, and behaves as context.WithCancel's either way: cancelled before it was asked, it reports
// Canceled and a closed Done when asked; asked first, its Done closes, its children end and its
// AfterFunc runs when it is cancelled; cancelling twice is harmless; the connection context's
// values are its own before and after.
func TestReqCtxCancellation(t *testing.T) {
	type key struct{}
	for _, askFirst := range []bool{false, true} {
		cr := newConnReader(nil) // no request active: asking arms no watch
		rc := &reqCtx{parent: context.WithValue(context.Background(), key{}, "conn"), cr: cr}
		if rc.Value(key{}) != "conn" {
			t.Fatalf("askFirst %v: value %v before asking", askFirst, rc.Value(key{}))
		}
		var child context.Context
		ran := make(chan struct{})
		if askFirst {
			if rc.Err() != nil {
				t.Fatalf("a fresh context has Err %v", rc.Err())
			}
			select {
			case <-rc.Done():
				t.Fatal("a fresh context is done")
			default:
			}
			var stop context.CancelFunc
			child, stop = context.WithCancel(rc)
			defer stop()
			context.AfterFunc(rc, func() { close(ran) })
		}
		rc.cancel()
		rc.cancel()
		if !askFirst {
			var stop context.CancelFunc
			child, stop = context.WithCancel(rc)
			defer stop()
			context.AfterFunc(rc, func() { close(ran) })
		}
		if err := rc.Err(); err != context.Canceled {
			t.Errorf("askFirst %v: Err %v after cancel, want Canceled", askFirst, err)
		}
		if err := context.Cause(rc); err != context.Canceled {
			t.Errorf("askFirst %v: Cause %v after cancel, want Canceled", askFirst, err)
		}
		open := false
		for name, done := range map[string]<-chan struct{}{"its Done": rc.Done(), "its child's Done": child.Done()} {
			select {
			case <-done: // closed by cancel itself, before it returned
			default:
				open = true
				t.Errorf("askFirst %v: %s is open after cancel", askFirst, name)
			}
		}
		if !open {
			<-ran // the AfterFunc runs on a goroutine of its own, started by the cancel
		}
		if child.Err() != context.Canceled || rc.Value(key{}) != "conn" || child.Value(key{}) != "conn" {
			t.Errorf("askFirst %v: child Err %v, values %v, %v", askFirst, child.Err(), rc.Value(key{}), child.Value(key{}))
		}
		if _, ok := rc.Deadline(); ok {
			t.Errorf("askFirst %v: a request's context has a deadline", askFirst)
		}
	}
}

// vecWrites sums the vectored writes of s's open connections.
func vecWrites(s *Server) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for c := range s.conns {
		n += c.vecWrites.Load()
	}
	return n
}

// TestServerVectoredWrite: a response whose head and body overflow the write buffer leaves in
// one vectored write (head, body held back, and the body being written), framed and ordered as
// through the buffer; what fits the buffer, a chunked body and a HEAD answer do not take it.
func TestServerVectoredWrite(t *testing.T) {
	pattern := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = 'a' + byte(i%26)
		}
		return b
	}
	big, held := pattern(3*bufSize), pattern(2*bufSize+100)
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big": // one Write past the buffer
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
			w.Write(big)
		case "/held": // a Write held back, then one that overflows
			w.Header().Set("Content-Length", strconv.Itoa(len(held)))
			w.Write(held[:100])
			w.Write(held[100:])
		case "/full": // exactly the buffer: held, then sent with the head at the end
			w.Write(big[:bufSize])
		case "/fits":
			w.Header().Set("Content-Length", "1000")
			w.Write(big[:1000])
		case "/chunked": // past the buffer without a length: chunked, through the buffer
			w.Write(big[:bufSize+1])
		}
	})}
	addr, _ := serveH1(t, s)
	c := srvDial(t, addr)
	for _, tc := range []struct {
		method, path string
		body         []byte
		vec          int64
		chunked      bool
	}{
		{"GET", "/big", big, 1, false},
		{"GET", "/fits", big[:1000], 0, false},
		{"GET", "/held", held, 1, false},
		{"GET", "/full", big[:bufSize], 1, false},
		{"GET", "/chunked", big[:bufSize+1], 0, true},
		{"HEAD", "/big", nil, 0, false},
		{"GET", "/big", big, 1, false}, // the connection is still good
	} {
		before := vecWrites(s)
		c.send(srvReq(tc.method, tc.path, ""))
		resp, body := c.read(tc.method)
		if resp.StatusCode != 200 || body != string(tc.body) {
			t.Fatalf("%s %s: %d, %d bytes; want 200 and the %d bytes written", tc.method, tc.path, resp.StatusCode, len(body), len(tc.body))
		}
		if chunked := len(resp.TransferEncoding) > 0; chunked != tc.chunked {
			t.Errorf("%s %s: chunked %v, want %v", tc.method, tc.path, chunked, tc.chunked)
		}
		if n := vecWrites(s) - before; n != tc.vec {
			t.Errorf("%s %s: %d vectored writes, want %d", tc.method, tc.path, n, tc.vec)
		}
	}
}

// countingListener reports each Accept call on events, numbered from 1, before making it.
type countingListener struct {
	net.Listener
	events chan int
	n      atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	l.events <- int(l.n.Add(1))
	return l.Listener.Accept()
}

// TestServerMaxConns: with MaxConns open connections the server waits for a slot before it
// accepts another, until one closes, whichever way it ends (the client closing, a handler
// panic); Close ends a Serve waiting for a slot. The Accept calls and the waits go into one
// channel, so their order is what the server did.
func TestServerMaxConns(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const waited = 0 // the event of Serve waiting for a slot
	cl := &countingListener{Listener: ln, events: make(chan int, 16)}
	s := &Server{MaxConns: 1, waitSlot: func() { cl.events <- waited },
		Logger: slog.New(slog.DiscardHandler),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/panic" {
				panic("boom")
			}
			io.WriteString(w, "ok")
		})}
	done := make(chan error, 1)
	go func() { done <- s.Serve(cl) }()
	t.Cleanup(func() { s.Close() })
	addr := ln.Addr().String()
	expect := func(want int, what string) {
		t.Helper()
		if got := srvRecv(t, cl.events, what); got != want {
			t.Fatalf("%s: event %d, want %d (0 = waiting for a slot, n = Accept call n)", what, got, want)
		}
	}

	// served opens a connection and has one request answered on it, keeping it open.
	served := func(what string) *srvClient {
		t.Helper()
		c := srvDial(t, addr)
		c.send(srvReq("GET", "/", ""))
		if _, body := c.read("GET"); body != "ok" {
			t.Fatalf("%s connection: %q", what, body)
		}
		return c
	}

	expect(1, "the first Accept")
	c1 := served("first")
	expect(waited, "a wait with one connection open")
	c2 := srvDial(t, addr) // queued in the backlog
	c1.c.Close()
	expect(2, "the Accept after the first connection closed")
	expect(waited, "a wait with the second connection open")
	c2.send(srvReq("GET", "/panic", ""))
	c2.closed() // the panic closes it, and gives its slot back
	expect(3, "the Accept after the panicking connection closed")
	served("third")
	expect(waited, "a wait with the third connection open")
	s.Close()
	if err := srvRecv(t, done, "Serve to return"); !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve: %v, want http.ErrServerClosed", err)
	}
}
