package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/zest-proxy/zest/internal/httphdr"
)

// Server serves HTTP/1.1 (and 1.0) over plain TCP to handlers written for net/http. It reads
// a plain request head itself (readRequestFast), any other with http.ReadRequest, and answers
// on the connection's own goroutine, with what a handler expects of net/http's server:
// keep-alive and pipelining, 100-continue, chunked or computed Content-Length framing,
// Content-Type sniffing, Date, 1xx responses, trailers, Flush, Hijack, read and write
// deadlines, a request context that ends when the response is done, panics recovered,
// graceful Shutdown.
//
// It differs from http.Server where that saves per-request work (see the README's server
// notes): no TLS or HTTP/2; HTTP/1.0 connections are not kept alive; and a request's context
// learns that its client went away only once the handler has asked for Done or Err and has
// read the request body to its end; before that nothing watches the connection, so a request
// that never asks (an answer from memory) costs no goroutine and no extra read.
//
// Per connection it holds a 4 KiB read buffer, a 4 KiB write buffer, up to 4 KiB of body held
// back to compute a Content-Length, and the response head being composed.
type Server struct {
	// Handler answers every request. Required.
	Handler http.Handler
	// ReadHeaderTimeout bounds reading a request's head. Zero means no limit.
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a kept-alive connection, within
	// 1/32 of it (a deadline less than that older is kept). Zero means ReadHeaderTimeout;
	// both zero, no limit.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's head. Zero means http.DefaultMaxHeaderBytes (1 MiB).
	MaxHeaderBytes int
	// Logger receives handler panics and accept errors. Nil discards them.
	Logger *slog.Logger
	// MaxConns bounds the connections served at once, across every Serve: while that many
	// are open no more are accepted, and later clients wait in the listen backlog (as with
	// golang.org/x/net/netutil.LimitListener, which would hide the socket behind a wrapper). A
	// hijacked connection leaves the count. Zero means no limit. Set it before Serve.
	MaxConns int

	closing atomic.Bool
	mu      sync.Mutex
	lns     map[*net.Listener]struct{}
	conns   map[*srvConn]struct{}
	slots   chan struct{} // one token per connection served, when MaxConns > 0
	quit    chan struct{} // closed once the server closes; made by quitLocked
	// waitSlot, when set, is called each time Serve finds no free slot and waits (tests).
	waitSlot func()
}

const (
	bufSize = 4 << 10
	// maxDrain is how much of a request body the handler left unread is read and discarded so
	// the connection can carry the next request; beyond it the connection is closed instead.
	maxDrain = 256 << 10
	// lingerTime bounds the wait for a client to read a last response before close (see
	// closeWriteAndWait).
	lingerTime = 500 * time.Millisecond
)

// Serve accepts connections on ln and serves each on its own goroutine until Shutdown or
// Close, then returns http.ErrServerClosed; any other accept error ends it too.
func (s *Server) Serve(ln net.Listener) error {
	if !s.track(&ln, true) {
		return http.ErrServerClosed
	}
	defer s.track(&ln, false)
	slots, quit := s.limits()
	var backoff time.Duration
	for {
		if !s.acquire(slots, quit) {
			return http.ErrServerClosed
		}
		rwc, err := ln.Accept()
		if err != nil {
			release(slots)
			if s.closing.Load() {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Temporary() { //nolint:staticcheck // as net/http: EMFILE and kin pass
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.logger().Warn("h1: accept failed; retrying", "error", err, "in", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c := newConn(s, rwc)
		c.slots = slots
		if !s.trackConn(c, true) {
			rwc.Close()
			release(slots)
			return http.ErrServerClosed
		}
		go c.serve()
	}
}

// limits returns the connection slots (nil without MaxConns) and the channel closed when the
// server closes, making them on first use.
func (s *Server) limits() (slots, quit chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.slots == nil && s.MaxConns > 0 {
		s.slots = make(chan struct{}, s.MaxConns)
	}
	return s.slots, s.quitLocked()
}

// quitLocked returns the channel closed when the server closes, making it on first use; under mu.
func (s *Server) quitLocked() chan struct{} {
	if s.quit == nil {
		s.quit = make(chan struct{})
	}
	return s.quit
}

// acquire takes a connection slot, waiting for one while MaxConns connections are open; false
// when the server closes meanwhile.
func (s *Server) acquire(slots, quit chan struct{}) bool {
	if slots == nil {
		return true
	}
	select {
	case slots <- struct{}{}:
		return true
	default:
	}
	if s.waitSlot != nil {
		s.waitSlot()
	}
	select {
	case slots <- struct{}{}:
		return true
	case <-quit:
		return false
	}
}

// release gives back a slot acquire took (nothing without MaxConns).
func release(slots chan struct{}) {
	if slots != nil {
		<-slots
	}
}

// Shutdown stops accepting, closes idle connections, and waits for active ones to finish
// their request (each is closed after its response), or for ctx, whose error it then returns.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.closeListeners()
	wait := time.Millisecond
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		if s.closeIdle() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
		wait = min(2*wait, 100*time.Millisecond)
		timer.Reset(wait)
	}
}

// Close closes the listeners and every connection at once; handlers still running see writes
// fail. Hijacked connections are their handler's to close.
func (s *Server) Close() error {
	s.closing.Store(true)
	s.closeListeners()
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.state.Store(stateClosed)
		c.rwc.Close()
	}
	return nil
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// track adds or removes a listener; it refuses to add once the server is closing.
func (s *Server) track(ln *net.Listener, add bool) bool { return trackIn(s, &s.lns, ln, add) }

// trackConn adds or removes a connection; it refuses to add once the server is closing.
func (s *Server) trackConn(c *srvConn, add bool) bool { return trackIn(s, &s.conns, c, add) }

func trackIn[K comparable](s *Server, m *map[K]struct{}, k K, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(*m, k)
		return true
	}
	if s.closing.Load() {
		return false
	}
	if *m == nil {
		*m = make(map[K]struct{})
	}
	(*m)[k] = struct{}{}
	return true
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.quitLocked(): // closed already (Shutdown, then Close)
	default:
		close(s.quit) // a Serve waiting for a slot returns
	}
	for ln := range s.lns {
		(*ln).Close()
		delete(s.lns, ln)
	}
}

