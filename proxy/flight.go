package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/zest-proxy/zest/internal/httphdr"
	"github.com/zest-proxy/zest/proxy/sse"
	"github.com/zest-proxy/zest/telemetry"
)

// flight is one upstream call whose answer one or more clients receive. The answer is kept
// whole while the call lasts, so a client that joins late gets it from its start, up to
// maxBuffer bytes: a larger answer overflows (see overflow.go) and is relayed live, never
// stored. The call runs on its leader's goroutine (see run) with its own context: a client
// hanging up does not cancel it while others still listen (the leader's then hands the rest of
// the read to a goroutine of its own); when the last one leaves, it is cancelled.
type flight struct {
	group *flightGroup // nil for a private flight
	key   string
	model string // for the upstream span
	// plan, when set, runs once a clean answer is complete: its done before waiters see the
	// flight finished, its after once they have.
	plan *storePlan

	expires   time.Time  // when a stored answer of this call expires: joinable until then
	semStore  bool       // the answer is filed in the semantic cache after the flight finishes
	maxBuffer int64      // bytes of the answer kept whole; 0 = no limit
	rec       *recording // non-nil in record mode: the call is timed and a clean answer recorded
	// bg runs the after work on a tracked goroutine that recovers a panic, so that the leader's
	// goroutine, which runs the call, gives its client the answer without waiting for it.
	bg func(work func())
	// wantResult says a plain (not SSE) 200 answer is checked and kept as the result, for the
	// caches, a recording, or a client that wants it replayed as SSE; without, it is passed on
	// as it came, and only its usage is read, when wantUsage says something needs it (the
	// token limits settle with it, a span reports it).
	wantResult, wantUsage bool

	ctx    context.Context
	cancel context.CancelFunc

	mu         sync.Mutex
	changed    chan struct{} // closed on every change, then nil until a waiter needs one
	headerSet  bool
	status     int
	header     http.Header
	isSSE      bool
	parts      [][]byte // SSE: whole events; otherwise pieces of the body
	base       int      // index in the whole answer of parts[0] (earlier parts were trimmed)
	held       int64    // bytes in parts
	peak       int64    // the most bytes parts ever held
	spare      [][]byte // parts every client has written, for the reader to refill (overflow only)
	spareBytes int64    // their capacity, at most maxBuffer
	overflow   bool     // the answer outgrew maxBuffer: relayed live, trimmed, never stored
	cursors    []*cursor
	finished   bool
	err        error  // the call or the read failed
	result     []byte // the complete chat.completion of a clean 200, else nil
	refs       int
	abandoned  bool

	// The leader's cursor, cursors[0], held in the flight with the slice's first array: most
	// flights have no other client.
	leaderCursor cursor
	firstCursors [1]*cursor

	usagePrompt, usageCompletion int
	usageKnown                   bool

	// bodiesOpen counts the leader's upstream bodies over its client's buffer not yet closed
	// (see chatCall.sent).
	bodiesOpen atomic.Int32
}

// flightGroup deduplicates concurrent identical misses by exact key.
type flightGroup struct {
	mu sync.Mutex
	m  map[string]*flight
}

// join returns the live flight for key, or registers f under key and returns it as the leader.
// semRead says the newcomer may read the semantic cache: only such a request may join a
// finished flight, whose answer is still being filed by meaning (the exact entry is visible in
// the cache before a flight finishes, so exact readers find it there).
// The newcomer reads the answer through the returned cursor.
func (g *flightGroup) join(key string, f *flight, now time.Time, semRead bool) (*flight, *cursor, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if cur, ok := g.m[key]; ok {
		cur.mu.Lock()
		// A finished flight is joined only for its clean answer while the semantic store runs,
		// and never past the answer's expiry; a failed one is never handed to a newcomer.
		alive := !cur.abandoned && (!cur.finished ||
			(semRead && cur.semStore && cur.result != nil && now.Before(cur.expires)))
		var c *cursor
		if alive {
			cur.refs++
			c = cur.newCursorLocked()
		}
		cur.mu.Unlock()
		if alive {
			return cur, c, false
		}
	}
	f.group, f.key = g, key
	g.m[key] = f
	return f, f.cursors[0], true
}

