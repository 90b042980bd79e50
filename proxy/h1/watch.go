package h1

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// connReader is what a server connection's bufio.Reader reads: the connection, with a limit
// while a request head is read, and a watch for the client going away while a handler runs.
//
// The watch is a background read of one byte, started only when the request's context was
// asked for Done or Err watchDelay ago and the request body has been read to its end (before
// that, a read of the connection would take body bytes). End of stream or an error means the
// client is gone: the request's context is cancelled. A byte that arrives (the next pipelined request) is kept
// for the next Read. endRequest stops a running watch before the connection is read again.
type connReader struct {
	rwc net.Conn

	mu       sync.Mutex
	cond     sync.Cond // signalled when a read (watch or foreground) ends
	reading  bool      // a foreground Read or the watch is reading rwc
	watching bool      // the watch goroutine is running
	aborted  bool      // endRequest cut the watch short
	hasByte  bool
	byteBuf  [1]byte
	remain   int64 // bytes Read may still return; negative means no limit
	hitLimit bool  // a Read stopped at the limit

	// The request being served: its context (which cancel ends), whether its body was read to
	// its end, and whether the watch was asked for before that.
	active    *reqCtx
	bodyDone  bool
	wantWatch bool
	watched   bool // a watch ran for this request: it ends with the client gone or a byte kept
	armed     bool // the request asked for a watch; delay runs watchNow unless it ends first
	delay     *time.Timer

	// dlWant is the read deadline asked for, dlSet the one rwc has. A deadline reaches rwc
	// just before rwc is read (at once when a read is under way), so that a request whose
	// head and body came in one read costs one deadline change, not four.
	dlWant, dlSet time.Time
}

func newConnReader(rwc net.Conn) *connReader {
	cr := &connReader{rwc: rwc, remain: -1}
	cr.cond.L = &cr.mu
	return cr
}

// Test hooks, run in the watch goroutine before and after its read when set.
var (
	testHookWatchRead     func()
	testHookWatchReadDone func(n int, err error)
)

// setLimit bounds what Read returns from now on; n < 0 lifts the bound. Setting a bound
// clears hitLimit; lifting it keeps it, for the caller to read.
func (cr *connReader) setLimit(n int64) {
	cr.mu.Lock()
	cr.remain = n
	if n >= 0 {
		cr.hitLimit = false
	}
	cr.mu.Unlock()
}

func (cr *connReader) Read(p []byte) (int, error) {
	cr.mu.Lock()
	for cr.reading {
		cr.cond.Wait() // only a watch being stopped by endRequest or Hijack can be here
	}
	if cr.remain == 0 {
		cr.hitLimit = true
		cr.mu.Unlock()
		return 0, io.EOF
	}
	if len(p) == 0 {
		cr.mu.Unlock()
		return 0, nil
	}
	if cr.remain > 0 && int64(len(p)) > cr.remain {
		p = p[:cr.remain]
	}
	if cr.hasByte {
		p[0] = cr.byteBuf[0]
		cr.hasByte = false
		cr.consumed(1)
		cr.mu.Unlock()
		return 1, nil
	}
	cr.applyDeadlineLocked()
	cr.reading = true
	cr.mu.Unlock()

	n, err := cr.rwc.Read(p)

	cr.mu.Lock()
	cr.reading = false
	cr.consumed(n)
	if err != nil && cr.active != nil {
		cr.active.cancel() // the client is gone mid-body
	}
	cr.cond.Broadcast()
	cr.mu.Unlock()
	return n, err
}

// setReadDeadline asks for a read deadline on the connection (the zero time: none). It takes
// effect before the next read of the connection, or at once if a body read is under way. It
// never reaches the watch's read: the body is in by then, and a deadline passing there would be
// taken for the client going away (or would undo endRequest's deadline in the past).
func (cr *connReader) setReadDeadline(t time.Time) error { return cr.setReadDeadlineKeeping(t, 0) }

// setReadDeadlineKeeping is setReadDeadline, but keeps the deadline already on the connection
// when that is at most slack earlier than t: for the wait for the next request, whose deadline
// under load is microseconds later than the previous wait's, and moving the runtime's timer on
// every request costs about as much as parsing the request's head. A connection left idle is
// so closed up to slack before its time.
func (cr *connReader) setReadDeadlineKeeping(t time.Time, slack time.Duration) error {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if keepDeadline(cr.dlSet, t, slack) {
		t = cr.dlSet
	}
	cr.dlWant = t
	if cr.reading && !cr.watching {
		return cr.applyDeadlineLocked()
	}
	return nil
}

