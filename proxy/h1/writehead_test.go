package h1

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
)

// newOutReq builds a request the way the proxy does: a URL already parsed, a body in memory.
func newOutReq(t testing.TB, method, url, body string, hdr http.Header) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, vv := range hdr {
		req.Header[k] = vv
	}
	return req
}

// wireOf returns what Request.Write and writeRequest write for requests made by mk.
func wireOf(t testing.TB, mk func() *http.Request) (std, ours string, stdErr, ourErr error) {
	var a, b bytes.Buffer
	stdErr = mk().Write(&a)
	bw := bufio.NewWriter(&b)
	ourErr = writeRequest(bw, mk())
	bw.Flush()
	return a.String(), b.String(), stdErr, ourErr
}

// TestWriteRequestMatchesRequestWrite: the hand-written head is byte for byte Request.Write's.
func TestWriteRequestMatchesRequestWrite(t *testing.T) {
	json := `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
	tests := []struct {
		name         string
		method, url  string
		body         string
		hdr          http.Header
		wantFastPath bool
	}{
		{"chat POST", "POST", "http://up.test:8000/v1/chat/completions", json, http.Header{
			"Content-Type": {"application/json"}, "Authorization": {"Bearer sk-1"}, "X-Forwarded-For": {"10.0.0.1"},
			"Accept": {"application/json"}, "X-Stainless-Lang": {"js"}}, true},
		{"GET without body", "GET", "http://up.test/v1/models?limit=2", "", http.Header{"Accept": {"*/*"}}, true},
		{"POST without body", "POST", "http://up.test/v1/x", "", nil, true},
		{"DELETE without body", "DELETE", "http://up.test/v1/files/f1", "", nil, true},
		{"escaped path", "GET", "http://up.test/v1/files/a%2Fb", "", nil, true},
		{"empty user agent", "GET", "http://up.test/", "", http.Header{"User-Agent": {""}}, true},
		{"own user agent", "POST", "http://up.test/", "x", http.Header{"User-Agent": {" OpenAI/Python 1.0 ", "second"}}, true},
		{"values trimmed, repeated", "GET", "http://up.test/", "", http.Header{"X-A": {"  one\t", "two"}, "X-B": {""}}, true},
		{"excluded headers", "POST", "http://up.test/", "abc", http.Header{"Host": {"other"}, "Content-Length": {"99"},
			"Trailer": {"X"}, "Transfer-Encoding": {"gzip"}}, true},
		{"line break in a value", "GET", "http://up.test/", "", http.Header{"X-A": {"a\r\nb"}}, false},
		{"non-ASCII host", "GET", "http://bücher.test/", "", nil, false},
		{"zone in host", "GET", "http://[fe80::1%25en0]:8080/", "", nil, false},
		{"invalid header name", "GET", "http://up.test/", "", http.Header{"Bad Name": {"v"}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mk := func() *http.Request { return newOutReq(t, tc.method, tc.url, tc.body, tc.hdr) }
			if _, _, got := plainRequest(mk()); got != tc.wantFastPath {
				t.Errorf("plainRequest = %v, want %v", got, tc.wantFastPath)
			}
			std, ours, stdErr, ourErr := wireOf(t, mk)
			if (stdErr == nil) != (ourErr == nil) || std != ours {
				t.Fatalf("Request.Write (err %v):\n%q\nwriteRequest (err %v):\n%q", stdErr, std, ourErr, ours)
			}
		})
	}
}

// TestWriteRequestFallsBack: what the fast path does not handle goes through Request.Write
// and comes out the same: a body of unknown length, Close, a client trace.
func TestWriteRequestFallsBack(t *testing.T) {
	cases := map[string]func() *http.Request{
		"unknown length": func() *http.Request {
			r := newOutReq(t, "POST", "http://up.test/", "", nil)
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader("streamed")), 0
			return r
		},
		"close": func() *http.Request {
			r := newOutReq(t, "GET", "http://up.test/", "", nil)
			r.Close = true
			return r
		},
		"trace": func() *http.Request {
			r := newOutReq(t, "GET", "http://up.test/", "", nil)
			return r.WithContext(httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{}))
		},
	}
	for name, mk := range cases {
		if _, _, ok := plainRequest(mk()); ok {
			t.Errorf("%s: took the fast path", name)
		}
		if std, ours, _, _ := wireOf(t, mk); std != ours {
			t.Errorf("%s: got %q, want %q", name, ours, std)
		}
	}
}

// TestWriteRequestOddRequests: requests zest never sends, still written as Request.Write
// writes them (or refused as it refuses them): a control character in the target, a length
// with no body.
func TestWriteRequestOddRequests(t *testing.T) {
	cases := map[string]func() *http.Request{
		"control character in the query": func() *http.Request {
			r := newOutReq(t, "GET", "http://up.test/v1/models", "", nil)
			r.URL.RawQuery = "a=1 HTTP/1.1\r\nX-Injected: 1\r\n\r\nGET /smuggled"
			return r
		},
		"length with NoBody": func() *http.Request {
			r := newOutReq(t, "POST", "http://up.test/", "", nil)
			r.Body, r.ContentLength = http.NoBody, 5
			r.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
			return r
		},
	}
	for name, mk := range cases {
		std, ours, stdErr, ourErr := wireOf(t, mk)
		if (stdErr == nil) != (ourErr == nil) || std != ours {
			t.Errorf("%s: Request.Write (err %v): %q\nwriteRequest (err %v): %q", name, stdErr, std, ourErr, ours)
		}
	}
}

// TestWriteRequestBodyLength: a body shorter or longer than ContentLength is an error, as
// with Request.Write, and the body is closed either way; one of exactly that length is sent
// whole. Both for a body that is only a reader and for one that tells its length and writes
// itself (a bytes.Reader: written without a copy through io.CopyN).
func TestWriteRequestBodyLength(t *testing.T) {
	for _, sized := range []bool{false, true} {
		for _, n := range []int64{3, 5, 10} {
			req := newOutReq(t, "POST", "http://up.test/", "12345", nil)
			req.ContentLength = n
			var cb interface {
				io.ReadCloser
				closedYet() bool
			} = &closeRecorder{Reader: strings.NewReader("12345")}
			if sized {
				cb = &sizedCloseRecorder{Reader: bytes.NewReader([]byte("12345"))}
			}
			req.Body = cb
			var out bytes.Buffer
			bw := bufio.NewWriter(&out)
			err := writeRequest(bw, req)
			bw.Flush()
			switch {
			case n != 5 && err == nil:
				t.Errorf("sized %v: ContentLength %d with a 5-byte body: no error", sized, n)
			case n == 5 && (err != nil || !strings.HasSuffix(out.String(), "\r\n\r\n12345")):
				t.Errorf("sized %v: ContentLength 5 with a 5-byte body: %v, wrote %q", sized, err, out.String())
			}
			if !cb.closedYet() {
				t.Errorf("sized %v: ContentLength %d: body not closed", sized, n)
			}
		}
	}
}

type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error    { c.closed = true; return nil }
func (c *closeRecorder) closedYet() bool { return c.closed }

type sizedCloseRecorder struct {
	*bytes.Reader
	closed bool
}

func (c *sizedCloseRecorder) Close() error    { c.closed = true; return nil }
func (c *sizedCloseRecorder) closedYet() bool { return c.closed }

// FuzzWriteRequest: for any method, path, header and body, the fast path writes what
// Request.Write writes (or both fail).
func FuzzWriteRequest(f *testing.F) {
	f.Add("POST", "/v1/chat/completions", "Content-Type", "application/json", `{"a":1}`)
	f.Add("GET", "/v1/models?x=1", "User-Agent", "", "")
	f.Add("PATCH", "/a%2Fb", "X-Y", " v ", "body")
	f.Fuzz(func(t *testing.T, method, path, key, value, body string) {
		u := "http://up.test:9/" + strings.TrimPrefix(path, "/")
		if _, err := http.NewRequest(method, u, nil); err != nil {
			return
		}
		mk := func() *http.Request { return newOutReq(t, method, u, body, http.Header{key: {value}}) }
		std, ours, stdErr, ourErr := wireOf(t, mk)
		if (stdErr == nil) != (ourErr == nil) || (stdErr == nil && std != ours) {
			t.Fatalf("Request.Write (err %v):\n%q\nwriteRequest (err %v):\n%q", stdErr, std, ourErr, ours)
		}
	})
}

func BenchmarkWriteRequest(b *testing.B) {
	body := strings.Repeat("x", 319)
	hdr := http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer sk-1"},
		"X-Forwarded-For": {"127.0.0.1"}, "X-Forwarded-Host": {"127.0.0.1:8080"}, "X-Forwarded-Proto": {"http"}, "Accept-Encoding": {"gzip"}}
	for _, tc := range []struct {
		name  string
		write func(*bufio.Writer, *http.Request) error
	}{{"net-http", func(w *bufio.Writer, r *http.Request) error { return r.Write(w) }}, {"h1", writeRequest}} {
		b.Run(tc.name, func(b *testing.B) {
			bw := bufio.NewWriterSize(io.Discard, 4<<10)
			req := newOutReq(b, "POST", "http://127.0.0.1:9999/v1/chat/completions", body, hdr)
			rd := strings.NewReader(body)
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(body)
				req.Body = io.NopCloser(rd)
				if err := tc.write(bw, req); err != nil {
					b.Fatal(err)
				}
				bw.Flush()
			}
		})
	}
}