// closeIdle closes the connections waiting for a request and reports whether none are left.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.state.CompareAndSwap(stateIdle, stateClosed) {
			c.rwc.Close()
		}
	}
	return len(s.conns) == 0
}

// Connection states. Idle connections may be closed by Shutdown; a connection moves from idle
// to active only by compare-and-swap, so one Shutdown has closed is never served.
const (
	stateIdle int32 = iota
	stateActive
	stateHijacked
	stateClosed
)

// srvConn is one client connection, served by one goroutine.
type srvConn struct {
	srv   *Server
	rwc   net.Conn
	ctx   context.Context // parent of every request's context
	addr  string
	state atomic.Int32
	cr    *connReader
	br    *bufio.Reader // over cr
	bw    *bufio.Writer // over rwc

	// wmu orders writes to bw between a handler's response and the 100 Continue its body
	// read may send.
	wmu    sync.Mutex
	head   []byte  // the response head being composed, reused
	hold   []byte  // body held back until the response commits, reused
	fields []field // the headers of the response being written, reused
	date   dateCache

	slots chan struct{} // the Server's connection slots, one of which this connection holds

	// vec says rwc writes a net.Buffers in one system call (a TCP or Unix socket, not a
	// wrapper); bufs holds the pieces of such a write, in iov, reused.
	vec       bool
	iov       [3][]byte
	bufs      net.Buffers
	vecWrites atomic.Int64 // how many vectored writes were made (tests read it)
}

func newConn(s *Server, rwc net.Conn) *srvConn {
	c := &srvConn{srv: s, rwc: rwc, addr: rwc.RemoteAddr().String()}
	c.ctx = context.WithValue(context.Background(), http.LocalAddrContextKey, rwc.LocalAddr())
	c.cr = newConnReader(rwc)
	c.br = bufio.NewReaderSize(c.cr, bufSize)
	c.bw = bufio.NewWriterSize(rwc, bufSize)
	switch rwc.(type) {
	case *net.TCPConn, *net.UnixConn:
		c.vec = true
	}
	return c
}

// writev writes the pieces to rwc in one vectored write, bypassing bw (which must be empty);
// under wmu.
func (c *srvConn) writev(pieces ...[]byte) error {
	c.bufs = c.iov[:0]
	for _, p := range pieces {
		if len(p) > 0 {
			c.bufs = append(c.bufs, p)
		}
	}
	c.vecWrites.Add(1)
	_, err := c.bufs.WriteTo(c.rwc) // consumes c.bufs
	clear(c.iov[:])                 // keep no answer alive past its write
	return err
}

