package proxy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/zest-proxy/zest/proxy/sse"
	"github.com/zest-proxy/zest/telemetry"
)

// flight is one upstream call whose answer one or more clients receive. The answer is kept
// whole while the call lasts, so a client that joins late gets it from its start. The call runs
// on its own goroutine with its own context: a client hanging up does not cancel it while
// others still listen; when the last one leaves, it is cancelled.
type flight struct {
	group *flightGroup // nil for a private flight
	key   string
	model string          // for the upstream span
	done  func(f *flight) // runs once a clean answer is complete, before waiters see it finished
	after func(f *flight) // runs once a clean answer is complete, after waiters see it finished

	expires time.Time // when a stored answer of this call expires: joinable until then

	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	changed   chan struct{} // closed and replaced on every change
	headerSet bool
	status    int
	header    http.Header
	isSSE     bool
	parts     [][]byte // SSE: whole events; otherwise pieces of the body
	finished  bool
	err       error  // the call or the read failed
	result    []byte // the complete chat.completion of a clean 200, else nil
	refs      int
	abandoned bool

	usagePrompt, usageCompletion int
	usageKnown                   bool
}

// flightGroup deduplicates concurrent identical misses by exact key.
type flightGroup struct {
	mu sync.Mutex
	m  map[string]*flight
}

// join returns the live flight for key, or registers f under key and returns it as the leader.
func (g *flightGroup) join(key string, f *flight, now time.Time) (*flight, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if cur, ok := g.m[key]; ok {
		cur.mu.Lock()
		// A finished flight is joined only for its clean answer while that is being stored,
		// and never past the answer's expiry; a failed one is never handed to a newcomer.
		alive := !cur.abandoned && (!cur.finished || (cur.result != nil && now.Before(cur.expires)))
		if alive {
			cur.refs++
		}
		cur.mu.Unlock()
		if alive {
			return cur, false
		}
	}
	f.group, f.key, f.refs = g, key, 1
	g.m[key] = f
	return f, true
}

func (g *flightGroup) forget(f *flight) {
	g.mu.Lock()
	if g.m[f.key] == f {
		delete(g.m, f.key)
	}
	g.mu.Unlock()
}

// newFlight makes a flight whose call is bounded by timeout (none when <= 0).
func newFlight(ctx context.Context, timeout time.Duration) *flight {
	f := &flight{changed: make(chan struct{}), refs: 1}
	if timeout > 0 {
		f.ctx, f.cancel = context.WithTimeout(ctx, timeout)
	} else {
		f.ctx, f.cancel = context.WithCancel(ctx)
	}
	return f
}

