// Package h1 is zest's HTTP/1.1 on both sides: a keep-alive client Transport that makes each
// call on its caller's goroutine, and a Server that answers each connection on its own
// goroutine. Both cut the per-request hand-offs and goroutines net/http adds around HTTP/1.1.
// The plain request heads a proxy sees and sends are read (readRequestFast) and written
// (writeRequest) by hand, each tested byte for byte against the standard library by a fuzz
// test; everything else is the standard library's (http.ReadRequest, Request.Write,
// http.ReadResponse).
//
// The Transport writes the request and reads the response over connections kept in a
// last-in first-out pool. net/http's Transport runs a reader and a writer goroutine per
// connection and hands every request and response across them. On a loopback upstream that
// hand-off cost zest about 10 µs of CPU per call, a sixth of what forwarding a request costs
// (bench/README.md, Measurement history); here a call is a write and a read on the calling
// goroutine.
//
// A Transport serves one origin over plain http (a sidecar's local model server or gateway), for
// requests whose body is in memory (none, or one GetBody can make again): it writes that body
// whole before it reads the answer. Everything else goes to its fallback unchanged: https,
// another host, a protocol upgrade, a CONNECT, a body streamed from a client (which an upstream
// may answer, say with a 413, before it has read it all, while the client is still sending).
//
// The Server is described at its type.
package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/zest-proxy/zest/internal/httphdr"
)

// Options configure a Transport.
type Options struct {
	// Host is the host:port served, as in an http URL's Host. Required.
	Host string
	// Fallback carries every request this transport does not serve. Required.
	Fallback http.RoundTripper
	// Dial opens a connection. Nil means a net.Dialer with a 10 s timeout and 30 s TCP
	// keep-alive.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// MaxIdle bounds the idle connections kept for reuse. Zero means 1024; a connection
	// returned beyond it is closed.
	MaxIdle int
	// IdleTimeout is how long an idle connection is kept. Zero means 90 s.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds what is read of a response before its body (status line, headers
	// and any interim responses). Zero means 10 MiB, net/http's Transport default.
	MaxHeaderBytes int64
	// Now is the clock for idle times. Nil means time.Now.
	Now func() time.Time
}

// Transport is an http.RoundTripper; see the package comment. It is safe for concurrent use.
type Transport struct {
	opts Options
	addr string // Host with the port to dial (80 when Host names none)

	mu     sync.Mutex
	idle   []*conn     // oldest first; calls take the newest
	reaper *time.Timer // closes idle connections past IdleTimeout; nil with none pending
}

// conn is one upstream connection with its buffers. It is the reader under br: while headLeft
// is positive (a response head is read) reads are counted against it.
type conn struct {
	nc        net.Conn
	sr        *sendReader // sends held bytes and reads the answer in one wait; nil when nc has no raw connection
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
	headLeft  int64
	noAnswer  bool  // the last exchange failed before a byte of answer came
	werr      error // the connection's write error in this exchange

	// hold makes the next Write keep its bytes in held, unsent, for the next read of the
	// connection to send first (sendRead). held is the bufio.Writer's own buffer, which it
	// does not touch again before the next request, written after this one's answer is read.
	hold bool
	held []byte
}

// Write writes to the connection, keeping its error; with hold set, it only keeps p.
func (c *conn) Write(p []byte) (int, error) {
	if c.hold {
		c.hold, c.held = false, p
		return len(p), nil
	}
	n, err := c.nc.Write(p)
	if err != nil {
		c.werr = err
	}
	return n, err
}

// readConn reads the connection, first sending what Write held back: in one wait for the
// answer, without a read that finds nothing while the upstream is still working on it.
func (c *conn) readConn(p []byte) (int, error) {
	if c.held == nil {
		return c.nc.Read(p)
	}
	out := c.held
	c.held = nil
	sent, n, err := c.sr.sendRead(out, p)
	switch {
	case sent < len(out) && err != nil:
		// The upstream may have answered before taking the whole request, and closed: that
		// answer, if there is one, is worth more than the write's error (see exchange).
		c.werr = err
		if n, rerr := c.nc.Read(p); n > 0 {
			return n, rerr
		}
		return 0, err
	case sent < len(out):
		// The socket's buffer was full: the rest goes out the usual way.
		if _, err := c.Write(out[sent:]); err != nil {
			return 0, err
		}
		return c.nc.Read(p)
	}
	return n, err
}