func (c *srvConn) serve() {
	linger := false
	defer func() {
		c.srv.trackConn(c, false)
		defer release(c.slots) // once closed; a hijacked connection at once: it is its handler's
		if c.state.Load() == stateHijacked {
			return
		}
		if linger {
			c.closeWriteAndWait()
		}
		c.rwc.Close()
	}()
	for kept := false; ; kept = true {
		req, ex, err := c.readRequest(kept)
		if err != nil {
			linger = c.refuse(err)
			return
		}
		keep, ok := c.run(req, ex)
		if !ok {
			return // a handler panic or a hijack: nothing more is written
		}
		if !keep || c.srv.closing.Load() {
			linger = true
			return
		}
		c.state.Store(stateIdle)
	}
}

// errClosed reports a connection Shutdown closed while it waited for a request.
var errClosed = errors.New("h1: connection closed by Shutdown")

// readRequest waits for the next request, under the idle timeout, and reads its head under
// ReadHeaderTimeout and MaxHeaderBytes. It returns the request with the exchange that run
// serves it in. kept says the connection has answered a request before.
func (c *srvConn) readRequest(kept bool) (*http.Request, *exchange, error) {
	s := c.srv
	maxHead := s.MaxHeaderBytes
	if maxHead <= 0 {
		maxHead = http.DefaultMaxHeaderBytes
	}
	// The slack lets a head just at the limit be read whole along with the bufio read ahead.
	c.cr.setLimit(int64(maxHead) + bufSize)
	if c.br.Buffered() == 0 {
		idle := s.IdleTimeout
		if idle == 0 {
			idle = s.ReadHeaderTimeout
		}
		c.cr.setReadDeadlineKeeping(deadlineIn(idle), idle/idleSlack)
		if kept {
			// The answer just went out, and the client has not had the time to send its next
			// request: a read now would find nothing (EAGAIN) and park the goroutine on the
			// poller. Under load other connections' requests are waiting; once they have run,
			// this one's has usually arrived and the read takes it at once. With nothing else
			// to run, Gosched returns at once. Exact hits on 50 connections, zest on one core:
			// 2.0 -> 1.0 reads a request, 70-77k -> 78-94k req/s.
			runtime.Gosched()
		}
		if _, err := c.br.Peek(1); err != nil {
			return nil, nil, err
		}
	}
	if !c.state.CompareAndSwap(stateIdle, stateActive) {
		return nil, nil, errClosed
	}
	ex := new(exchange)
	req, fast := readRequestFast(c.br, &ex.in) // the common head, already buffered: no read, no deadline
	var err error
	if !fast {
		c.cr.setReadDeadline(deadlineIn(s.ReadHeaderTimeout))
		req, err = http.ReadRequest(c.br)
	}
	c.cr.setLimit(-1)
	if err != nil {
		return nil, nil, err
	}
	c.cr.setReadDeadline(time.Time{})
	if err := checkRequest(req, !fast); err != nil {
		return nil, nil, err
	}
	req.RemoteAddr = c.addr
	return req, ex, nil
}

// exchange is what the server allocates for one request, in one allocation where it had been
// seven: the request as read, its URL, body reader and header values (fastReq; a request
// http.ReadRequest read has its own), the context wrapper, the response and the body wrapper.
// The handler gets a copy of the request, as http.Request's context can only be set by
// copying it; what the handler keeps of it keeps the whole exchange (992 bytes on amd64) alive.
type exchange struct {
	in   fastReq
	rc   reqCtx
	w    response
	body reqBody
}

// idleSlack sets how much earlier than IdleTimeout (or ReadHeaderTimeout, standing in for it)
// a connection waiting for its next request may be closed: by at most 1/idleSlack of it, so
// that the deadline need not move on every request (see setReadDeadlineKeeping).
const idleSlack = 32

// deadlineIn is the deadline d from now; the zero time (none) for d <= 0.
func deadlineIn(d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return time.Now().Add(d)
}

// statusError is a request refused before its handler, with the status to answer.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return fmt.Sprintf("%d %s", e.code, e.msg) }

// checkRequest applies the checks net/http's server makes beyond http.ReadRequest; the
// header names and values only when fields says so (readRequestFast checked them). One it
// cannot: ReadRequest folds the Host header into req.Host, so a request with two Host headers
// is served with the first.
func checkRequest(req *http.Request, fields bool) error {
	if req.ProtoMajor != 1 {
		return &statusError{http.StatusHTTPVersionNotSupported, "unsupported protocol version"}
	}
	if req.ProtoAtLeast(1, 1) && req.Host == "" && req.Method != http.MethodConnect {
		return &statusError{http.StatusBadRequest, "missing required Host header"}
	}
	if !httpguts.ValidHostHeader(req.Host) {
		return &statusError{http.StatusBadRequest, "malformed Host header"}
	}
	if fields {
		if err := checkFields(req.Header); err != nil {
			return err
		}
	}
	if e, ok := req.Header["Expect"]; ok && !(len(e) == 1 && strings.EqualFold(e[0], "100-continue")) {
		return &statusError{http.StatusExpectationFailed, "unsupported Expect"}
	}
	return nil
}

