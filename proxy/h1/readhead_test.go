package h1

// Tests of readRequestFast against http.ReadRequest on the same bytes: where the fast path
// answers, every field, the body and the reader's position after it must match; where it does
// not, it must have consumed nothing.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// fastHeads are heads readRequestFast must take.
var fastHeads = []struct{ name, in string }{
	// The OpenAI Python SDK's head.
	{"openai-sdk-post", "POST /v1/chat/completions HTTP/1.1\r\n" +
		"Host: api.openai.com\r\n" +
		"Accept-Encoding: gzip, deflate\r\n" +
		"Accept: application/json\r\n" +
		"Content-Type: application/json\r\n" +
		"User-Agent: OpenAI/Python 1.54.3\r\n" +
		"X-Stainless-Lang: python\r\n" +
		"X-Stainless-Package-Version: 1.54.3\r\n" +
		"Authorization: Bearer sk-test\r\n" +
		"Openai-Organization: org-123\r\n" +
		"Connection: keep-alive\r\n" +
		"Content-Length: 63\r\n" +
		"\r\n" +
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}` + "\n"},
	{"node-sdk-lower-case", "POST /v1/embeddings HTTP/1.1\r\n" +
		"host: localhost:8080\r\n" +
		"accept: application/json\r\n" +
		"content-type: application/json\r\n" +
		"user-agent: OpenAI/JS 4.70.0\r\n" +
		"x-stainless-os: Linux\r\n" +
		"authorization: Bearer sk-test\r\n" +
		"content-length: 13\r\n" +
		"\r\n" +
		`{"input":"a"}`},
	{"get", "GET /v1/models HTTP/1.1\r\nHost: example.com\r\n\r\n"},
	// What the Python (httpx) and Node (undici) SDKs send.
	{"connection-keep-alive", "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n"},
	{"connection-keep-alive-case", "GET / HTTP/1.1\r\nHost: h\r\nconnection: Keep-Alive\r\n\r\n"},
	{"get-mixed-case", "GET / HTTP/1.1\r\nHOST: example.com\r\nCONTENT-type: text/plain\r\nx-API-key: k\r\naccept-ENCODING: br\r\n\r\n"},
	{"spaces-around-values", "GET / HTTP/1.1\r\nHost:example.com \r\nAccept: \t */* \t\r\nX-Empty:\r\nX-Blank:   \r\n\r\n"},
	{"query", "GET /v1/models?limit=10&after=a%20b&x=%2F HTTP/1.1\r\nHost: h\r\n\r\n"},
	{"escaped-path", "DELETE /v1/files/a%2Fb HTTP/1.1\r\nHost: h\r\n\r\n"},
	{"expect-continue", "PUT /up HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello"},
	{"pipelined", "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc" +
		"GET /b HTTP/1.1\r\nHost: h\r\n\r\n"},
	{"pipelined-no-body", "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n"},
	{"content-length-zero", "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"},
	{"content-length-leading-zeros", "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 007\r\n\r\n1234567"},
	{"get-with-body", "GET /a HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nxy"},
	{"repeated-header", "GET / HTTP/1.1\r\nHost: h\r\nAccept: a\r\nX-A: 1\r\naccept: b\r\nX-a: 2\r\n\r\n"},
	{"other-method", "PROPFIND /dav/ HTTP/1.1\r\nHost: h\r\n\r\n"},
	{"odd-names", "GET / HTTP/1.1\r\nHost: h\r\nx_under_score: 1\r\nA-b-C: 2\r\n-x-: 3\r\n~!#$%&'*+.^`|: 4\r\n" +
		"a-very-long-header-name-longer-than-the-stack-buffer: 5\r\n\r\n"},
	{"value-with-colon-and-obs-text", "GET / HTTP/1.1\r\nHost: h:80\r\nX-T: a:b \xe2\x82\xac\r\n\r\n"},
	{"empty-host", "GET / HTTP/1.1\r\nHost:\r\n\r\n"},
	{"double-slash-target", "GET //evil.com/x HTTP/1.1\r\nHost: h\r\n\r\n"},
	{"fragment-in-target", "GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n"},
}

