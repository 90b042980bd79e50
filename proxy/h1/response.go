package h1

import (
	"bufio"
	"net"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// response is a Server's http.ResponseWriter. The head is composed when the status is set
// (later header changes are not sent, as with net/http) and written when the response
// commits: at the first Flush, when the body outgrows the 4 KiB held back, or when the handler
// returns. Framing is decided then: the handler's Content-Length; else, when the handler has
// returned, the length of what it wrote; else chunked (HTTP/1.1) or delimited by close (1.0).
type response struct {
	c    *srvConn
	req  *http.Request
	body *reqBody // nil for a request without one
	rc   *reqCtx  // the request's context, cancelled when the client is found gone

	header     http.Header
	status     int // the final status; 0 until WriteHeader
	isHead     bool
	committed  bool // the head is in the write buffer
	chunked    bool
	closeAfter bool // the connection closes after this response
	hijacked   bool
	done       bool // the handler has returned

	contentLength int64 // declared by the handler; -1 if not
	written       int64
	hasType       bool // the handler set Content-Type
	hasDate       bool
	hasConnClose  bool // the handler's Connection header says close
	teMode        string
	trailers      []string // names declared in the Trailer header

	setWriteDeadline bool
	err              error // the first write error
}

var (
	_ http.ResponseWriter = (*response)(nil)
	_ http.Flusher        = (*response)(nil)
	_ http.Hijacker       = (*response)(nil)
)

func (w *response) Header() http.Header {
	if w.header == nil {
		w.header = make(http.Header)
	}
	return w.header
}

func bodyAllowed(status int) bool {
	return (status < 100 || status > 199) && status != http.StatusNoContent && status != http.StatusNotModified
}

func (w *response) WriteHeader(code int) {
	if w.hijacked || w.status != 0 {
		return // as net/http, a superfluous call is ignored
	}
	if code < 100 || code > 999 {
		panic("h1: invalid WriteHeader code " + strconv.Itoa(code))
	}
	c := w.c
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		w.writeInterim(code)
		return
	}
	w.status = code
	h := c.head[:0]
	h = appendStatusLine(h, w.req.ProtoAtLeast(1, 1), code)
	hdrs := c.fields[:0]
	for k, vv := range w.header {
		hdrs = append(hdrs, field{k, vv})
	}
	sortFields(hdrs)
	for _, f := range hdrs {
		k, vv := f.k, f.vv
		switch k {
		case "Content-Length":
			if len(vv) > 0 {
				if n, err := strconv.ParseInt(textproto.TrimString(vv[0]), 10, 64); err == nil && n >= 0 {
					w.contentLength = n
				}
			}
			continue
		case "Transfer-Encoding":
			if len(vv) > 0 {
				w.teMode = textproto.TrimString(vv[0])
			}
			continue
		case "Content-Type":
			w.hasType = true
		case "Date":
			w.hasDate = true
		case "Connection":
			for _, v := range vv {
				if httpguts.HeaderValuesContainsToken([]string{v}, "close") {
					w.hasConnClose = true
				}
			}
		case "Trailer":
			for _, v := range vv {
				for name := range strings.SplitSeq(v, ",") {
					if name = textproto.TrimString(name); name != "" {
						w.trailers = append(w.trailers, http.CanonicalHeaderKey(name))
					}
				}
			}
		}
		if strings.HasPrefix(k, http.TrailerPrefix) {
			continue
		}
		h = appendHeader(h, k, vv)
	}
	clear(hdrs) // keep no handler's values past the response
	c.fields = hdrs[:0]
	c.head = h
}

// writeInterim sends a 1xx response now, with the handler's headers but no framing ones.
func (w *response) writeInterim(code int) {
	c := w.c
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if code == http.StatusContinue {
		if w.body == nil || !w.body.owesContinue {
			return
		}
		w.body.owesContinue = false
	}
	h := appendStatusLine(c.head[:0], true, code)
	for k, vv := range w.header {
		if k != "Content-Length" && k != "Transfer-Encoding" && !strings.HasPrefix(k, http.TrailerPrefix) {
			h = appendHeader(h, k, vv)
		}
	}
	h = append(h, "\r\n"...)
	c.head = h[:0]
	c.bw.Write(h)
	w.writeErr(c.bw.Flush())
}

func appendStatusLine(h []byte, is11 bool, code int) []byte {
	if is11 {
		h = append(h, "HTTP/1.1 "...)
	} else {
		h = append(h, "HTTP/1.0 "...)
	}
	h = strconv.AppendInt(h, int64(code), 10)
	h = append(h, ' ')
	h = append(h, http.StatusText(code)...)
	return append(h, "\r\n"...)
}