var errHeadTooLarge = errors.New("response head larger than MaxHeaderBytes")

func (c *conn) Read(p []byte) (int, error) {
	if c.headLeft == 0 {
		return c.readConn(p)
	}
	if c.headLeft < 0 {
		return 0, errHeadTooLarge
	}
	if int64(len(p)) > c.headLeft {
		p = p[:c.headLeft]
	}
	n, err := c.readConn(p)
	if c.headLeft -= int64(n); c.headLeft == 0 {
		c.headLeft = -1 // spent: the next read fails, not one without limit
	}
	return n, err
}

// New returns a Transport for opts.
func New(opts Options) (*Transport, error) {
	if opts.Host == "" || opts.Fallback == nil {
		return nil, errors.New("h1: Host and Fallback are required")
	}
	if opts.Dial == nil {
		opts.Dial = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	if opts.MaxIdle <= 0 {
		opts.MaxIdle = 1024
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 90 * time.Second
	}
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = 10 << 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	addr := opts.Host
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(strings.Trim(addr, "[]"), "80")
	}
	return &Transport{opts: opts, addr: addr}, nil
}

// serves reports whether req is for this transport rather than its fallback.
func (t *Transport) serves(req *http.Request) bool {
	return req.URL.Scheme == "http" && req.URL.Host == t.opts.Host && req.Method != http.MethodConnect &&
		(req.Body == nil || req.Body == http.NoBody || req.GetBody != nil) && httphdr.Get(req.Header, "Upgrade") == ""
}

// RoundTrip sends req and returns the response head; the body is read from the connection as
// the caller reads it. A cancelled or expired request context ends the call, body reads
// included, with an error that wraps the context's error; the connection is then closed. A
// connection returns to the pool when its response body has been read to the end (or had none)
// and neither side asked to close it.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.serves(req) {
		return t.opts.Fallback.RoundTrip(req)
	}
	ctx := req.Context()
	closeBody := func() {
		if req.Body != nil {
			req.Body.Close()
		}
	}
	if !validMethod(req.Method) {
		closeBody()
		return nil, fmt.Errorf("h1: invalid method %q", req.Method)
	}
	for retried := false; ; retried = true {
		if err := ctx.Err(); err != nil { // as net/http: nothing is sent for a call already over
			closeBody()
			return nil, fmt.Errorf("h1: %w", err)
		}
		c, reused, err := t.get(ctx)
		if err != nil {
			closeBody()
			return nil, fmt.Errorf("h1: dial %s: %w", t.opts.Host, callErr(ctx, err))
		}
		// The only way to stop a blocked read or write: a deadline in the past. The connection
		// is closed afterwards, never reused.
		stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(longAgo) })
		resp, err := c.exchange(req, t.opts.MaxHeaderBytes)
		if err != nil {
			stop()
			c.nc.Close()
			if reused && !retried && ctx.Err() == nil && c.noAnswer && replayable(req) {
				// The keep-alive race: the upstream closed a pooled connection as the request
				// went out. net/http retries an idempotent request once on a new connection.
				if req, err = rewind(req); err == nil {
					continue
				}
			}
			return nil, fmt.Errorf("h1: %w", callErr(ctx, err))
		}
		return t.answer(req, resp, c, ctx, stop), nil
	}
}

// answer hands the response to the caller, its connection to the body (or back to the pool).
func (t *Transport) answer(req *http.Request, resp *http.Response, c *conn, ctx context.Context, stop func() bool) *http.Response {
	keep := !resp.Close && !req.Close && !httpguts.HeaderValuesContainsToken(req.Header["Connection"], "close")
	if resp.Body == http.NoBody {
		t.release(c, stop, keep)
		return resp
	}
	resp.Body = &body{rc: resp.Body, t: t, c: c, ctx: ctx, stop: stop, keep: keep}
	return resp
}

