package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zest-proxy/zest/cache"
	"github.com/zest-proxy/zest/internal/httphdr"
)

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readBody reads the whole request body, at most limit bytes, into a pooled buffer.
// The caller returns the buffer with putBuf when it no longer needs the bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) (*bytes.Buffer, *apiError) {
	if r.ContentLength > limit {
		drainBody(w, r, r.Body)
		return nil, tooLarge(limit)
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	body := r.Body
	if r.ContentLength < 0 {
		// A length declared up to limit needs no reader of its own: the server's body ends
		// there (net/http, package h1 and HTTP/2 all refuse more than was declared).
		body = http.MaxBytesReader(w, r.Body, limit)
	}
	_, err := buf.ReadFrom(body)
	if err != nil {
		putBuf(buf)
		if isMaxBytes(err) {
			drainBody(w, r, r.Body)
			return nil, tooLarge(limit)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, &apiError{Status: http.StatusRequestTimeout, Type: "invalid_request_error", Code: "request_timeout",
				Message: "The request body did not arrive in time."}
		}
		return nil, &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error",
			Message: "Could not read the request body: " + err.Error()}
	}
	return buf, nil
}

// Lingering close after a 413, as nginx does: a client that writes its whole body before it
// reads (Python's http.client, curl without Expect) would otherwise meet a connection reset
// instead of the answer. At most drainLimit bytes are read, for at most drainTime.
const (
	drainLimit = 64 << 20
	drainTime  = 10 * time.Second
)

// drainBody reads and discards what is left of a refused request body, within the bounds
// above. A client waiting for "100 Continue" has sent nothing and is not asked to.
func drainBody(w http.ResponseWriter, r *http.Request, raw io.Reader) {
	if raw == nil || raw == http.NoBody || strings.EqualFold(httphdr.Get(r.Header, "Expect"), "100-continue") {
		return
	}
	if r.ContentLength > drainLimit {
		return // far too much to read: the connection is closed on it
	}
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(drainTime))
	io.CopyN(io.Discard, raw, drainLimit)
}

func putBuf(b *bytes.Buffer) {
	if b.Cap() <= 1<<20 {
		bufPool.Put(b)
	}
}

var reqPool = sync.Pool{New: func() any { return new(cache.Request) }}

// upstreamBody is the body to send upstream: every top-level cache_control removed (unless it
// was another vendor's hint to pass on), and stream_options.include_usage switched on when the
// client streams without it (zest needs the usage to store a complete answer and to settle
// token limits; the usage chunk is not shown to a client that did not ask for it).
// It returns body itself when nothing changes (the caller then keeps body's buffer until the
// upstream is done with it), else a fresh slice, and whether include_usage was forced.
func upstreamBody(body []byte, req *cache.Request, removeCC, forceUsage bool) ([]byte, bool) {
	// Edits are applied from the end of the body backwards, so earlier offsets stay valid.
	type edit struct {
		f       cache.Field
		replace []byte // nil: remove the member
	}
	var edits [4]edit
	es := edits[:0]
	if removeCC {
		for _, f := range req.EarlierCacheControl {
			es = append(es, edit{f: f})
		}
		if req.CacheControl.Present {
			es = append(es, edit{f: req.CacheControl})
		}
	}
	so := req.StreamOptions
	forced := false
	if forceUsage && so.Present {
		var m map[string]json.RawMessage
		if json.Unmarshal(so.Value, &m) == nil { // not an object: the upstream will judge it
			if m == nil {
				m = map[string]json.RawMessage{} // "stream_options": null
			}
			m["include_usage"] = json.RawMessage("true")
			nv, _ := json.Marshal(m)
			es = append(es, edit{f: cache.Field{Present: true, Start: so.End - len(so.Value), End: so.End}, replace: nv})
			forced = true
		}
	}
	slices.SortFunc(es, func(a, b edit) int { return b.f.Start - a.f.Start })
	out := body
	for _, e := range es {
		if e.replace == nil {
			out = cache.Without(out, e.f)
			continue
		}
		n := make([]byte, 0, len(out)+len(e.replace))
		n = append(n, out[:e.f.Start]...)
		n = append(n, e.replace...)
		out = append(n, out[e.f.End:]...)
	}
	if forceUsage && !so.Present {
		forced = true
		i := bytes.IndexByte(out, '{')
		n := make([]byte, 0, len(out)+40)
		n = append(n, out[:i+1]...)
		n = append(n, `"stream_options":{"include_usage":true},`...)
		out = append(n, out[i+1:]...)
	}
	return out, forced
}

// aliases reports whether a and b share their first byte (one is the other, resliced).
func aliases(a, b []byte) bool { return len(a) > 0 && len(b) > 0 && &a[0] == &b[0] }

// wantsUsage reports whether a stream_options value sets include_usage to true.
func wantsUsage(so []byte) bool {
	if len(so) == 0 {
		return false
	}
	var v struct {
		IncludeUsage bool `json:"include_usage"`
	}
	return json.Unmarshal(so, &v) == nil && v.IncludeUsage
}

// jsonString decodes a raw JSON string value ("" when it is not a string).
func jsonString(raw []byte) string {
	if len(raw) < 2 || raw[0] != '"' {
		return ""
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1])
	}
	var s string
	json.Unmarshal(raw, &s)
	return s
}