// field is one header of a message being written: its name and values.
type field struct {
	k  string
	vv []string
}

// sortFields sorts a message's headers by name, as net/http writes them: the dozen or so of
// an answer or a request by insertion, without a comparison function's calls; more (a relayed
// upstream's hundreds, say) by slices.SortFunc, whose time grows as n log n.
func sortFields(fs []field) {
	if len(fs) > 16 {
		slices.SortFunc(fs, func(a, b field) int { return strings.Compare(a.k, b.k) })
		return
	}
	for i := 1; i < len(fs); i++ {
		for j := i; j > 0 && fs[j].k < fs[j-1].k; j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
}

// appendHeader writes one header's lines as net/http does: a name that is not a valid token
// is dropped, and line breaks in a value become spaces.
func appendHeader(h []byte, k string, vv []string) []byte {
	if !httpguts.ValidHeaderFieldName(k) {
		return h
	}
	for _, v := range vv {
		h = append(h, k...)
		h = append(h, ": "...)
		v = textproto.TrimString(v)
		if !strings.ContainsAny(v, "\r\n") {
			h = append(h, v...) // the common value, copied whole
		} else {
			for i := 0; i < len(v); i++ {
				if b := v[i]; b == '\r' || b == '\n' {
					h = append(h, ' ')
				} else {
					h = append(h, b)
				}
			}
		}
		h = append(h, "\r\n"...)
	}
	return h
}

func (w *response) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	w.written += int64(len(p))
	if w.contentLength >= 0 && w.written > w.contentLength {
		return 0, http.ErrContentLength
	}
	if w.isHead {
		return len(p), nil
	}
	c := w.c
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	n := len(p)
	if !w.committed {
		if len(c.hold)+len(p) <= bufSize {
			c.hold = append(c.hold, p...)
			return n, nil
		}
		if w.commitLocked(p) {
			p = nil // it went out with the head
		}
	}
	w.writeBodyLocked(p)
	if w.err != nil {
		return 0, w.err
	}
	return n, nil
}

// writeBodyLocked writes p, framed, after the head.
func (w *response) writeBodyLocked(p []byte) {
	if len(p) == 0 {
		return
	}
	bw := w.c.bw
	var err error
	if w.chunked {
		// The size is written into the buffer's own free space, as bufio intends: an array
		// of ours would be moved to the heap on every chunk (Write may hand p to the conn).
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(len(p)), 16))
		bw.WriteString("\r\n")
		bw.Write(p)
		_, err = bw.WriteString("\r\n")
	} else {
		_, err = bw.Write(p) // a bufio.Writer's error is sticky: this reports any earlier one
	}
	w.writeErr(err)
}

// commitLocked decides the framing and writes the head and the held body; next is what is
// about to be written (for Content-Type sniffing). When head, held body and next are more
// than the buffer takes and nothing else is buffered, it sends all three in one vectored
// write (one system call, where the buffer would flush twice: a streamed hit's answer, any
// answer over about 4 KiB) and reports that next is written.
func (w *response) commitLocked(next []byte) (sentNext bool) {
	c := w.c
	w.committed = true
	if w.body != nil {
		// As net/http: what the handler left of the body is read now, so a client that sends
		// its whole request before reading the answer does not deadlock; a 100 Continue not
		// sent is never owed after the answer.
		if !w.body.drain() {
			w.closeAfter = true
		}
	}
	h := c.head
	allowed := bodyAllowed(w.status)
	switch {
	case !allowed:
		if w.status == http.StatusNotModified && w.contentLength >= 0 {
			h = appendContentLength(h, w.contentLength)
		}
	case w.isHead:
		if w.contentLength >= 0 {
			h = appendContentLength(h, w.contentLength)
		} else if w.done && w.written > 0 {
			h = appendContentLength(h, w.written)
		}
	case w.contentLength >= 0:
		h = appendContentLength(h, w.contentLength)
	case strings.EqualFold(w.teMode, "identity"):
		w.closeAfter = true
	case w.done && w.teMode == "" && len(w.trailers) == 0 && !w.hasPrefixedTrailers():
		w.contentLength = int64(len(c.hold))
		h = appendContentLength(h, w.contentLength)
	case w.req.ProtoAtLeast(1, 1):
		w.chunked = true
		h = append(h, "Transfer-Encoding: chunked\r\n"...)
	default:
		w.closeAfter = true
	}
	if !w.hasType && allowed && !w.isHead && w.teMode == "" {
		sniff := c.hold
		if len(sniff) == 0 {
			sniff = next
		}
		if len(sniff) > 0 {
			h = append(h, "Content-Type: "...)
			h = append(h, http.DetectContentType(sniff)...)
			h = append(h, "\r\n"...)
		}
	}
	if !w.hasDate {
		h = append(h, "Date: "...)
		h = append(h, c.date.get()...)
		h = append(h, "\r\n"...)
	}
	if w.req.Close || !w.req.ProtoAtLeast(1, 1) || w.hasConnClose || c.srv.closing.Load() {
		w.closeAfter = true
	}
	if w.closeAfter && !w.hasConnClose {
		h = append(h, "Connection: close\r\n"...)
	}
	h = append(h, "\r\n"...)
	c.head = h[:0]
	hold := c.hold
	c.hold = hold[:0]
	if c.vec && allowed && !w.isHead && !w.chunked && c.bw.Buffered() == 0 &&
		len(h)+len(hold)+len(next) > c.bw.Available() {
		w.writeErr(c.writev(h, hold, next))
		return true
	}
	c.bw.Write(h)
	w.writeBodyLocked(hold)
	return false
}