// replayable is net/http's Request.isReplayable for the requests this transport serves (their
// body, if any, GetBody makes again; see serves): an idempotent method.
func replayable(req *http.Request) bool {
	switch req.Method {
	case "", "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	return httphdr.Get(req.Header, "Idempotency-Key") != "" || httphdr.Get(req.Header, "X-Idempotency-Key") != ""
}

// rewind returns req with a fresh body for a retry.
func rewind(req *http.Request) (*http.Request, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return req, nil
	}
	b, err := req.GetBody()
	if err != nil {
		return nil, err
	}
	r := *req
	r.Body = b
	return &r, nil
}

// validMethod reports whether m is a token (RFC 9110), as net/http's Transport requires; empty
// means GET.
func validMethod(m string) bool {
	return strings.IndexFunc(m, func(r rune) bool { return !httpguts.IsTokenRune(r) }) < 0
}

var longAgo = time.Unix(1, 0)

// exchange writes req and reads the response head, passing over interim (1xx) responses.
func (c *conn) exchange(req *http.Request, maxHead int64) (*http.Response, error) {
	c.werr = nil
	werr := writeRequest(c.bw, req)
	if werr == nil {
		// What is still buffered goes out with the read of the answer's head (readConn).
		c.hold = c.sr != nil
		werr = c.bw.Flush()
		c.hold = false
	}
	if werr != nil {
		// The upstream may have answered before reading the whole body (a 401 or 413) and
		// closed: as net/http does, prefer that answer to the write's error.
		if c.werr == nil {
			return nil, werr // not the connection's error (a body shorter than its length)
		}
		// Request.Write reports a failed body write as its (unexported, unwrappable) body
		// read error: return the connection's own error, a *net.OpError.
		resp, err := c.readHead(req, maxHead)
		if err != nil {
			return nil, c.werr
		}
		resp.Close = true
		return resp, nil
	}
	resp, err := c.readHead(req, maxHead)
	if err == nil && c.werr != nil {
		resp.Close = true // answered before the request was all sent (readConn)
	}
	return resp, err
}

// readHead reads the final response head, passing over interim (1xx) responses.
func (c *conn) readHead(req *http.Request, maxHead int64) (*http.Response, error) {
	c.headLeft = maxHead
	defer func() { c.headLeft = 0 }()
	c.noAnswer = true
	if _, err := c.br.Peek(1); err != nil {
		return nil, err
	}
	c.noAnswer = false
	if resp, ok := readResponseFast(c.br, req); ok {
		return resp, nil // a final answer, whole in the buffer
	}
	trace := httptrace.ContextClientTrace(req.Context())
	for {
		resp, err := http.ReadResponse(c.br, req)
		if err != nil {
			return nil, err
		}
		switch {
		case resp.StatusCode == http.StatusSwitchingProtocols:
			return nil, errors.New("unexpected 101 Switching Protocols")
		case resp.StatusCode < 200:
			// 100 Continue, 103 Early Hints: the final answer follows. ReverseProxy passes
			// them on through the trace, as with net/http's Transport.
			if trace != nil && trace.Got1xxResponse != nil {
				if err := trace.Got1xxResponse(resp.StatusCode, textproto.MIMEHeader(resp.Header)); err != nil {
					return nil, err
				}
			}
			continue
		}
		return resp, nil
	}
}

// callErr is err, or the context's own error when the context ended the call.
func callErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}

// release ends a call whose response was read to its end: stops the cancellation hook and
// pools the connection when it may be reused (the hook had not fired), closes it otherwise.
func (t *Transport) release(c *conn, stop func() bool, keep bool) {
	if stop() && keep {
		t.put(c)
		return
	}
	c.nc.Close()
}

// body is a response body that hands its connection back when read to the end.
type body struct {
	rc   io.ReadCloser
	t    *Transport
	c    *conn
	ctx  context.Context
	stop func() bool
	keep bool

	mu   sync.Mutex
	done bool // the connection was released or closed
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		b.finish(true)
	case err != nil:
		b.finish(false)
		err = callErr(b.ctx, err)
	}
	return n, err
}