// slowHeads are heads readRequestFast must leave to http.ReadRequest.
var slowHeads = []struct {
	name, in string
	size     int // the bufio.Reader's size; 0 means 4096
}{
	{"transfer-encoding", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 0},
	{"trailer", "POST / HTTP/1.1\r\nHost: h\r\nTrailer: X-T\r\nContent-Length: 1\r\n\r\na", 0},
	{"pragma", "GET / HTTP/1.1\r\nHost: h\r\nPragma: no-cache\r\n\r\n", 0},
	{"connection", "GET / HTTP/1.1\r\nHost: h\r\nconnection: close\r\n\r\n", 0},
	{"connection-keep-alive-and-close", "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, close\r\n\r\n", 0},
	{"upgrade", "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n", 0},
	{"expect-other", "PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\na", 0},
	{"expect-unknown", "PUT / HTTP/1.1\r\nHost: h\r\nExpect: something\r\n\r\n", 0},
	{"two-hosts", "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 0},
	{"no-host", "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 0},
	{"two-content-lengths", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na", 0},
	{"content-length-sign", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\na", 0},
	{"content-length-space", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 2\r\n\r\na", 0},
	{"content-length-empty", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", 0},
	{"content-length-long", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0000000000000000001\r\n\r\na", 0},
	{"content-length-hex", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x1\r\n\r\na", 0},
	{"too-many-headers", "GET / HTTP/1.1\r\nHost: h\r\n" + strings.Repeat("X-A: 1\r\n", maxFastHeaders) + "\r\n", 0},
	{"obs-fold", "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n 2\r\n\r\n", 0},
	{"obs-fold-tab", "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\t2\r\n\r\n", 0},
	{"space-before-colon", "GET / HTTP/1.1\r\nHost: h\r\nX-A : 1\r\n\r\n", 0},
	{"space-in-name", "GET / HTTP/1.1\r\nHost: h\r\nX A: 1\r\n\r\n", 0},
	{"missing-colon", "GET / HTTP/1.1\r\nHost: h\r\nX-A 1\r\n\r\n", 0},
	{"empty-name", "GET / HTTP/1.1\r\nHost: h\r\n: 1\r\n\r\n", 0},
	{"control-in-value", "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\x002\r\n\r\n", 0},
	{"cr-in-value", "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r2\r\n\r\n", 0},
	{"bare-lf-header", "GET / HTTP/1.1\r\nHost: h\nX-A: 1\r\n\r\n", 0},
	{"bare-lf-request-line", "GET / HTTP/1.1\nHost: h\r\n\r\n", 0},
	{"bare-lf-end", "GET / HTTP/1.1\r\nHost: h\r\n\n", 0},
	{"http-1.0", "GET / HTTP/1.0\r\nHost: h\r\n\r\n", 0},
	{"http-2.0", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 0},
	{"lower-case-version", "GET / http/1.1\r\nHost: h\r\n\r\n", 0},
	{"absolute-form", "GET http://example.com/a HTTP/1.1\r\nHost: h\r\n\r\n", 0},
	{"asterisk", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", 0},
	{"connect", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 0},
	{"connect-path", "CONNECT /rpc HTTP/1.1\r\nHost: h\r\n\r\n", 0},
	{"bad-method", "G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 0},
	{"two-spaces", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 0},
	{"bad-target", "GET /a\x7fb HTTP/1.1\r\nHost: h\r\n\r\n", 0},
	{"leading-blank-line", "\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 0},
	{"not-buffered", "GET /a-rather-long-path HTTP/1.1\r\nHost: example.com\r\n\r\n", 16},
	{"no-final-crlf", "GET / HTTP/1.1\r\nHost: h\r\n", 0},
	{"empty", "", 0},
}

// readBodyResult is what reading a request's body to its end gives.
type readBodyResult struct {
	data   []byte
	err    string // "" for a clean io.EOF
	noBody bool   // the body is http.NoBody
}

func readBody(r *http.Request) readBodyResult { return bodyResult(r.Body) }

// bodyResult reads body to its end.
func bodyResult(body io.ReadCloser) readBodyResult {
	b, err := io.ReadAll(body)
	e := ""
	switch {
	case err == nil:
	case errors.Is(err, io.ErrUnexpectedEOF):
		e = "unexpected EOF"
	default:
		e = "other: " + err.Error()
	}
	return readBodyResult{b, e, body == http.NoBody}
}

// diffRequests describes how got differs from want in what http.ReadRequest sets, the body
// (read to its end) and what is left in the readers after it; "" when they match.
func diffRequests(got, want *http.Request, gotBr, wantBr *bufio.Reader) string {
	var d []string
	check := func(name string, g, w any) {
		if !reflect.DeepEqual(g, w) {
			d = append(d, fmt.Sprintf("%s: got %#v, want %#v", name, g, w))
		}
	}
	check("Method", got.Method, want.Method)
	check("URL", got.URL.String(), want.URL.String())
	check("URL.RawPath", got.URL.RawPath, want.URL.RawPath)
	check("*URL", *got.URL, *want.URL)
	check("Proto", got.Proto, want.Proto)
	check("ProtoMajor", got.ProtoMajor, want.ProtoMajor)
	check("ProtoMinor", got.ProtoMinor, want.ProtoMinor)
	check("Header", got.Header, want.Header)
	check("Host", got.Host, want.Host)
	check("RequestURI", got.RequestURI, want.RequestURI)
	check("ContentLength", got.ContentLength, want.ContentLength)
	check("Close", got.Close, want.Close)
	check("TransferEncoding", got.TransferEncoding, want.TransferEncoding)
	check("Trailer", got.Trailer, want.Trailer)
	check("Form", got.Form, want.Form)
	check("Context", got.Context(), want.Context())
	check("body", readBody(got), readBody(want))
	gotRest, gotErr := io.ReadAll(gotBr)
	wantRest, wantErr := io.ReadAll(wantBr)
	check("rest", string(gotRest), string(wantRest))
	check("rest error", gotErr, wantErr)
	return strings.Join(d, "\n")
}

// filled returns a reader of the given size over in with as much of in buffered as fits, as
// the server's reader is once a request's first bytes have arrived.
func filled(in string, size int) *bufio.Reader {
	if size == 0 {
		size = 4096
	}
	br := bufio.NewReaderSize(strings.NewReader(in), size)
	br.Peek(1)
	return br
}

// againstStd reads in with fast from br (a reader over in, its first bytes buffered) and with
// the standard library's std from a fresh reader over in. Falling back, fast must have consumed
// nothing; answering, std must accept the same bytes and diff must find no difference. It
// reports whether fast answered, and the problem found ("" for none).
func againstStd[T any](in []byte, br *bufio.Reader, fast func(*bufio.Reader) (T, bool),
	std func(*bufio.Reader) (T, error), diff func(got, want T, gotBr, wantBr *bufio.Reader) string) (answered bool, problem string) {
	got, ok := fast(br)
	if !ok {
		if rest, _ := io.ReadAll(br); !bytes.Equal(rest, in) {
			return false, fmt.Sprintf("fell back having consumed %d bytes", len(in)-len(rest))
		}
		return false, ""
	}
	wantBr := bufio.NewReader(bytes.NewReader(in))
	want, err := std(wantBr)
	if err != nil {
		return true, fmt.Sprintf("took %q, the standard library fails: %v", in, err)
	}
	if d := diff(got, want, br, wantBr); d != "" {
		return true, fmt.Sprintf("differs from the standard library on %q:\n%s", in, d)
	}
	return true, ""
}

func TestReadRequestFast(t *testing.T) {
	for _, tc := range fastHeads {
		t.Run(tc.name, func(t *testing.T) {
			answered, problem := againstStd([]byte(tc.in), filled(tc.in, 0), fastRequest, http.ReadRequest, diffRequests)
			if !answered {
				t.Fatalf("readRequestFast fell back on %q %s", tc.in, problem)
			}
			if problem != "" {
				t.Errorf("readRequestFast %s", problem)
			}
		})
	}
}

func TestReadRequestFastFallsBack(t *testing.T) {
	for _, tc := range slowHeads {
		t.Run(tc.name, func(t *testing.T) {
			br := filled(tc.in, tc.size)
			before := br.Buffered()
			if _, ok := readRequestFast(br, new(fastReq)); ok {
				t.Fatalf("readRequestFast took %q", tc.in)
			}
			if br.Buffered() != before {
				t.Fatalf("readRequestFast consumed %d bytes", before-br.Buffered())
			}
			// What follows sees the same bytes as a fresh reader.
			wantBr := bufio.NewReader(strings.NewReader(tc.in))
			got, gotErr := http.ReadRequest(br)
			want, wantErr := http.ReadRequest(wantBr)
			if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
				t.Fatalf("http.ReadRequest after the fallback: error %v, want %v", gotErr, wantErr)
			}
			if wantErr == nil {
				if d := diffRequests(got, want, br, wantBr); d != "" {
					t.Errorf("http.ReadRequest after the fallback differs:\n%s", d)
				}
			}
		})
	}
}

// TestReadRequestFastCounts pins the header-count limit at its edge, which the fall-back table
// only passes.
func TestReadRequestFastCounts(t *testing.T) {
	in := "GET / HTTP/1.1\r\nHost: h\r\n" + strings.Repeat("X-A: 1\r\n", maxFastHeaders-1) + "\r\n"
	req, ok := readRequestFast(filled(in, 8192), new(fastReq))
	if !ok {
		t.Fatalf("readRequestFast fell back on %d header lines", maxFastHeaders)
	}
	if n := len(req.Header["X-A"]); n != maxFastHeaders-1 {
		t.Fatalf("got %d X-A values, want %d", n, maxFastHeaders-1)
	}
}

func TestReadRequestFastShortBody(t *testing.T) {
	in := "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabcd"
	req, ok := readRequestFast(filled(in, 0), new(fastReq))
	if !ok {
		t.Fatal("readRequestFast fell back")
	}
	want, err := http.ReadRequest(bufio.NewReader(strings.NewReader(in)))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*http.Request{req, want} {
		b, err := io.ReadAll(r.Body)
		if string(b) != "abcd" || err != io.ErrUnexpectedEOF {
			t.Errorf("%T: read %q, %v; want \"abcd\", io.ErrUnexpectedEOF", r.Body, b, err)
		}
		if n, err := r.Body.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Errorf("%T: read after the error: %d, %v; want 0, io.EOF", r.Body, n, err)
		}
	}
}

// chunkReader returns its data at most n bytes a Read (all of it when n is 0).
type chunkReader struct {
	data []byte
	n    int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	if r.n > 0 && len(p) > r.n {
		p = p[:r.n]
	}
	k := copy(p, r.data)
	r.data = r.data[k:]
	return k, nil
}

// fastRequest reads a request with readRequestFast into a new fastReq, as the server does.
func fastRequest(br *bufio.Reader) (*http.Request, bool) { return readRequestFast(br, new(fastReq)) }

// FuzzReadRequestFast checks readRequestFast against http.ReadRequest on arbitrary bytes,
// delivered chunk bytes a read: when it answers, http.ReadRequest must accept the same bytes
// and agree on every field, the body and what follows it; when it falls back, it must have
// consumed nothing.
func FuzzReadRequestFast(f *testing.F) {
	for _, tc := range fastHeads {
		f.Add([]byte(tc.in), uint16(0))
		f.Add([]byte(tc.in), uint16(len(tc.in)/2))
	}
	for _, tc := range slowHeads {
		f.Add([]byte(tc.in), uint16(tc.size))
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk uint16) {
		br := bufio.NewReaderSize(&chunkReader{in, int(chunk)}, 4096)
		br.Peek(1)
		if _, problem := againstStd(in, br, fastRequest, http.ReadRequest, diffRequests); problem != "" {
			t.Fatalf("readRequestFast %s", problem)
		}
	})
}

// benchHead is a typical request head: an SDK's POST with six headers.
const benchHead = "POST /v1/chat/completions HTTP/1.1\r\n" +
	"Host: api.example.com\r\n" +
	"Content-Type: application/json\r\n" +
	"Authorization: Bearer sk-0123456789abcdef0123456789abcdef\r\n" +
	"User-Agent: OpenAI/Python 1.54.3\r\n" +
	"Accept: application/json\r\n" +
	"Content-Length: 2\r\n" +
	"\r\n{}"

func BenchmarkReadRequestHead(b *testing.B) {
	run := func(b *testing.B, read func(*bufio.Reader) (*http.Request, bool)) {
		rd := strings.NewReader(benchHead)
		br := bufio.NewReaderSize(rd, 4096)
		b.ReportAllocs()
		for b.Loop() {
			rd.Reset(benchHead)
			br.Reset(rd)
			br.Peek(1)
			if req, ok := read(br); !ok || req.ContentLength != 2 {
				b.Fatal("not read")
			}
		}
	}
	b.Run("net-http", func(b *testing.B) {
		run(b, func(br *bufio.Reader) (*http.Request, bool) {
			req, err := http.ReadRequest(br)
			return req, err == nil
		})
	})
	b.Run("fast", func(b *testing.B) { run(b, fastRequest) })
}