// checkFields refuses a header name that is not a token or a value with a forbidden byte.
func checkFields(h http.Header) error {
	for k, vv := range h {
		if !httpguts.ValidHeaderFieldName(k) {
			return &statusError{http.StatusBadRequest, "invalid header name"}
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return &statusError{http.StatusBadRequest, "invalid header value"}
			}
		}
	}
	return nil
}

// refuse answers a request that could not be read, as net/http does, and reports whether the
// connection should linger for the client to read the answer. A client gone or timed out gets
// nothing.
func (c *srvConn) refuse(err error) bool {
	var se *statusError
	switch {
	case c.cr.hitLimit:
		se = &statusError{http.StatusRequestHeaderFieldsTooLarge, "request head too large"}
	case errors.As(err, &se):
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, errClosed):
		return false
	case isNetError(err):
		return false
	case strings.HasPrefix(err.Error(), "unsupported transfer encoding"):
		se = &statusError{http.StatusNotImplemented, "unsupported transfer encoding"}
	default:
		se = &statusError{http.StatusBadRequest, "malformed request"}
	}
	c.rwc.SetWriteDeadline(time.Now().Add(lingerTime))
	text := fmt.Sprintf("%d %s: %s", se.code, http.StatusText(se.code), se.msg)
	fmt.Fprintf(c.bw, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		se.code, http.StatusText(se.code), len(text), text)
	return c.bw.Flush() == nil
}

func isNetError(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe)
}

// closeWriteAndWait sends FIN after the last response and reads what the client still sends
// (for at most lingerTime) before the connection is closed: closing with unread bytes would
// reset the connection and could destroy the response before the client reads it.
func (c *srvConn) closeWriteAndWait() {
	c.bw.Flush()
	cw, ok := c.rwc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	c.rwc.SetReadDeadline(time.Now().Add(lingerTime))
	io.CopyN(io.Discard, c.rwc, maxDrain)
}

// run serves one request and reports whether the connection may carry another, and, as ok,
// whether the serve loop still owns it (false after a handler panic or a hijack).
func (c *srvConn) run(req *http.Request, ex *exchange) (keep, ok bool) {
	rc := &ex.rc
	rc.parent, rc.cr = c.ctx, c.cr
	defer rc.cancel() // after the response is done, as net/http: the context outlives finish
	w := &ex.w
	w.c, w.req, w.rc, w.contentLength = c, req, rc, -1
	w.isHead = req.Method == http.MethodHead
	var body *reqBody
	if req.Body != nil && req.Body != http.NoBody {
		body = &ex.body
		body.src, body.c, body.w = req.Body, c, w
		body.owesContinue = req.ProtoAtLeast(1, 1) && req.ContentLength != 0 && httphdr.Get(req.Header, "Expect") != ""
		req.Body = body
		w.body = body
	}
	c.cr.startRequest(rc, body == nil)
	*req = *req.WithContext(rc) // in place: req is the exchange's own, and the copy stays on the stack
	w.req = req
	if !c.callHandler(w, req) {
		c.cr.endRequest()
		return false, false
	}
	if w.hijacked {
		return false, false
	}
	w.finish()
	c.cr.endRequest()
	if w.setWriteDeadline {
		c.rwc.SetWriteDeadline(time.Time{})
	}
	return !w.closeAfter, true
}

// callHandler runs the handler and reports whether it returned without panicking. A panic
// other than http.ErrAbortHandler is logged with its stack.
func (c *srvConn) callHandler(w *response, req *http.Request) (ok bool) {
	defer func() {
		if ok {
			return
		}
		if p := recover(); p != nil && p != http.ErrAbortHandler {
			buf := make([]byte, 64<<10)
			buf = buf[:runtime.Stack(buf, false)]
			c.srv.logger().Error("h1: panic serving "+c.addr, "panic", fmt.Sprint(p), "stack", string(buf))
		}
	}()
	c.srv.Handler.ServeHTTP(w, req)
	return true
}

// dateCache formats the Date header once per second.
type dateCache struct {
	sec int64
	buf []byte
}

func (d *dateCache) get() []byte {
	now := time.Now()
	if s := now.Unix(); s != d.sec || d.buf == nil {
		d.sec = s
		d.buf = now.UTC().AppendFormat(d.buf[:0], http.TimeFormat)
	}
	return d.buf
}