// Buffered is the number of bytes read from the connection and not yet returned by Read: the
// body's own, once the head is parsed (a chunked body's framing included).
func (b *body) Buffered() int { return b.c.br.Buffered() }

// Close closes the body; before its end, that closes the connection (which also ends a read
// another goroutine has blocked in).
func (b *body) Close() error {
	b.finish(false)
	return nil
}

// finish releases the connection once: to the pool after a clean end (eof), closed otherwise.
func (b *body) finish(eof bool) {
	b.mu.Lock()
	if b.done {
		b.mu.Unlock()
		return
	}
	b.done = true
	b.mu.Unlock()
	if eof {
		b.t.release(b.c, b.stop, b.keep)
		return
	}
	b.stop()
	b.c.nc.Close()
}

// get returns a live idle connection, or a new one.
func (t *Transport) get(ctx context.Context) (c *conn, reused bool, err error) {
	for {
		c := t.takeIdle()
		if c == nil {
			break
		}
		if alive(c) {
			return c, true, nil
		}
		c.nc.Close()
	}
	nc, err := t.opts.Dial(ctx, "tcp", t.addr)
	if err != nil {
		return nil, false, err
	}
	c = &conn{nc: nc}
	if rc := rawConn(nc); rc != nil {
		c.sr = newSendReader(rc)
	}
	c.br = bufio.NewReaderSize(c, 4<<10)
	c.bw = bufio.NewWriterSize(c, 4<<10)
	return c, false, nil
}

// takeIdle pops the newest idle connection that has not been idle too long.
func (t *Transport) takeIdle() *conn {
	t.mu.Lock()
	stale := t.dropStaleLocked(t.opts.Now())
	var c *conn
	if n := len(t.idle); n > 0 {
		c = t.idle[n-1]
		t.idle[n-1] = nil
		t.idle = t.idle[:n-1]
	}
	t.mu.Unlock()
	closeAll(stale)
	return c
}

// put pools c, dropping the connections idle too long and closing c if the pool is full.
func (t *Transport) put(c *conn) {
	now := t.opts.Now()
	c.idleSince = now
	t.mu.Lock()
	stale := t.dropStaleLocked(now)
	full := len(t.idle) >= t.opts.MaxIdle
	if !full {
		t.idle = append(t.idle, c)
		if t.reaper == nil {
			t.reaper = time.AfterFunc(t.opts.IdleTimeout, t.reap)
		}
	}
	t.mu.Unlock()
	closeAll(stale)
	if full {
		c.nc.Close()
	}
}

// reap closes the connections idle for IdleTimeout, and runs again when the oldest left will be.
func (t *Transport) reap() {
	now := t.opts.Now()
	t.mu.Lock()
	stale := t.dropStaleLocked(now)
	if len(t.idle) > 0 {
		t.reaper.Reset(t.idle[0].idleSince.Add(t.opts.IdleTimeout).Sub(now))
	} else {
		t.reaper = nil
	}
	t.mu.Unlock()
	closeAll(stale)
}

// dropStaleLocked takes the connections idle for IdleTimeout or longer out of the pool (the
// oldest, at its front) and returns them for the caller to close outside the lock.
func (t *Transport) dropStaleLocked(now time.Time) []*conn {
	i := 0
	for i < len(t.idle) && now.Sub(t.idle[i].idleSince) >= t.opts.IdleTimeout {
		i++
	}
	if i == 0 {
		return nil
	}
	stale := append([]*conn(nil), t.idle[:i]...)
	n := copy(t.idle, t.idle[i:])
	clear(t.idle[n:])
	t.idle = t.idle[:n]
	return stale
}

// CloseIdleConnections closes the pooled connections (calls in progress keep theirs) and
// passes the call on to the fallback when it has the method.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	closeAll(idle)
	if f, ok := t.opts.Fallback.(interface{ CloseIdleConnections() }); ok {
		f.CloseIdleConnections()
	}
}

// IdleConns returns how many connections are pooled.
func (t *Transport) IdleConns() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.idle)
}

func closeAll(cs []*conn) {
	for _, c := range cs {
		c.nc.Close()
	}
}