func (g *flightGroup) forget(f *flight) {
	g.mu.Lock()
	if g.m[f.key] == f {
		delete(g.m, f.key)
	}
	g.mu.Unlock()
}

// newFlight makes a flight whose call is bounded by timeout (none when <= 0).
// The leader's cursor is f.cursors[0].
func newFlight(ctx context.Context, timeout time.Duration) *flight {
	f := &flight{refs: 1}
	f.newCursorLocked()
	if timeout > 0 {
		f.ctx, f.cancel = context.WithTimeout(ctx, timeout)
	} else {
		f.ctx, f.cancel = context.WithCancel(ctx)
	}
	return f
}

// broadcastLocked wakes every waiter. f.mu must be held.
func (f *flight) broadcastLocked() {
	if f.changed != nil {
		close(f.changed)
		f.changed = nil
	}
}

// changedLocked returns the channel the next broadcast closes, made when the first waiter
// needs it: a flight no one waits on (a lone leader's) makes none. f.mu must be held.
func (f *flight) changedLocked() <-chan struct{} {
	if f.changed == nil {
		f.changed = make(chan struct{})
	}
	return f.changed
}

// leave is called by each client when it is done with the flight, with its cursor. The last
// one to leave an unfinished flight cancels the upstream call, so nothing half-read is ever
// stored.
func (f *flight) leave(c *cursor) {
	var g *flightGroup
	f.mu.Lock()
	c.done = true
	if f.overflow {
		f.broadcastLocked() // the reader may be waiting for this one to move on
	}
	f.refs--
	if f.refs == 0 && !f.finished {
		f.abandoned = true
		g = f.group
		f.cancel()
	}
	f.mu.Unlock()
	if g != nil {
		g.forget(f)
	}
}

// run performs the upstream call and records the answer, on the leader's own goroutine. It is
// the flight's only writer. Without live, the leader writes the answer to its client only once
// run returns: should the answer overflow (its reader must then wait for the clients to write),
// the rest of the read is handed to a goroutine of its own. live, when set, writes to the
// leader's client as the answer arrives: it is called after each read, and once the head is in
// unless body bytes came with it (they then go out with the head, in one write); false from it
// (the client left) hands the rest of the read to a goroutine of its own. run reports whether
// it handed the read off.
func (f *flight) run(h *Handler, req *http.Request, live func() bool) (handedOff bool) {
	u := &callRead{f: f, h: h, req: req, live: live}
	defer func() {
		if !handedOff {
			u.close()
		}
	}()
	if !u.start() {
		return false
	}
	if live != nil && !buffered(u.resp.Body) && !live() {
		u.handOff()
		return true
	}
	return u.read(live == nil)
}

// errCallAborted ends a flight whose read stopped without an answer or an error of its own.
var errCallAborted = errors.New("the upstream call was aborted")

// recoverCall, deferred on a goroutine that runs an upstream call, logs a panic there instead
// of ending the process (as net/http does for a handler); the call's flight is finished with
// an error by then.
func (h *Handler) recoverCall() {
	if p := recover(); p != nil {
		h.logger.Error("panic in upstream call", "panic", p, "stack", string(debug.Stack()))
	}
}

// callRead is the state of one flight's upstream call, from sending it to the end of the
// answer: what close releases, whichever goroutine ends the read.
type callRead struct {
	f    *flight
	h    *Handler
	req  *http.Request
	span trace.Span // nil without tracing
	sent time.Time
	resp *http.Response
	bp   *[]byte // the read buffer, from readBufs
	rd   reading

	isSSE, firstByte bool
	live             func() bool // see run; nil once the read is handed off
}