// keepDeadline reports whether the deadline set may stand for the one wanted: both are set,
// and set is at most slack earlier.
func keepDeadline(set, want time.Time, slack time.Duration) bool {
	return !want.IsZero() && !set.IsZero() && !set.After(want) && want.Sub(set) <= slack
}

// keepsByte reports whether the watch read a byte that the next Read returns.
func (cr *connReader) keepsByte() bool {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	return cr.hasByte
}

// clearReadDeadline takes any read deadline off the connection now.
func (cr *connReader) clearReadDeadline() {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	cr.clearDeadlineLocked()
}

func (cr *connReader) clearDeadlineLocked() {
	cr.dlWant = time.Time{}
	cr.applyDeadlineLocked()
}

func (cr *connReader) applyDeadlineLocked() error {
	if cr.dlWant.Equal(cr.dlSet) {
		return nil
	}
	cr.dlSet = cr.dlWant
	return cr.rwc.SetReadDeadline(cr.dlWant)
}

func (cr *connReader) consumed(n int) {
	if cr.remain > 0 {
		cr.remain -= int64(n)
	}
}

// startRequest makes rc the request being served; bodyDone is true for a request without a
// body.
func (cr *connReader) startRequest(rc *reqCtx, bodyDone bool) {
	cr.mu.Lock()
	cr.active, cr.bodyDone, cr.wantWatch, cr.watched = rc, bodyDone, false, false
	cr.mu.Unlock()
}

// bodyEOF records that the request body was read to its end, and starts the watch if it was
// asked for before.
func (cr *connReader) bodyEOF() {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	cr.bodyDone = true
	if cr.wantWatch {
		cr.startWatchLocked()
	}
}

// watchDelay is how long a request's context, once asked for Done or Err, waits before it
// watches its client. An answer ready sooner never pays for a watch (a goroutine, a read, a
// timer and two deadline changes to stop it, about as much CPU as the rest of a forwarded
// request), including answers queued behind others on a saturated proxy; a delay of a few
// milliseconds measured worse than none there, since it then fired for most requests. A client
// gone meanwhile is noticed that much later, which next to a model's seconds costs nothing.
// A variable for tests.
var watchDelay = 100 * time.Millisecond

// watch arms the watch for rc, the first time its context is asked for Done or Err.
func (cr *connReader) watch(rc *reqCtx) {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if cr.active != rc || cr.armed {
		return // the request is over, or asked before
	}
	cr.armed = true
	if cr.delay == nil {
		cr.delay = time.AfterFunc(watchDelay, cr.watchNow)
	} else {
		cr.delay.Reset(watchDelay)
	}
}

// watchNow starts the armed watch, or has the body's end start it. A late call (its request
// ended meanwhile) starts the watch of a newer request early, which is harmless.
func (cr *connReader) watchNow() {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if !cr.armed {
		return
	}
	cr.armed = false
	if !cr.bodyDone {
		cr.wantWatch = true
		return
	}
	cr.startWatchLocked()
}

func (cr *connReader) startWatchLocked() {
	if cr.watched || cr.reading || cr.hasByte {
		return
	}
	cr.watched, cr.watching, cr.reading = true, true, true
	// A read deadline still set bounded the body (or the head), all read by now: left in
	// place it would end the watch with a timeout, taken for the client going away, while
	// the handler still works (an upstream slower than the body deadline). Cleared here,
	// under mu, so that endRequest's deadline in the past is never undone.
	cr.clearDeadlineLocked()
	go cr.backgroundRead(testHookWatchRead, testHookWatchReadDone)
}

func (cr *connReader) backgroundRead(before func(), after func(int, error)) {
	if before != nil {
		before()
	}
	n, err := cr.rwc.Read(cr.byteBuf[:])
	if after != nil {
		after(n, err)
	}
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if n == 1 {
		cr.hasByte = true
	}
	var ne net.Error
	if cr.aborted && errors.As(err, &ne) && ne.Timeout() {
		// endRequest cut the read short: nothing is known of the client.
	} else if err != nil && cr.active != nil {
		cr.active.cancel()
	}
	cr.aborted = false
	cr.watching, cr.reading = false, false
	cr.cond.Broadcast()
}

// aLongTimeAgo is a deadline in the past, which makes a blocked read return at once.
var aLongTimeAgo = time.Unix(1, 0)