func appendContentLength(h []byte, n int64) []byte {
	h = append(h, "Content-Length: "...)
	h = strconv.AppendInt(h, n, 10)
	return append(h, "\r\n"...)
}

func (w *response) hasPrefixedTrailers() bool {
	for k := range w.header {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			return true
		}
	}
	return false
}

// writeErr records the first write error: the client is gone, so the request's context ends
// and the connection closes after the handler.
func (w *response) writeErr(err error) {
	if err != nil && w.err == nil {
		w.err = err
		w.closeAfter = true
		w.rc.cancel()
	}
}

// FlushError sends the head, if not yet sent, and the body written so far.
func (w *response) FlushError() error {
	if w.hijacked {
		return http.ErrHijacked
	}
	c := w.lockCommitted()
	defer c.wmu.Unlock()
	w.writeErr(c.bw.Flush())
	return w.err
}

// lockCommitted takes the write lock with the head committed (status 200 if the handler set
// none); the caller unlocks c.wmu.
func (w *response) lockCommitted() (c *srvConn) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	c = w.c
	c.wmu.Lock()
	if !w.committed {
		w.commitLocked(nil)
	}
	return c
}

func (w *response) Flush() { w.FlushError() }

// finish completes the response after the handler returns: commit, chunked terminator and
// trailers, flush. A body short of its declared Content-Length closes the connection.
func (w *response) finish() {
	w.done = true
	c := w.lockCommitted()
	defer c.wmu.Unlock()
	if w.chunked {
		h := append(c.head[:0], "0\r\n"...)
		for _, k := range w.trailers {
			h = appendHeader(h, k, w.header[k])
		}
		for k, vv := range w.header {
			if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
				h = appendHeader(h, http.CanonicalHeaderKey(name), vv)
			}
		}
		h = append(h, "\r\n"...)
		c.head = h[:0]
		c.bw.Write(h)
	}
	if bodyAllowed(w.status) && !w.isHead && w.contentLength >= 0 && w.written < w.contentLength {
		w.closeAfter = true
	}
	w.writeErr(c.bw.Flush())
}

// writeContinue sends "100 Continue", unless the response has already begun.
func (w *response) writeContinue() {
	c := w.c
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if w.committed || w.err != nil {
		return
	}
	c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
	w.writeErr(c.bw.Flush())
}

// Hijack hands the connection to the handler, with the buffered reader (holding any bytes
// the client sent after the request head) and writer. What the response wrote is flushed.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	c := w.c
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if w.status != 0 && !w.committed {
		w.commitLocked(nil)
	}
	if w.committed {
		if err := c.bw.Flush(); err != nil {
			return nil, nil, err
		}
	}
	if !c.state.CompareAndSwap(stateActive, stateHijacked) {
		return nil, nil, http.ErrServerClosed
	}
	w.hijacked = true
	c.cr.endRequest()
	c.cr.setLimit(-1)
	// As net/http: the connection comes without deadlines, and a byte the watch read is in
	// the reader handed over (its Buffered counts it), not only behind it.
	c.cr.clearReadDeadline()
	c.rwc.SetWriteDeadline(time.Time{})
	if c.cr.keepsByte() {
		if _, err := c.br.Peek(c.br.Buffered() + 1); err != nil {
			return nil, nil, err
		}
	}
	return c.rwc, bufio.NewReadWriter(c.br, c.bw), nil
}

func (w *response) SetReadDeadline(t time.Time) error { return w.c.cr.setReadDeadline(t) }

func (w *response) SetWriteDeadline(t time.Time) error {
	w.setWriteDeadline = true
	return w.c.rwc.SetWriteDeadline(t)
}
