package h1

import (
	"bufio"
	"net/http"
	"strings"
)

// readResponseFast reads the response to req from br when its whole head is already buffered
// and it is of the plain kind a JSON answer is; ok false means it consumed nothing and the
// caller must use http.ReadResponse. When ok, the response is what http.ReadResponse would
// have returned for the same bytes (see the test), its body reading from br.
//
// The plain kind: "HTTP/1.1 NNN reason" with a status of 200 or more other than 204 and 304,
// to a request other than HEAD; header lines as readFields takes them; and a Content-Length
// (no chunked framing, no body running to the connection's end).
func readResponseFast(br *bufio.Reader, req *http.Request) (resp *http.Response, ok bool) {
	if req.Method == http.MethodHead {
		return nil, false
	}
	buf, _ := br.Peek(br.Buffered())
	n, lines := headLen(buf)
	if n == 0 {
		return nil, false
	}
	head := string(buf[:n-2])
	line, rest, _ := cutLine(head)
	proto, status, _ := strings.Cut(line, " ")
	if proto != "HTTP/1.1" || len(status) < 3 || len(status) > 3 && status[3] != ' ' {
		return nil, false
	}
	code := 0
	for i := range 3 {
		c := status[i]
		if c < '0' || c > '9' {
			return nil, false
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 || code == http.StatusNoContent || code == http.StatusNotModified {
		return nil, false
	}
	fr := new(fastResp)
	f, ok := readFields(rest, lines, false, fr.vals[:])
	if !ok || !f.hasLength {
		return nil, false
	}
	resp = &fr.resp
	*resp = http.Response{Status: status, StatusCode: code, Proto: proto, ProtoMajor: 1, ProtoMinor: 1,
		Header: f.h, ContentLength: f.length, Body: http.NoBody, Request: req}
	if f.length > 0 {
		fr.body = lengthBody{br: br, n: f.length}
		resp.Body = &fr.body
	}
	br.Discard(n)
	return resp, true
}

// fastResp is what readResponseFast makes of a response, in one allocation where it had
// been three: the response, its body reader and the backing of its header values.
type fastResp struct {
	resp http.Response
	body lengthBody
	vals [fastVals]string
}
