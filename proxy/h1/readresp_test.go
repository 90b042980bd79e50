package h1

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// fastResponses are response heads readResponseFast must take (to a POST).
var fastResponses = []struct{ name, in string }{
	{"json", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Sun, 06 Dec 2026 20:00:00 GMT\r\n" +
		"Content-Length: 11\r\nX-Request-Id: r1\r\nOpenai-Processing-Ms: 12\r\n\r\n{\"id\":\"c\"}\n"},
	{"error", "HTTP/1.1 429 Too Many Requests\r\nContent-Length: 2\r\nRetry-After: 1\r\nretry-after-ms: 900\r\n\r\n{}"},
	{"no-reason", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"},
	{"empty-reason", "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n"},
	{"odd-code", "HTTP/1.1 299 Whatever it is\r\nContent-Length: 1\r\n\r\nx"},
	{"keep-alive", "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 1\r\n\r\nx"},
	{"lower-case", "HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-type: text/plain\r\nset-cookie: a=1\r\nset-cookie: b=2\r\n\r\nabc"},
	{"host-expect", "HTTP/1.1 200 OK\r\nHost: h\r\nExpect: x\r\nContent-Length: 1\r\n\r\nx"},
	{"followed", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
	{"spaces", "HTTP/1.1 200 OK\r\nContent-Length:   4 \r\nX-A:\t v \r\n\r\nabcd"},
}

// slowResponses are response heads readResponseFast must leave to http.ReadResponse.
var slowResponses = []struct {
	name, in string
	method   string // "" means POST
}{
	{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", ""},
	{"sse-to-close", "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: x\n\n", ""},
	{"close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", ""},
	{"continue", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", ""},
	{"early-hints", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", ""},
	{"no-content", "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", ""},
	{"not-modified", "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", ""},
	{"head", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "HEAD"},
	{"http-1.0", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", ""},
	{"two-lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", ""},
	{"signed-length", "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx", ""},
	{"pragma", "HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 1\r\n\r\nx", ""},
	{"trailer", "HTTP/1.1 200 OK\r\nTrailer: X\r\nContent-Length: 1\r\n\r\nx", ""},
	{"short-code", "HTTP/1.1 20 OK\r\nContent-Length: 1\r\n\r\nx", ""},
	{"signed-code", "HTTP/1.1 +20 OK\r\nContent-Length: 1\r\n\r\nx", ""},
	{"code-run-on", "HTTP/1.1 2000 OK\r\nContent-Length: 1\r\n\r\nx", ""},
	{"space-before-code", "HTTP/1.1  200 OK\r\nContent-Length: 1\r\n\r\nx", ""},
	{"obs-fold", "HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 1\r\n\r\nx", ""},
	{"bare-lf", "HTTP/1.1 200 OK\nContent-Length: 1\n\nx", ""},
	{"partial", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n", ""},
}

// diffResponses describes how got differs from want in what http.ReadResponse sets, the body
// and what is left in the readers; "" when they match.
func diffResponses(got, want *http.Response, gotBr, wantBr *bufio.Reader) string {
	var d []string
	check := func(name string, g, w any) {
		if !reflect.DeepEqual(g, w) {
			d = append(d, fmt.Sprintf("%s: got %#v, want %#v", name, g, w))
		}
	}
	check("Status", got.Status, want.Status)
	check("StatusCode", got.StatusCode, want.StatusCode)
	check("Proto", got.Proto, want.Proto)
	check("ProtoMajor", got.ProtoMajor, want.ProtoMajor)
	check("ProtoMinor", got.ProtoMinor, want.ProtoMinor)
	check("Header", got.Header, want.Header)
	check("ContentLength", got.ContentLength, want.ContentLength)
	check("Close", got.Close, want.Close)
	check("TransferEncoding", got.TransferEncoding, want.TransferEncoding)
	check("Trailer", got.Trailer, want.Trailer)
	check("Uncompressed", got.Uncompressed, want.Uncompressed)
	check("Request", got.Request == nil, want.Request == nil)
	check("body", bodyResult(got.Body), bodyResult(want.Body))
	gotRest, _ := io.ReadAll(gotBr)
	wantRest, _ := io.ReadAll(wantBr)
	check("rest", string(gotRest), string(wantRest))
	return strings.Join(d, "\n")
}

func respTo(method string) *http.Request {
	if method == "" {
		method = http.MethodPost
	}
	req, _ := http.NewRequest(method, "http://up.test/v1/chat/completions", nil)
	return req
}

// fastResponse and stdResponse read the response to a POST, by hand and with net/http.
func fastResponse(br *bufio.Reader) (*http.Response, bool) { return readResponseFast(br, respTo("")) }
func stdResponse(br *bufio.Reader) (*http.Response, error) { return http.ReadResponse(br, respTo("")) }

func TestReadResponseFast(t *testing.T) {
	for _, tc := range fastResponses {
		t.Run(tc.name, func(t *testing.T) {
			answered, problem := againstStd([]byte(tc.in), filled(tc.in, 0), fastResponse, stdResponse, diffResponses)
			if !answered {
				t.Fatalf("readResponseFast fell back on %q %s", tc.in, problem)
			}
			if problem != "" {
				t.Errorf("readResponseFast %s", problem)
			}
		})
	}
}

func TestReadResponseFastFallsBack(t *testing.T) {
	for _, tc := range slowResponses {
		br := filled(tc.in, 0)
		before := br.Buffered()
		if _, ok := readResponseFast(br, respTo(tc.method)); ok {
			t.Errorf("%s: readResponseFast took %q", tc.name, tc.in)
		} else if br.Buffered() != before {
			t.Errorf("%s: fell back having consumed %d bytes", tc.name, before-br.Buffered())
		}
	}
}

// FuzzReadResponseFast checks readResponseFast against http.ReadResponse on arbitrary bytes:
// when it answers, http.ReadResponse must accept the same bytes and agree on every field, the
// body and what follows; when it falls back, it must have consumed nothing.
func FuzzReadResponseFast(f *testing.F) {
	for _, tc := range fastResponses {
		f.Add([]byte(tc.in), uint16(0))
	}
	for _, tc := range slowResponses {
		f.Add([]byte(tc.in), uint16(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk uint16) {
		br := bufio.NewReaderSize(&chunkReader{in, int(chunk)}, 4096)
		br.Peek(1)
		if _, problem := againstStd(in, br, fastResponse, stdResponse, diffResponses); problem != "" {
			t.Fatalf("readResponseFast %s", problem)
		}
	})
}

func BenchmarkReadResponseHead(b *testing.B) {
	const head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Sun, 06 Dec 2026 20:00:00 GMT\r\nContent-Length: 2\r\n\r\n{}"
	req := respTo("")
	for _, tc := range []struct {
		name string
		read func(*bufio.Reader) (*http.Response, bool)
	}{
		{"net-http", func(br *bufio.Reader) (*http.Response, bool) {
			resp, err := http.ReadResponse(br, req)
			return resp, err == nil
		}},
		{"fast", func(br *bufio.Reader) (*http.Response, bool) { return readResponseFast(br, req) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			rd := strings.NewReader(head)
			br := bufio.NewReaderSize(rd, 4096)
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(head)
				br.Reset(rd)
				br.Peek(1)
				if resp, ok := tc.read(br); !ok || resp.ContentLength != 2 {
					b.Fatal("not read")
				}
			}
		})
	}
}
