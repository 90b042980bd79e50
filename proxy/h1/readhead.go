package h1

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// maxFastHeaders is the most header lines readRequestFast takes; a longer head falls back.
const maxFastHeaders = 64

// maxFastContentLength is the most digits of a Content-Length readRequestFast takes, few
// enough that any such number fits an int64.
const maxFastContentLength = 18

// readRequestFast reads a request head from br when the whole head is already buffered and is
// of the plain kind it handles; ok false means it consumed nothing and the caller must use
// http.ReadRequest. When ok, the request is what http.ReadRequest would have returned for the
// same bytes (see the test), and br is positioned at the body.
//
// The plain kind: CRLF line endings only; "METHOD /target HTTP/1.1" with a token method other
// than CONNECT and a target url.ParseRequestURI takes; at most maxFastHeaders "Name: value"
// lines with a token name and a valid value; exactly one Host; at most one Content-Length, of
// plain digits; no Connection other than "keep-alive"; and none of Transfer-Encoding, Trailer,
// Pragma, Upgrade, nor an Expect other than "100-continue": the headers net/http's reading or
// serving acts on.
//
// The target, the values and any name sent already canonical are substrings of one copy of
// the head, so a value a handler keeps holds at most the head (no more than br's buffer).
// The request, its URL, its body reader and its first header values live in in (see
// fastReq); on a fall-back in holds nothing the caller needs.
func readRequestFast(br *bufio.Reader, in *fastReq) (req *http.Request, ok bool) {
	buf, _ := br.Peek(br.Buffered())
	n, lines := headLen(buf)
	if n == 0 {
		return nil, false
	}
	head := string(buf[:n-2]) // the request line and the header lines, each ending in CRLF

	line, rest, _ := cutLine(head)
	method, line, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(line, " ")
	if !ok1 || !ok2 || proto != "HTTP/1.1" || !httpguts.ValidHeaderFieldName(method) ||
		method == http.MethodConnect || !strings.HasPrefix(target, "/") {
		return nil, false
	}
	u := &in.url
	*u = url.URL{Path: target} // what url.ParseRequestURI makes of a plain path
	if !plainPath(target) {
		var err error
		if u, err = url.ParseRequestURI(target); err != nil {
			return nil, false
		}
	}

	f, ok := readFields(rest, lines, true, in.vals[:])
	if !ok || !f.hasHost {
		return nil, false
	}
	h, host, length := f.h, f.host, f.length

	req = &in.req
	req.Method = internMethod(method)
	req.URL = u
	req.Proto, req.ProtoMajor, req.ProtoMinor = "HTTP/1.1", 1, 1
	req.Header = h
	req.Host = u.Host
	if req.Host == "" {
		req.Host = host
	}
	req.RequestURI = target
	req.ContentLength = length
	req.Body = http.NoBody
	if length > 0 {
		in.body = lengthBody{br: br, n: length}
		req.Body = &in.body
	}
	br.Discard(n)
	return req, true
}

// fastVals is how many header values a request or response read on a fast path holds without
// an allocation of their own: what an SDK's request (Host, Authorization, Content-Type,
// Content-Length, Accept, User-Agent and a few X-Stainless-* lines) or an upstream's answer
// sends, give or take.
const fastVals = 16

// fastReq is what readRequestFast makes of a request, in one allocation where it had been
// four: the request, its URL, its body reader and the backing of its header values (fastVals
// single values; a longer head has its own). The server keeps it within the exchange of the
// request (see exchange).
type fastReq struct {
	req  http.Request
	url  url.URL
	body lengthBody
	vals [fastVals]string
}

// fields is what readFields makes of the header lines of a head.
type fields struct {
	h         http.Header
	host      string // a request's Host, taken out of h
	hasHost   bool
	length    int64 // Content-Length, 0 when absent
	hasLength bool
}

// readFields parses the header lines of a head (each ending in CRLF; lines of them), as
// textproto.ReadMIMEHeader would, and refuses (ok false) what the fast paths leave to the
// standard library: a line that is not a token name, a colon and a valid value; a second
// Content-Length, or one not of plain digits; a Connection other than "keep-alive"; any of
// Transfer-Encoding, Trailer, Pragma or Upgrade; and in a request a second Host, or an Expect
// other than "100-continue". A request's Host goes to host, not h. The values are kept in
// vals, cut up as textproto does, or in a slice of their own when vals is too short.
func readFields(rest string, lines int, request bool, vals []string) (f fields, ok bool) {
	f.h = make(http.Header, lines)
	strs := vals
	if len(strs) < lines {
		strs = make([]string, lines)
	}
	for rest != "" {
		var line string
		if line, rest, ok = cutLine(rest); !ok {
			return f, false
		}
		name, value, found := strings.Cut(line, ":")
		// A name that is not a token also catches an obs-fold line (leading SP or HTAB) and a
		// space before the colon, which net/http accepts but keeps uncanonicalised.
		if !found || !httpguts.ValidHeaderFieldName(name) {
			return f, false
		}
		value = trimOWS(value) // as textproto trims a value
		if !httpguts.ValidHeaderFieldValue(value) {
			return f, false
		}
		key := canonicalKey(name)
		switch key {
		case "Host":
			if request {
				if f.hasHost {
					return f, false
				}
				f.host, f.hasHost = value, true
				continue // ReadRequest moves it to req.Host
			}
		case "Content-Length":
			if f.hasLength {
				return f, false
			}
			if f.length, ok = parseLength(value); !ok {
				return f, false
			}
			f.hasLength = true
		case "Connection":
			// What the OpenAI SDKs send (httpx, undici); net/http only looks for "close".
			if !strings.EqualFold(value, "keep-alive") {
				return f, false
			}
		case "Transfer-Encoding", "Trailer", "Pragma", "Upgrade":
			return f, false // Pragma: net/http may copy it to Cache-Control
		case "Expect":
			if request && value != "100-continue" {
				return f, false
			}
		}
		if vv := f.h[key]; vv == nil {
			vv, strs = strs[:1:1], strs[1:]
			vv[0] = value
			f.h[key] = vv
		} else {
			f.h[key] = append(vv, value)
		}
	}
	return f, true
}

