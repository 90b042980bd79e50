package proxy

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/zest-proxy/zest/cache"
	"github.com/zest-proxy/zest/proxy/sse"
)

// hopByHop are the headers that belong to one connection, not to the message (RFC 9110 §7.6.1).
var hopByHop = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// removeHopByHop deletes the hop-by-hop headers and those the Connection header names.
func removeHopByHop(h http.Header) {
	for _, f := range h["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = strings.TrimSpace(sf); sf != "" {
				h.Del(sf)
			}
		}
	}
	for _, k := range hopByHop {
		delete(h, k) // canonical already
	}
}

// usageOf reads usage.prompt_tokens and usage.completion_tokens of a chat.completion.
func usageOf(b []byte) (prompt, completion int, ok bool) { return sse.CompletionUsage(b) }

// participant is one client of a flight and how it wants the answer.
type participant struct {
	stream       bool // the client asked for SSE
	includeUsage bool // ... with the usage chunk
	follower     bool // joined another client's call: gets the cleaned header set of a hit
	cursor       *cursor
	// setHeaders writes zest's own headers; clean says the answer is a complete 200 that may
	// be stored (a live stream, whose end is not known yet, counts as clean when it is a 200).
	setHeaders func(h http.Header, clean bool)
	// status, when set, receives the status of a live stream as soon as it is written, so a
	// stream cut later is still logged with what the client was sent.
	status *int
}

// relayedHeaders are the upstream headers a follower of another client's call receives: what
// describes the answer, never what belongs to the other request (Set-Cookie, request ids,
// processing times).
var relayedHeaders = []string{"Content-Type", "Retry-After", "Retry-After-Ms"}

// upstreamHeaders copies the upstream's headers for p: all of them for the client whose call
// it was, the cleaned set for a follower.
func upstreamHeaders(dst, src http.Header, p participant) {
	if !p.follower {
		copyHeader(dst, src)
		return
	}
	for _, k := range relayedHeaders {
		if vv, ok := src[k]; ok {
			dst[k] = append([]string(nil), vv...)
		}
	}
}

// serveFlight writes the flight's answer to one client in the client's form, live for a
// streamed answer to a streaming client. It returns the status written (499 when the client
// left first).
func (h *Handler) serveFlight(w http.ResponseWriter, r *http.Request, f *flight, p participant) int {
	ctx := r.Context()
	s, err := f.wait(ctx, func(s snapshot) bool { return s.headerSet || s.finished })
	if err != nil {
		return statusClientClosed
	}
	if !s.headerSet {
		e := upstreamError(ctx, s.err)
		if e.Status != statusClientClosed {
			p.setHeaders(w.Header(), false)
			writeError(w, e)
		}
		return e.Status
	}
	if s.isSSE && p.stream {
		return h.relay(w, r, f, s, p)
	}
	// Every other combination needs the whole answer first, unless it is too large to keep.
	s, err = f.wait(ctx, func(s snapshot) bool { return s.finished || s.overflow })
	if err != nil {
		return statusClientClosed
	}
	hdr := w.Header()
	switch {
	case s.overflow && s.isSSE:
		// A non-streaming client of a streamed answer too large to assemble.
		p.setHeaders(hdr, false)
		writeError(w, &apiError{Status: http.StatusBadGateway, Type: "server_error", Code: "upstream_response_too_large",
			Message: "The upstream's streamed answer is larger than this proxy's max_response_bytes and cannot be assembled; ask with stream: true."})
		return http.StatusBadGateway
	case s.overflow:
		return h.relay(w, r, f, s, p) // as it comes, whatever form the client asked for
	case s.result != nil && p.stream:
		body, err := sse.AppendReplay(nil, s.result, sse.ReplayOptions{IncludeUsage: p.includeUsage})
		if err != nil {
			break
		}
		writeAnswer(w, p, s.header, "text/event-stream; charset=utf-8", body)
		return http.StatusOK
	case s.result != nil:
		writeAnswer(w, p, s.header, "application/json", s.result)
		return http.StatusOK
	case s.err != nil:
		e := upstreamError(ctx, s.err)
		p.setHeaders(hdr, false)
		writeError(w, e)
		return e.Status
	case s.isSSE && s.status == http.StatusOK:
		// A non-streaming client of a streamed answer that did not complete.
		p.setHeaders(hdr, false)
		writeError(w, &apiError{Status: http.StatusBadGateway, Type: "server_error", Code: "upstream_stream_error",
			Message: "The upstream stream ended before the answer was complete."})
		return http.StatusBadGateway
	}
	// Not a completion (an upstream error, say): pass it on as it came.
	upstreamHeaders(hdr, s.header, p)
	p.setHeaders(hdr, false)
	n := 0
	for _, b := range s.parts {
		n += len(b)
	}
	hdr.Set("Content-Length", strconv.Itoa(n))
	w.WriteHeader(s.status)
	for _, b := range s.parts {
		w.Write(b)
	}
	return s.status
}

