package proxy

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"

	"github.com/zest-proxy/zest/cache"
)

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readBody reads the whole request body, at most limit bytes, into a pooled buffer.
// The caller returns the buffer with putBuf when it no longer needs the bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) (*bytes.Buffer, *apiError) {
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		putBuf(buf)
		if isMaxBytes(err) {
			return nil, tooLarge(limit)
		}
		return nil, &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error",
			Message: "Could not read the request body: " + err.Error()}
	}
	return buf, nil
}

func putBuf(b *bytes.Buffer) {
	if b.Cap() <= 1<<20 {
		bufPool.Put(b)
	}
}

var reqPool = sync.Pool{New: func() any { return new(cache.Request) }}

// upstreamBody is the body to send upstream: the top-level cache_control removed (unless it was
// another vendor's hint to pass on), and stream_options.include_usage switched on when the
// client streams without it (zest needs the usage to store a complete answer and to settle
// token limits; the usage chunk is not shown to a client that did not ask for it).
// It returns a fresh slice and whether include_usage was forced.
func upstreamBody(body []byte, req *cache.Request, removeCC, forceUsage bool) ([]byte, bool) {
	out := body
	cc := req.CacheControl
	if !removeCC {
		cc.Present = false
	}
	so := req.StreamOptions
	forced := false
	switch {
	case forceUsage && so.Present:
		// Replace the value of stream_options. Apply the later edit first so the earlier
		// edit's offsets stay valid.
		var m map[string]json.RawMessage
		if json.Unmarshal(so.Value, &m) != nil {
			break // not an object: the upstream will judge it
		}
		if m == nil {
			m = map[string]json.RawMessage{} // "stream_options": null
		}
		m["include_usage"] = json.RawMessage("true")
		nv, _ := json.Marshal(m)
		valStart := so.End - len(so.Value)
		replace := func(b []byte) []byte {
			n := make([]byte, 0, len(b)+len(nv))
			n = append(n, b[:valStart]...)
			n = append(n, nv...)
			return append(n, b[so.End:]...)
		}
		if cc.Present && cc.Start > so.Start {
			out = replace(cache.Without(out, cc))
		} else {
			out = cache.Without(replace(out), cc)
		}
		return out, true
	case forceUsage:
		forced = true
	}
	out = cache.Without(out, cc)
	if forced {
		i := bytes.IndexByte(out, '{')
		n := make([]byte, 0, len(out)+40)
		n = append(n, out[:i+1]...)
		n = append(n, `"stream_options":{"include_usage":true},`...)
		out = append(n, out[i+1:]...)
	}
	if len(out) > 0 && &out[0] == &body[0] {
		out = bytes.Clone(out) // the caller recycles body
	}
	return out, forced
}

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