// start sends the call and publishes the answer's status and headers; false when the call
// failed (the flight is then finished with its error).
func (u *callRead) start() bool {
	f, h, req := u.f, u.h, u.req
	if h.tracing {
		var ctx context.Context
		// The HTTP client span of the upstream call; the server span carries the GenAI name.
		ctx, u.span = h.tracer.Start(req.Context(), req.Method+" "+chatPath,
			trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("server.address", req.URL.Host),
				telemetry.GenAIOperationName.String(telemetry.OperationChat),
				telemetry.GenAIProviderName.String(h.provider), telemetry.GenAIRequestModel.String(f.model)))
		req = req.WithContext(ctx)
		u.req = req
		h.injectTrace(req)
	}
	u.sent = time.Now()
	resp, err := h.transport.RoundTrip(req)
	if err != nil {
		if u.span != nil {
			u.span.SetStatus(codes.Error, errText(err))
		}
		if m := h.opts.Metrics; m != nil && req.Context().Err() != context.Canceled { // not when every client left
			m.UpstreamFailed()
		}
		f.finish(nil, usage{}, err, nil)
		return false
	}
	u.resp = resp
	if u.span != nil {
		u.span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	}
	f.rec.headers(u.sent)
	u.firstByte = true
	isSSE := isEventStream(httphdr.Get(resp.Header, "Content-Type"))
	u.isSSE = isSSE
	header := resp.Header // ours alone: the transport is done with it
	removeHopByHop(header)
	delete(header, "Content-Length")
	f.mu.Lock()
	f.headerSet, f.status, f.header, f.isSSE = true, resp.StatusCode, header, isSSE
	f.broadcastLocked()
	f.mu.Unlock()

	u.rd = reading{ok: resp.StatusCode == http.StatusOK, timed: f.rec != nil}
	if isSSE && u.rd.ok {
		u.rd.asm = sse.NewAssembler()
	}
	if n := resp.ContentLength; !isSSE && n > 0 && n <= presizeMax && (f.maxBuffer <= 0 || n <= f.maxBuffer) {
		// A body of stated length is read into a buffer of exactly that size, which the exact
		// cache keeps as it is: no growing copies, and no copy to trim spare capacity.
		u.rd.body = *bytes.NewBuffer(make([]byte, 0, n))
	}
	u.bp = readBufs.Get().(*[]byte)
	return true
}

// close releases what the call holds and ends its span and metrics. It runs once, on the
// goroutine that ends the read, whatever way it ends.
func (u *callRead) close() {
	f, h := u.f, u.h
	f.mu.Lock()
	finished := f.finished
	f.mu.Unlock()
	if !finished {
		// The read ended without finishing the flight (a panic on its way): its clients get
		// an error, never a wait without end.
		f.finish(nil, usage{}, errCallAborted, nil)
	}
	if u.resp != nil {
		if m := h.opts.Metrics; m != nil {
			m.ObserveUpstream(u.req.Context(), u.resp.StatusCode, time.Since(u.sent))
		}
		u.resp.Body.Close()
	}
	if u.bp != nil {
		readBufs.Put(u.bp)
	}
	if u.span != nil {
		u.span.End()
	}
	h.notePeak(f)
	f.cancel()
}