// relay writes a flight's answer to a client as it arrives, one flush per batch read from the
// upstream: SSE events (leaving out the usage chunk when the client did not ask), or the raw
// pieces of an answer too large to keep whole. It moves the client's cursor as it writes.
func (h *Handler) relay(w http.ResponseWriter, r *http.Request, f *flight, s snapshot, p participant) int {
	rl := startRelay(w, f, s, p)
	// The headers go out at once; with the first part in the same write when it is already here.
	if s = f.snap(); s.base+len(s.parts) <= rl.next && !s.finished {
		rl.rc.Flush()
	}
	for {
		if err := rl.write(s); err != nil {
			return statusClientClosed
		}
		if s.finished {
			return rl.end(s)
		}
		var err error
		s, err = f.wait(r.Context(), func(ns snapshot) bool { return ns.finished || ns.base+len(ns.parts) > rl.next })
		if err != nil {
			return statusClientClosed
		}
	}
}

// relayer writes one client's live copy of a flight's answer.
type relayer struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	f    *flight
	p    participant
	next int // the client's next part, as its cursor will say once the batch is flushed
}

// startRelay writes the answer's head (status and headers, not flushed) for a live relay.
func startRelay(w http.ResponseWriter, f *flight, s snapshot, p participant) *relayer {
	hdr := w.Header()
	upstreamHeaders(hdr, s.header, p)
	hdr.Del("Content-Length")
	p.setHeaders(hdr, s.status == http.StatusOK && !s.overflow)
	if p.status != nil {
		*p.status = s.status
	}
	w.WriteHeader(s.status)
	return &relayer{w: w, rc: http.NewResponseController(w), f: f, p: p, next: p.cursor.next}
}

// write writes the parts of s the client has not written, flushes them, and moves its cursor.
func (rl *relayer) write(s snapshot) error {
	if rl.next < s.base {
		// Parts this client had not written were dropped: cannot happen while its cursor
		// holds them, but never write a stream with a hole in it.
		panic(errStreamCut)
	}
	w, next := rl.w, rl.next
	for ; next < s.base+len(s.parts); next++ {
		ev := s.parts[next-s.base]
		var err error
		switch {
		case !s.isSSE || rl.p.includeUsage:
			_, err = w.Write(ev)
		case sse.IsUsageOnly(sse.Data(ev)):
			continue
		default:
			err = writeWithoutNullUsage(w, ev)
		}
		if err != nil {
			return err
		}
	}
	if err := rl.rc.Flush(); err != nil {
		return err
	}
	rl.next = next
	rl.f.advance(rl.p.cursor, next)
	return nil
}

// liveRelay writes a streamed answer to the streaming client whose call it is, from the
// goroutine that reads it from the upstream (see flight.run): no hand-off between goroutines on
// the way to the first token. Followers of the call get it through relay as usual; they get it as fast
// as the leader's client takes it, up to what its socket buffers hold.
type liveRelay struct {
	w http.ResponseWriter
	r *http.Request
	f *flight
	p participant

	rl   *relayer // set once the head is written
	off  bool     // not an event stream: the client gets the answer once complete (serveFlight)
	left bool     // the client left: the read went on without it
}

// step writes what the flight has that the client has not; false once the client has left.
func (lr *liveRelay) step() bool {
	if lr.off {
		return true
	}
	if lr.r.Context().Err() != nil {
		lr.left = true
		return false
	}
	s := lr.f.snap()
	if lr.rl == nil {
		if !s.isSSE {
			lr.off = true
			return true
		}
		lr.rl = startRelay(lr.w, lr.f, s, lr.p)
	}
	if lr.rl.write(s) != nil {
		lr.left = true
		return false
	}
	return true
}

// finish writes the rest of a finished flight's answer and returns the status, as relay does.
func (lr *liveRelay) finish() int {
	s := lr.f.snap()
	if lr.rl.write(s) != nil {
		return statusClientClosed
	}
	return lr.rl.end(s)
}

// end is the status of a relay whose answer finished: when the upstream broke off mid-stream,
// it breaks the connection (panics) so the client sees a cut stream, not a clean end. The
// handler's defers still release, log and count.
func (rl *relayer) end(s snapshot) int {
	if s.err != nil {
		panic(errStreamCut)
	}
	return s.status
}

// errStreamCut is the panic value that aborts a client's response when the upstream's stream
// broke off. It is http.ErrAbortHandler, so net/http closes the connection without logging.
var errStreamCut = http.ErrAbortHandler

