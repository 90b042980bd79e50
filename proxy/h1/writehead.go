package h1

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// writeRequest writes req to w as Request.Write does, by hand for the plain request a proxy
// sends (a known length, no trailers, a valid ASCII host, header values on one line, no client
// trace), and through Request.Write for anything else. The bytes are Request.Write's: request
// line, Host, User-Agent (Go's default when the header is absent, none when it is empty),
// Content-Length where Request.Write sends one, the other headers sorted by name with their
// values trimmed, and the body, which must hold exactly ContentLength bytes. The body is closed.
func writeRequest(bw *bufio.Writer, req *http.Request) error {
	ruri, host, ok := plainRequest(req)
	if !ok {
		return req.Write(bw)
	}
	if req.Body != nil {
		defer req.Body.Close()
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	bw.WriteString(method)
	bw.WriteByte(' ')
	bw.WriteString(ruri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	ua := defaultUserAgent
	if vv, ok := req.Header["User-Agent"]; ok {
		ua = ""
		if len(vv) > 0 {
			ua = trimOWS(vv[0])
		}
	}
	if ua != "" {
		writeField(bw, "User-Agent", ua)
	}
	if req.ContentLength > 0 || method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
		var nb [20]byte
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(nb[:0], req.ContentLength, 10))
		bw.WriteString("\r\n")
	}
	var hb [maxPlainHeaders]field
	hdrs := hb[:0]
	for k, vv := range req.Header {
		if !excludedHeader(k) {
			hdrs = append(hdrs, field{k, vv})
		}
	}
	sortFields(hdrs)
	for _, f := range hdrs {
		for _, v := range f.vv {
			writeField(bw, f.k, trimOWS(v))
		}
	}
	if _, err := bw.WriteString("\r\n"); err != nil {
		return err
	}
	if req.ContentLength == 0 {
		return nil
	}
	if b, ok := req.Body.(lenWriterTo); ok && int64(b.Len()) == req.ContentLength {
		// Bytes in memory, exactly as many as stated (a bytes.Reader, say): written as they are.
		_, err := b.WriteTo(bw)
		return err
	}
	n, err := io.CopyN(bw, req.Body, req.ContentLength)
	if err == io.EOF {
		return fmt.Errorf("http: ContentLength=%d with Body length %d", req.ContentLength, n)
	}
	if err != nil {
		return err
	}
	var one [1]byte
	if extra, _ := io.ReadFull(req.Body, one[:]); extra > 0 {
		return fmt.Errorf("http: ContentLength=%d with Body longer", req.ContentLength)
	}
	return nil
}

func writeField(bw *bufio.Writer, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(v)
	bw.WriteString("\r\n")
}

// maxPlainHeaders bounds the header names of a request writeRequest writes by hand.
const maxPlainHeaders = 32

const defaultUserAgent = "Go-http-client/1.1"

// excludedHeader reports the headers Request.Write writes itself or never sends from Header.
func excludedHeader(k string) bool {
	switch k {
	case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
		return true
	}
	return false
}

// plainRequest reports whether writeRequest may write req by hand (see writeRequest), and
// returns the request target and the host it then writes.
func plainRequest(req *http.Request) (ruri, host string, ok bool) {
	if req.Close || len(req.TransferEncoding) > 0 || len(req.Trailer) > 0 || req.URL.Opaque != "" ||
		req.Method == http.MethodConnect || len(req.Header) > maxPlainHeaders {
		return "", "", false
	}
	switch {
	case req.ContentLength < 0:
		return "", "", false
	case req.ContentLength == 0:
		if req.Body != nil && req.Body != http.NoBody {
			return "", "", false // a body of unknown length: Request.Write sends it chunked
		}
	case req.Body == nil || req.Body == http.NoBody || req.GetBody == nil:
		return "", "", false // a body not known to be in memory: Request.Write's framing and flushing
	}
	if ruri = req.URL.RequestURI(); hasCTL(ruri) {
		return "", "", false // Request.Write refuses it
	}
	if host = req.Host; host == "" {
		host = req.URL.Host
	}
	if host == "" || !asciiPrintable(host) || strings.Contains(host, "%") || !httpguts.ValidHostHeader(host) {
		return "", "", false
	}
	if httptrace.ContextClientTrace(req.Context()) != nil {
		return "", "", false
	}
	for k, vv := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return "", "", false
		}
		for _, v := range vv {
			if strings.ContainsAny(v, "\r\n") {
				return "", "", false // Request.Write turns line breaks into spaces
			}
		}
	}
	return ruri, host, true
}

// hasCTL reports whether s holds an ASCII control character (or DEL).
func hasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// asciiPrintable reports whether s is all printable ASCII, space excluded.
func asciiPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// lenWriterTo is a body that knows how many bytes it has left and writes them itself.
type lenWriterTo interface {
	Len() int
	io.WriterTo
}