// read reads the answer to its end and finishes the flight. It returns true once it has handed
// the rest of the read (and close) to a goroutine: inline, at the moment the answer overflows;
// live, when the client has left.
func (u *callRead) read(inline bool) (handedOff bool) {
	f, h, resp, rd := u.f, u.h, u.resp, &u.rd
	buf := *u.bp
	for {
		n, rerr := resp.Body.Read(buf)
		if rd.timed && n > 0 {
			rd.at = f.rec.read(u.sent)
		}
		if n > 0 && u.firstByte {
			u.firstByte = false
			if m := h.opts.Metrics; m != nil {
				m.ObserveTTFT(u.req.Context(), time.Since(u.sent))
			}
		}
		if n > 0 {
			if u.isSSE {
				f.feedEvents(rd, buf[:n])
			} else {
				f.feedBody(rd, buf[:n])
			}
			if u.live != nil && !u.live() {
				u.handOff()
				return true
			}
			if rd.overflow {
				if inline {
					u.handOff()
					return true
				}
				f.makeRoom(h)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if u.isSSE {
				f.appendTail(&rd.sc)
			}
			f.finish(nil, usage{}, rerr, nil)
			return false
		}
	}
	u.finishRead()
	return false
}

// handOff reads the rest of the answer, and closes the call, on a goroutine of its own: the
// leader's goroutine has a client to write to (inline), or none left (live).
func (u *callRead) handOff() {
	u.live = nil
	u.h.goBackground(func() {
		defer u.close()
		if u.rd.overflow {
			u.f.makeRoom(u.h)
		}
		u.read(false)
	})
}

// finishRead finishes the flight with a complete answer: assembled, checked and its usage
// read when it is a 200.
func (u *callRead) finishRead() {
	f, rd := u.f, &u.rd
	if u.isSSE {
		f.appendTail(&rd.sc)
		var us usage
		var result []byte
		if rd.asm != nil && !rd.poisoned && !rd.overflow {
			if c, err := rd.asm.Complete(); err == nil && wellFormed(c) {
				result = c
				us.prompt, us.completion, us.known = rd.asm.Usage()
			}
		}
		f.rec.end(u.sent, rd.times)
		f.finish(result, us, nil, rd.held)
		return
	}
	if rd.overflow {
		f.finish(nil, usage{}, nil, nil)
		return
	}
	b := rd.body.Bytes()
	f.mu.Lock()
	f.parts = append(f.parts, b)
	f.held += int64(len(b))
	f.mu.Unlock()
	var us usage
	var result []byte
	switch {
	case rd.ok && f.wantResult:
		var ok bool
		if ok, us = wellFormedUsage(b); ok {
			result = b
		}
	case rd.ok && !f.wantResult && f.wantUsage:
		us.prompt, us.completion, us.known = usageOf(b)
	}
	f.rec.end(u.sent, nil)
	f.finish(result, us, nil, nil)
}

// reading is the state of one upstream answer being read.
type reading struct {
	ok       bool // a 200: worth assembling
	sc       sse.Scanner
	asm      *sse.Assembler
	poisoned bool     // an error event or error chunk: never stored
	held     [][]byte // the final [DONE] and what follows it, released once stored
	body     bytes.Buffer
	total    int64 // bytes read so far
	overflow bool  // total passed the flight's maxBuffer

	spare [][]byte // buffers of parts every client has written, reused once the flight overflows
	evs   [][]byte // the events of one feed, reused

	timed bool            // record mode: note when each event arrived
	at    time.Duration   // when the bytes being fed arrived, from the request's start
	times []time.Duration // arrival of each SSE event
}

// feedEvents splits SSE bytes into events, assembles them, and publishes them to the clients.
// The `data: [DONE]` event is held back until the answer is stored (see finish), so a client
// that has seen the end of a stream finds the answer in the cache on its next request.
func (f *flight) feedEvents(rd *reading, p []byte) {
	rd.count(f, len(p))
	rd.refill(f)
	evs := rd.evs[:0]
	n := 0
	rd.sc.Feed(p, func(ev []byte) {
		ev = rd.clone(ev)
		data := sse.Data(ev)
		if rd.timed {
			rd.times = append(rd.times, rd.at)
		}
		if len(rd.held) > 0 || string(bytes.TrimSpace(data)) == "[DONE]" {
			rd.held = append(rd.held, ev)
		} else {
			evs = append(evs, ev)
			n += len(ev)
		}
		if rd.asm != nil {
			if isErrorEvent(ev) || hasErrorMember(data) {
				rd.poisoned = true // a failed answer, whatever follows
			}
			rd.asm.Event(data)
		}
	})
	if len(evs) > 0 {
		f.mu.Lock()
		f.parts = append(f.parts, evs...)
		f.held += int64(n)
		f.broadcastLocked()
		f.mu.Unlock()
	}
	clear(evs)
	rd.evs = evs[:0]
}

// appendTail passes on a last event that the stream ended without its blank line only where
// the scanner can still tell it is complete (a lone "\r" line end); the bytes of a cut,
// unterminated event are dropped, never shown as if whole.
func (f *flight) appendTail(sc *sse.Scanner) {
	var tail [][]byte
	sc.Flush(func(ev []byte) { tail = append(tail, bytes.Clone(ev)) })
	if len(tail) > 0 {
		f.mu.Lock()
		f.parts = append(f.parts, tail...)
		f.mu.Unlock()
	}
}

// usage is the token usage an answer reported.
type usage struct {
	prompt, completion int
	known              bool
}

// finish records the end of the call: a clean answer is stored first (done), then the held
// final events are released and every waiter wakes to a finished flight, so no client sees
// the answer end before it is in the cache.
func (f *flight) finish(result []byte, u usage, err error, final [][]byte) {
	f.mu.Lock()
	f.result, f.err = result, err
	f.usagePrompt, f.usageCompletion, f.usageKnown = u.prompt, u.completion, u.known
	abandoned := f.abandoned
	f.mu.Unlock()
	clean := err == nil && result != nil && !abandoned
	if clean && f.plan != nil {
		f.plan.done(f)
	}
	if !clean && f.group != nil {
		f.group.forget(f) // nobody new may join a failed call
	}
	f.mu.Lock()
	f.parts = append(f.parts, final...)
	f.finished = true
	f.broadcastLocked()
	f.mu.Unlock()
	if clean && f.bg != nil && (f.rec != nil || f.plan.hasAfter()) {
		// An inline call's client is waiting for run to return: record and file the answer
		// after it has it.
		f.bg(func() {
			f.rec.emit(result)
			f.afterFinished(clean)
		})
		return
	}
	if clean {
		f.rec.emit(result)
	}
	f.afterFinished(clean)
}

// afterFinished runs the flight's after work on a clean answer, then stops newcomers joining.
func (f *flight) afterFinished(clean bool) {
	if f.group != nil {
		// Only now, once the stored answer is visible in the caches, do newcomers stop joining
		// (deferred: also when the after work panics).
		defer f.group.forget(f)
	}
	if clean && f.plan.hasAfter() {
		f.plan.after(f)
	}
}

// snapshot is what a waiter reads under the lock.
type snapshot struct {
	headerSet, finished bool
	status              int
	header              http.Header
	isSSE               bool
	parts               [][]byte
	base                int
	overflow            bool
	err                 error
	result              []byte
}

func (f *flight) snap() snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snapLocked()
}