// writeAnswer writes a complete answer body with the upstream's headers (less framing ones).
func writeAnswer(w http.ResponseWriter, p participant, upstream http.Header, contentType string, body []byte) {
	hdr := w.Header()
	upstreamHeaders(hdr, upstream, p)
	vals := []string{contentType, strconv.Itoa(len(body))} // one backing array
	hdr["Content-Type"] = vals[0:1:1]
	p.setHeaders(hdr, true)
	hdr["Content-Length"] = vals[1:2:2]
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// copyHeader copies src's headers but Content-Length into dst, their values in one new backing
// array (an upstream such as OpenAI answers with a dozen or more headers): each key's values
// are capped where the next key's start, so that an append to one never reaches another.
func copyHeader(dst, src http.Header) {
	n := 0
	for k, vv := range src {
		if k != "Content-Length" {
			n += len(vv)
		}
	}
	vals := make([]string, 0, n)
	for k, vv := range src {
		if k == "Content-Length" {
			continue
		}
		if len(vv) == 0 {
			dst[k] = nil
			continue
		}
		start := len(vals)
		vals = append(vals, vv...)
		dst[k] = vals[start:len(vals):len(vals)]
	}
}

// writeHit answers from a stored entry: the JSON as stored, or its SSE replay (memoised on the
// entry per include_usage) for a streaming client.
func (h *Handler) writeHit(w http.ResponseWriter, e *cache.Entry, stream, includeUsage bool, setHeaders func(http.Header)) error {
	body := e.Body
	if stream {
		slot := 0
		if includeUsage {
			slot = 1
		}
		var err error
		body, err = h.opts.Cache.Rendering(e, slot, func() ([]byte, error) {
			return sse.AppendReplay(nil, e.Body, sse.ReplayOptions{IncludeUsage: includeUsage})
		})
		if err != nil {
			return err
		}
	}
	h.writeCached(w, body, stream, "exact", e.Key, e.Stored, setHeaders)
	return nil
}

// writeCached writes a cache hit already rendered for the client (JSON, or SSE when stream) with
// the hit headers: X-Cache-Status, X-Cache-Type (layer), X-Cache-Key, Age, then setHeaders'.
func (h *Handler) writeCached(w http.ResponseWriter, body []byte, stream bool, layer, key string, stored time.Time, setHeaders func(http.Header)) {
	ct := "application/json"
	if stream {
		ct = "text/event-stream; charset=utf-8"
	}
	hdr := w.Header()
	// One backing array for the six header values: a hit allocates as little as it can.
	vals := [...]string{ct, "HIT", layer, key,
		strconv.FormatInt(int64(h.now().Sub(stored)/time.Second), 10), strconv.Itoa(len(body))}
	vs := vals[:]
	hdr["Content-Type"] = vs[0:1:1]
	hdr["X-Cache-Status"] = vs[1:2:2]
	hdr["X-Cache-Type"] = vs[2:3:3]
	hdr["X-Cache-Key"] = vs[3:4:4]
	hdr["Age"] = vs[4:5:5]
	if setHeaders != nil {
		setHeaders(hdr)
	}
	hdr["Content-Length"] = vs[5:6:6]
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// stripNullUsage removes a `"usage":null` member from an SSE chunk: the upstream adds it to every
// chunk once include_usage is on, which zest asked for and this client did not. Other bytes are
// kept as they were. A chunk without it is returned as is.
func stripNullUsage(ev []byte) []byte {
	start, end, ok := nullUsage(ev)
	if !ok {
		return ev
	}
	out := make([]byte, 0, len(ev)-(end-start))
	out = append(out, ev[:start]...)
	return append(out, ev[end:]...)
}

// writeWithoutNullUsage writes ev as stripNullUsage would return it, in place: no copy.
func writeWithoutNullUsage(w io.Writer, ev []byte) error {
	start, end, ok := nullUsage(ev)
	if !ok {
		_, err := w.Write(ev)
		return err
	}
	if _, err := w.Write(ev[:start]); err != nil {
		return err
	}
	_, err := w.Write(ev[end:])
	return err
}

// nullUsage finds the `"usage":null` member of an SSE chunk with one adjacent comma: the bytes
// ev[start:end] that stripNullUsage removes.
func nullUsage(ev []byte) (start, end int, ok bool) {
	// The member is normally last; search backwards for a "usage" that is a key with null.
	for end := len(ev); end > 0; {
		i := bytes.LastIndex(ev[:end], []byte(`"usage"`))
		if i <= 0 {
			return 0, 0, false
		}
		end = i
		if ev[i-1] == '\\' {
			continue
		}
		if start, end, ok := nullMember(ev, i); ok {
			return start, end, true
		}
	}
	return 0, 0, false
}

// nullMember is the range of the member whose key starts at i when its value is null, with
// one adjacent comma.
func nullMember(ev []byte, i int) (start, end int, ok bool) {
	j := i + len(`"usage"`)
	for j < len(ev) && (ev[j] == ' ' || ev[j] == '\t') {
		j++
	}
	if j >= len(ev) || ev[j] != ':' {
		return 0, 0, false
	}
	j++
	for j < len(ev) && (ev[j] == ' ' || ev[j] == '\t') {
		j++
	}
	if !bytes.HasPrefix(ev[j:], []byte("null")) {
		return 0, 0, false
	}
	start, end = i, j+len("null")
	// Take the comma before (the usual last member) or, failing that, the one after.
	k := start - 1
	for k >= 0 && (ev[k] == ' ' || ev[k] == '\t') {
		k--
	}
	if k >= 0 && ev[k] == ',' {
		start = k
	} else {
		m := end
		for m < len(ev) && (ev[m] == ' ' || ev[m] == '\t') {
			m++
		}
		if m < len(ev) && ev[m] == ',' {
			end = m + 1
		}
	}
	return start, end, true
}