// endRequest ends the request being served: its context no longer starts a watch, and a
// running watch is stopped (keeping any byte it read) before this returns.
func (cr *connReader) endRequest() {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	cr.active, cr.wantWatch = nil, false
	if cr.armed {
		cr.armed = false
		cr.delay.Stop()
	}
	if !cr.watching {
		return
	}
	cr.aborted = true
	cr.dlSet = aLongTimeAgo
	cr.rwc.SetReadDeadline(aLongTimeAgo)
	for cr.watching {
		cr.cond.Wait()
	}
	cr.clearDeadlineLocked()
}

// reqCtx is a request's context. It becomes cancellable only when asked for Done or Err: most
// answers are written without anyone asking, and they then cost no context.WithCancel. Once
// asked, it is that context (made from the connection's), so a child context attaches to it
// directly (no goroutine per child); Done and Err first start the watch. A request cancelled
// before it was asked reports so when asked.
type reqCtx struct {
	parent context.Context // the connection's: values only, never done
	cr     *connReader
	asked  atomic.Bool // Done or Err was called: the watch is armed

	// inner is the context.WithCancel context, made under mu by the first Done or Err; made is
	// set after it, so that a load of made that sees true sees inner.
	inner       context.Context
	made        atomic.Bool
	mu          sync.Mutex // orders making inner with cancel
	innerCancel context.CancelFunc
	canceled    bool
}

func (c *reqCtx) Deadline() (time.Time, bool) { return c.parent.Deadline() }

func (c *reqCtx) Done() <-chan struct{} {
	c.ask()
	return c.cancellable().Done()
}

func (c *reqCtx) Err() error {
	c.ask()
	if c.made.Load() {
		return c.inner.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.canceled {
		return context.Canceled
	}
	return nil
}

// Value is the connection context's value, or once the context is cancellable, its own (which
// differs only in what package context itself asks of it).
func (c *reqCtx) Value(key any) any {
	if c.made.Load() {
		return c.inner.Value(key)
	}
	return c.parent.Value(key)
}

func (c *reqCtx) ask() {
	if !c.asked.Load() && !c.asked.Swap(true) {
		c.cr.watch(c)
	}
}

// cancellable returns the cancellable context, making it the first time (cancelled at once
// when the request already was).
func (c *reqCtx) cancellable() context.Context {
	if c.made.Load() {
		return c.inner
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.made.Load() {
		c.inner, c.innerCancel = context.WithCancel(c.parent)
		if c.canceled {
			c.innerCancel()
		}
		c.made.Store(true)
	}
	return c.inner
}

// cancel ends the request's context; it may be called more than once, from any goroutine.
func (c *reqCtx) cancel() {
	c.mu.Lock()
	c.canceled = true
	cancel := c.innerCancel
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// reqBody is a request body: it sends "100 Continue" on the first read when the client waits
// for it, tells the connReader when the body is read to its end, and is drained, bounded,
// rather than read to its end on Close.
type reqBody struct {
	mu           sync.Mutex
	src          io.ReadCloser // http.ReadRequest's body; its Close would read without bound
	c            *srvConn
	w            *response
	owesContinue bool
	eof          bool
	closed       bool
	err          error // the first read error other than EOF
}

// Buffered reports whether the rest of the body is already in the connection's read buffer, so
// that reading it cannot wait on the client: a read deadline set for it would never matter.
// Only a body of declared length read by readRequestFast can say so.
func (b *reqBody) Buffered() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	lb, ok := b.src.(*lengthBody)
	return ok && !b.closed && int64(lb.br.Buffered()) >= lb.n
}

func (b *reqBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.owesContinue {
		// Sent without b.mu: a response committing on another goroutine holds the write
		// lock and then takes b.mu to drain.
		b.owesContinue = false
		b.mu.Unlock()
		b.w.writeContinue()
		b.mu.Lock()
	}
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.eof {
		return 0, io.EOF
	}
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.src.Read(p)
	switch {
	case err == io.EOF:
		b.eof = true
		b.c.cr.bodyEOF()
	case err != nil:
		b.err = err
	}
	return n, err
}

func (b *reqBody) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}

// drain reads and discards what the handler left of the body, at most maxDrain bytes, and
// reports whether the body was read to its end cleanly (so the connection can go on). A body
// the client was never told to send (no 100 Continue yet) is not read.
func (b *reqBody) drain() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.eof {
		return true
	}
	if b.owesContinue || b.err != nil {
		b.owesContinue = false
		return false
	}
	n, err := io.CopyN(io.Discard, b.src, maxDrain+1)
	if err == io.EOF && n <= maxDrain {
		b.eof = true
		b.c.cr.bodyEOF()
		return true
	}
	return false
}