func (f *flight) snapLocked() snapshot {
	return snapshot{f.headerSet, f.finished, f.status, f.header, f.isSSE, f.parts, f.base, f.overflow,
		f.err, f.result}
}

// wait blocks until cond holds for the flight's state or ctx ends. cond runs under f.mu.
func (f *flight) wait(ctx context.Context, cond func(s snapshot) bool) (snapshot, error) {
	for {
		f.mu.Lock()
		s := f.snapLocked()
		if cond(s) {
			f.mu.Unlock()
			return s, nil
		}
		changed := f.changedLocked() // taken with the state it was read with: no change is missed
		f.mu.Unlock()
		select {
		case <-ctx.Done():
			return s, ctx.Err()
		case <-changed:
		}
	}
}

// presizeMax bounds the buffer made up front for an answer from its Content-Length, which most
// chat completions are well under: a larger answer grows its buffer as its bytes arrive. A length
// the upstream states but never sends holds at most this much per call, until the call ends.
const presizeMax = 64 << 10

// readBufs recycles the 32 KiB buffers upstream bodies are read through.
var readBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// buffered reports whether an upstream body holds bytes already read from the connection, so
// that reading it will not wait (false when its transport cannot tell).
func buffered(body io.Reader) bool {
	b, ok := body.(interface{ Buffered() int })
	return ok && b.Buffered() > 0
}

// isEventStream reports a text/event-stream Content-Type (parameters and case aside).
func isEventStream(ct string) bool {
	const sse = "text/event-stream"
	return len(ct) >= len(sse) && strings.EqualFold(ct[:len(sse)], sse)
}

// usage is the token usage the answer reported, once finished.
func (f *flight) usage() (prompt, completion int, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.usagePrompt, f.usageCompletion, f.usageKnown && f.finished
}

// answerUsage is the usage recorded for the answer, read by done before the flight finishes.
func (f *flight) answerUsage() (prompt, completion int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.usagePrompt, f.usageCompletion
}

// isErrorEvent reports an SSE event whose type (the `event:` field) is "error".
func isErrorEvent(ev []byte) bool {
	for len(ev) > 0 {
		i := bytes.IndexByte(ev, '\n')
		line := ev
		if i >= 0 {
			line, ev = ev[:i], ev[i+1:]
		} else {
			ev = nil
		}
		line = bytes.TrimRight(line, "\r")
		if v, ok := bytes.CutPrefix(line, []byte("event:")); ok {
			return string(bytes.TrimSpace(v)) == "error"
		}
	}
	return false
}

// spentNothing reports an answer that cost the upstream no tokens: the call failed before any
// answer, or the upstream refused it (any status but 200).
func (f *flight) spentNothing() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.finished && (!f.headerSet || f.status != http.StatusOK)
}