// broadcastLocked wakes every waiter. f.mu must be held.
func (f *flight) broadcastLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// leave is called by each client when it is done with the flight. The last one to leave an
// unfinished flight cancels the upstream call, so nothing half-read is ever stored.
func (f *flight) leave() {
	var g *flightGroup
	f.mu.Lock()
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

// run performs the upstream call and records the answer. It is the flight's only writer.
func (f *flight) run(h *Handler, req *http.Request) {
	defer f.cancel()
	var span trace.Span
	if h.tracing {
		var ctx context.Context
		// The HTTP client span of the upstream call; the server span carries the GenAI name.
		ctx, span = h.tracer.Start(req.Context(), req.Method+" "+chatPath,
			trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("server.address", req.URL.Host),
				telemetry.GenAIOperationName.String(telemetry.OperationChat),
				telemetry.GenAIProviderName.String(h.provider), telemetry.GenAIRequestModel.String(f.model)))
		req = req.WithContext(ctx)
		h.injectTrace(req)
		defer span.End()
	}
	sent := time.Now()
	resp, err := h.transport.RoundTrip(req)
	if err != nil {
		if span != nil {
			span.SetStatus(codes.Error, errText(err))
		}
		if m := h.opts.Metrics; m != nil && req.Context().Err() != context.Canceled { // not when every client left
			m.UpstreamFailed()
		}
		f.finish(nil, err)
		return
	}
	defer resp.Body.Close()
	if span != nil {
		span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	}
	if m := h.opts.Metrics; m != nil {
		defer func() { m.ObserveUpstream(req.Context(), resp.StatusCode, time.Since(sent)) }()
	}
	firstByte := true
	isSSE := isEventStream(resp.Header.Get("Content-Type"))
	header := resp.Header.Clone()
	removeHopByHop(header)
	header.Del("Content-Length")
	f.mu.Lock()
	f.headerSet, f.status, f.header, f.isSSE = true, resp.StatusCode, header, isSSE
	f.broadcastLocked()
	f.mu.Unlock()

	var asm *sse.Assembler
	if isSSE && resp.StatusCode == http.StatusOK {
		asm = sse.NewAssembler()
	}
	var sc sse.Scanner
	var body bytes.Buffer
	poisoned := false
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	buf := *bp
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 && firstByte {
			firstByte = false
			if m := h.opts.Metrics; m != nil {
				m.ObserveTTFT(req.Context(), time.Since(sent))
			}
		}
		if n > 0 {
			if isSSE {
				var evs [][]byte
				sc.Feed(buf[:n], func(ev []byte) {
					evs = append(evs, bytes.Clone(ev))
					if asm != nil {
						if isErrorEvent(ev) {
							poisoned = true // an `event: error` is a failed answer, whatever follows
						}
						asm.Event(sse.Data(ev))
					}
				})
				if len(evs) > 0 {
					f.mu.Lock()
					f.parts = append(f.parts, evs...)
					f.broadcastLocked()
					f.mu.Unlock()
				}
			} else {
				body.Write(buf[:n])
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if isSSE {
				f.appendTail(&sc)
			}
			f.finish(nil, rerr)
			return
		}
	}
	var result []byte
	if isSSE {
		f.appendTail(&sc)
		if asm != nil && !poisoned {
			if c, err := asm.Complete(); err == nil {
				result = c
				f.usagePrompt, f.usageCompletion, f.usageKnown = asm.Usage()
			}
		}
	} else {
		b := body.Bytes()
		f.mu.Lock()
		f.parts = append(f.parts, b)
		f.mu.Unlock()
		if resp.StatusCode == http.StatusOK && looksLikeCompletion(b) {
			result = b
			f.usagePrompt, f.usageCompletion, f.usageKnown = usageOf(b)
		}
	}
	f.finish(result, nil)
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

// finish records the end of the call, stores a clean answer, and wakes every waiter.
func (f *flight) finish(result []byte, err error) {
	f.mu.Lock()
	f.result, f.err = result, err
	abandoned := f.abandoned
	f.mu.Unlock()
	if err == nil && result != nil && !abandoned && f.done != nil {
		f.done(f)
	}
	clean := err == nil && result != nil && !abandoned
	if !clean && f.group != nil {
		f.group.forget(f) // nobody new may join a failed call
	}
	f.mu.Lock()
	f.finished = true
	f.broadcastLocked()
	f.mu.Unlock()
	if clean && f.after != nil {
		f.after(f)
	}
	if f.group != nil {
		// Only now, once the stored answer is visible in the cache, do newcomers stop joining.
		f.group.forget(f)
	}
}

// snapshot is what a waiter reads under the lock.
type snapshot struct {
	headerSet, finished bool
	status              int
	header              http.Header
	isSSE               bool
	parts               [][]byte
	err                 error
	result              []byte
	changed             <-chan struct{}
}

func (f *flight) snap() snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return snapshot{f.headerSet, f.finished, f.status, f.header, f.isSSE, f.parts, f.err, f.result, f.changed}
}

// wait blocks until cond holds for the flight's state or ctx ends.
func (f *flight) wait(ctx context.Context, cond func(s snapshot) bool) (snapshot, error) {
	for {
		s := f.snap()
		if cond(s) {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return s, ctx.Err()
		case <-s.changed:
		}
	}
}

// readBufs recycles the 32 KiB buffers upstream bodies are read through.
var readBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// isEventStream reports a text/event-stream Content-Type (parameters and case aside).
func isEventStream(ct string) bool {
	const sse = "text/event-stream"
	return len(ct) >= len(sse) && strings.EqualFold(ct[:len(sse)], sse)
}

// looksLikeCompletion is the check a plain 200 answer passes before it is stored: valid JSON
// with a choices member.
func looksLikeCompletion(b []byte) bool {
	return bytes.Contains(b, []byte(`"choices"`)) && jsonValid(b)
}

// usage is the token usage the answer reported, once finished.
func (f *flight) usage() (prompt, completion int, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.usagePrompt, f.usageCompletion, f.usageKnown && f.finished
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