// cutLine cuts s, lines of a head that headLen measured, after its first line: the line
// without its CRLF, and the rest. Every line of such a head ends in CRLF and holds no other
// LF, so the next LF ends the line; ok is false when s holds no line ending in CRLF.
func cutLine(s string) (line, rest string, ok bool) {
	j := strings.IndexByte(s, '\n')
	if j < 1 || s[j-1] != '\r' {
		return s, "", false
	}
	return s[:j-1], s[j+1:], true
}

// plainPath reports whether target is a path of unreserved characters and slashes, not
// starting with "//": one url.ParseRequestURI takes whole as URL.Path, with no RawPath.
func plainPath(target string) bool {
	if strings.HasPrefix(target, "//") {
		return false
	}
	for i := 0; i < len(target); i++ {
		c := target[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '/' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// headLen returns the length of the request head at the start of buf, its final blank line
// included, and the number of header lines in it. It returns 0 when buf does not hold the
// whole head, when a line ends in a bare LF, when the head starts with a blank line, or when it
// has more than maxFastHeaders header lines.
func headLen(buf []byte) (n, lines int) {
	for i := 0; lines <= maxFastHeaders+1; lines++ { // the request line, then the headers
		j := bytes.IndexByte(buf[i:], '\n')
		if j < 1 || buf[i+j-1] != '\r' {
			return 0, 0
		}
		if j == 1 { // a blank line
			if i == 0 {
				return 0, 0
			}
			return i + 2, lines - 1
		}
		i += j + 1
	}
	return 0, 0
}

// parseLength parses a Content-Length of 1 to maxFastContentLength decimal digits, what
// strconv.ParseUint (which net/http uses) takes without error among values this short.
func parseLength(s string) (int64, bool) {
	if s == "" || len(s) > maxFastContentLength {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// internMethod returns the constant for a common method, so the request does not hold the
// head's copy through it.
func internMethod(m string) string {
	switch m {
	case "GET":
		return http.MethodGet
	case "POST":
		return http.MethodPost
	case "HEAD":
		return http.MethodHead
	case "PUT":
		return http.MethodPut
	case "DELETE":
		return http.MethodDelete
	case "PATCH":
		return http.MethodPatch
	case "OPTIONS":
		return http.MethodOptions
	}
	return m
}

// commonKeys holds the canonical form of common header names, so that one sent in another case
// (as lower-case clients do) costs no allocation.
var commonKeys = func() map[string]string {
	m := make(map[string]string)
	for _, k := range []string{
		"Accept", "Accept-Encoding", "Accept-Language", "Api-Key", "Authorization",
		"Cache-Control", "Content-Length", "Content-Type", "Cookie", "Expect", "Host",
		"Openai-Organization", "Openai-Project", "Origin", "Referer", "Traceparent",
		"Tracestate", "User-Agent", "X-Api-Key", "X-Forwarded-For",
	} {
		m[k] = k
	}
	return m
}()

// canonicalKey returns name, a valid header field name, in textproto.CanonicalMIMEHeaderKey's
// form: upper case at the start and after each '-', lower case elsewhere. It allocates only for
// a name not sent in that form and not in commonKeys.
func canonicalKey(name string) string {
	if isCanonical(name) {
		return name
	}
	var arr [32]byte
	b := arr[:0]
	if len(name) > len(arr) {
		b = make([]byte, 0, len(name))
	}
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
		upper = c == '-'
	}
	if k, ok := commonKeys[string(b)]; ok {
		return k
	}
	return string(b)
}

// isCanonical reports whether name is already in canonicalKey's form.
func isCanonical(name string) bool {
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			return false
		}
		upper = c == '-'
	}
	return true
}

// lengthBody is the body of a request with a Content-Length: it reads n more bytes from br, as
// net/http's body does: the last bytes come with io.EOF, a br that ends first gives
// io.ErrUnexpectedEOF once and io.EOF after. Close does nothing (the server drains the body).
type lengthBody struct {
	br *bufio.Reader
	n  int64 // bytes still to read
}

func (b *lengthBody) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	k, err := b.br.Read(p)
	b.n -= int64(k)
	switch {
	case err == io.EOF:
		if b.n > 0 {
			b.n = 0
			err = io.ErrUnexpectedEOF
		}
	case err == nil && k > 0 && b.n == 0:
		err = io.EOF
	}
	return k, err
}

func (b *lengthBody) Close() error { return nil }

// trimOWS is strings.Trim(s, " \t"), the optional whitespace around a field value, without
// building a cutset per call: a request head has half a dozen fields.
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
