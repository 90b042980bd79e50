package proxy

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestPassThrough: paths other than chat completions go upstream unchanged, both ways.
func TestPassThrough(t *testing.T) {
	tests := []struct {
		name, method, path, body string
		status                   int
		answer                   string
	}{
		{"models", http.MethodGet, "/v1/models?limit=2&after=gpt-4%2Fo", "", 200,
			`{"object":"list","data":[{"id":"gpt-4o-mini","object":"model"}]}`},
		{"embeddings", http.MethodPost, "/v1/embeddings?api-version=2024-10-21", `{"model":"text-embedding-3-small", "input":["a","b"]}`, 200,
			`{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,-0.2]}]}`},
		{"upstream 429 error body", http.MethodPost, "/v1/embeddings", `{"model":"x","input":"y"}`, 429,
			`{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`},
		{"upstream 404 with odd bytes", http.MethodGet, "/v1/files/file-abc/content", "", 404,
			"not json at all \x00\xff\n"},
		{"chat GET is not chat", http.MethodGet, "/v1/chat/completions?limit=1", "", 200, `{"object":"list","data":[]}`},
		{"responses API", http.MethodPost, "/v1/responses", `{"model":"gpt-4o-mini","input":"hi"}`, 500,
			`{"error":{"message":"boom","type":"server_error"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json; charset=utf-8")
				w.Header().Set("X-Request-Id", "req_123")
				w.Header().Set("Retry-After", "7")
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.answer)
			})
			e := newEnv(t, up, nil)
			r := e.do(tc.method, tc.path, tc.body, withHeader("X-Custom", "v1"), withHeader("OpenAI-Organization", "org-1"))
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.status != tc.status || string(r.body) != tc.answer {
				t.Errorf("client got %d %q, want %d %q", r.status, r.body, tc.status, tc.answer)
			}
			for k, v := range map[string]string{"X-Request-Id": "req_123", "Retry-After": "7", "Content-Type": "application/json; charset=utf-8"} {
				if got := r.header.Get(k); got != v {
					t.Errorf("response header %s = %q, want %q", k, got, v)
				}
			}
			wantCalls(t, up, 1)
			c := up.last()
			wantPath, wantQuery, _ := strings.Cut(tc.path, "?")
			if c.Method != tc.method || c.Path != wantPath || c.RawQuery != wantQuery {
				t.Errorf("upstream got %s %s?%s, want %s %s?%s", c.Method, c.Path, c.RawQuery, tc.method, wantPath, wantQuery)
			}
			if string(c.Body) != tc.body {
				t.Errorf("upstream body %q, want %q", c.Body, tc.body)
			}
			for k, v := range map[string]string{"X-Custom": "v1", "Openai-Organization": "org-1", "Authorization": "Bearer sk-client-one"} {
				if got := c.Header.Get(k); got != v {
					t.Errorf("upstream header %s = %q, want %q", k, got, v)
				}
			}
			// Never cached: the same call goes upstream again.
			e.do(tc.method, tc.path, tc.body)
			wantCalls(t, up, 2)
		})
	}
}

// TestUpstreamBasePath: an upstream base with a deeper path serves /v1/X from base/X.
func TestUpstreamBasePath(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	e := newEnv(t, up, func(o *Options) { o.Upstream = up.srv.URL + "/openai/v1/" })
	e.chat(chatBody(""))
	e.do(http.MethodGet, "/v1/models", "")
	if p := up.calls[0].Path; p != "/openai/v1/chat/completions" {
		t.Errorf("chat went to %s", p)
	}
	if p := up.calls[1].Path; p != "/openai/v1/models" {
		t.Errorf("models went to %s", p)
	}
}

// TestChatUpstreamErrorsPassThrough: upstream errors and malformed 200s reach the client as
// they came and are never stored.
func TestChatUpstreamErrorsPassThrough(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
	}{
		{"400", 400, `{"error":{"message":"Unrecognized request argument supplied: foo","type":"invalid_request_error","param":null,"code":null}}`},
		{"429", 429, `{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`},
		{"500", 500, `{"error":{"message":"The server had an error","type":"server_error"}}`},
		{"503 html", 503, "<html>Service Unavailable</html>"},
		{"201 completion", 201, completionJSON},
		{"200 not json", 200, "oops"},
		{"200 without choices", 200, `{"object":"chat.completion","id":"x"}`},
		{"200 truncated", 200, completionJSON[:len(completionJSON)-20]},
		{"200 empty", 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, jsonAnswer(tc.status, tc.body))
			e := newEnv(t, up, nil)
			for i := 1; i <= 2; i++ {
				r := e.chat(chatBody(""))
				wantStatus(t, r, tc.status, "MISS")
				if string(r.body) != tc.body {
					t.Errorf("client body %q, want %q", r.body, tc.body)
				}
				if r.header.Get("X-Upstream") != "yes" {
					t.Error("upstream headers lost")
				}
				wantCalls(t, up, i)
			}
			// A stream client of the same answer gets it as it came too.
			r := e.chat(chatBody(`"stream":true`))
			wantStatus(t, r, tc.status, "MISS")
			if string(r.body) != tc.body {
				t.Errorf("stream client body %q, want %q", r.body, tc.body)
			}
			wantCalls(t, up, 3)
		})
	}
}

// TestMalformedChatForwarded: a chat body that is not JSON is the upstream's to judge; it is
// forwarded byte for byte, marked BYPASS and never cached.
func TestMalformedChatForwarded(t *testing.T) {
	for _, body := range []string{
		`{"model": "gpt-4o-mini", "messages": [`,
		`not json`,
		`[{"model":"gpt-4o-mini"}]`,
		`{"model":"gpt-4o-mini","messages":[]} trailing`,
		`{"model":"gpt-4o-mini","model":"dup",`,
	} {
		t.Run(body, func(t *testing.T) {
			up := newUpstream(t, jsonAnswer(200, completionJSON)) // even a 200 is not stored
			e := newEnv(t, up, nil)
			for i := 1; i <= 2; i++ {
				r := e.chat(body, withHeader("Cache-Control", "max-age=60"))
				if r.status != 200 || r.header.Get("X-Cache-Status") != "BYPASS" {
					t.Fatalf("status %d X-Cache-Status %q, want 200 BYPASS", r.status, r.header.Get("X-Cache-Status"))
				}
				if string(r.body) != completionJSON {
					t.Errorf("client body %q", r.body)
				}
				wantCalls(t, up, i)
				if got := string(up.last().Body); got != body {
					t.Errorf("upstream body %q, want %q", got, body)
				}
			}
		})
	}
}

// TestUpstreamDown: a closed port is a 502 in OpenAI's envelope on every path.
func TestUpstreamDown(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	e := newEnv(t, up, func(o *Options) { o.Upstream = "http://" + closedAddr(t) + "/v1" })
	for _, tc := range []struct{ name, method, path, body string }{
		{"chat", http.MethodPost, "/v1/chat/completions", chatBody("")},
		{"chat stream", http.MethodPost, "/v1/chat/completions", chatBody(`"stream":true`)},
		{"chat no_cache", http.MethodPost, "/v1/chat/completions", chatBody(`"cache_control":{"type":"no_cache"}`)},
		{"chat malformed", http.MethodPost, "/v1/chat/completions", `{"model":`},
		{"models", http.MethodGet, "/v1/models", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path, tc.body)
			e := wantError(t, r, http.StatusBadGateway, "server_error", "")
			if strings.Contains(e.Message, "sk-client-one") {
				t.Errorf("error message leaks the token: %s", e.Message)
			}
		})
	}
	// Nothing was stored: still a 502, not a hit.
	wantError(t, e.chat(chatBody("")), http.StatusBadGateway, "server_error", "")
}

// TestUpstreamTimeout: an upstream slower than Timeout is a 504 in OpenAI's envelope.
func TestUpstreamTimeout(t *testing.T) {
	release := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	e := newEnv(t, up, func(o *Options) { o.Timeout = 150 * time.Millisecond })
	for _, tc := range []struct{ name, method, path, body string }{
		{"chat", http.MethodPost, "/v1/chat/completions", chatBody("")},
		{"chat stream", http.MethodPost, "/v1/chat/completions", chatBody(`"stream":true`)},
		{"chat malformed", http.MethodPost, "/v1/chat/completions", `{"model":`},
		{"models", http.MethodGet, "/v1/models", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, e.do(tc.method, tc.path, tc.body), http.StatusGatewayTimeout, "server_error", "")
		})
	}
}

// TestBodyTooLarge: a body over MaxBodyBytes is a 413 on every path, with or without a
// Content-Length, and never reaches the upstream.
func TestBodyTooLarge(t *testing.T) {
	const limit = 1024
	big := chatBody(`"stop":["` + strings.Repeat("x", 2*limit) + `"]`)
	for _, tc := range []struct {
		name, path string
		chunked    bool
	}{
		{"chat", "/v1/chat/completions", false},
		{"chat chunked", "/v1/chat/completions", true},
		{"embeddings", "/v1/embeddings", false},
		{"embeddings chunked", "/v1/embeddings", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, jsonAnswer(200, completionJSON))
			e := newEnv(t, up, func(o *Options) { o.MaxBodyBytes = limit })
			var opts []reqOpt
			if tc.chunked {
				opts = append(opts, func(r *http.Request) {
					r.ContentLength = -1
					r.Body = io.NopCloser(io.MultiReader(strings.NewReader(big)))
				})
			}
			r := e.do(http.MethodPost, tc.path, big, opts...)
			wantError(t, r, http.StatusRequestEntityTooLarge, "invalid_request_error", "")
			if n := up.count(); n != 0 && !tc.chunked {
				t.Errorf("upstream called %d times", n)
			}
			// Just under the limit passes.
			small := chatBody("")
			if r := e.do(http.MethodPost, tc.path, small); r.status != 200 {
				t.Errorf("small body: status %d", r.status)
			}
		})
	}
}

func TestHealthz(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	e := newEnv(t, up, nil)
	r := e.do(http.MethodGet, "/healthz", "")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") || !strings.Contains(string(r.body), `"ok"`) {
		t.Errorf("healthz: %d %q %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	wantCalls(t, up, 0)
}

func TestUnknownPath(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	e := newEnv(t, up, nil)
	for _, p := range []string{"/", "/nope", "/v2/models", "/v1", "/chat/completions"} {
		t.Run(p, func(t *testing.T) {
			wantError(t, e.do(http.MethodGet, p, ""), http.StatusNotFound, "invalid_request_error", "")
			wantError(t, e.do(http.MethodPost, p, chatBody("")), http.StatusNotFound, "invalid_request_error", "")
		})
	}
	wantCalls(t, up, 0)
}

// TestHopByHop: connection-level headers are not forwarded, in either direction, on the chat
// path and on pass-through paths.
func TestHopByHop(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Connection", "X-Up-Hop")
		h.Set("X-Up-Hop", "secret")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Authenticate", "Basic")
		h.Set("Upgrade", "h2c")
		h.Set("Content-Type", "application/json")
		h.Set("X-End-To-End", "kept")
		io.WriteString(w, completionJSON)
	})
	e := newEnv(t, up, nil)
	for _, tc := range []struct{ name, method, path, body string }{
		{"chat", http.MethodPost, "/v1/chat/completions", chatBody("")},
		{"chat hit", http.MethodPost, "/v1/chat/completions", chatBody("")},
		{"chat stream", http.MethodPost, "/v1/chat/completions", chatBody(`"stream":true,"seed":1`)},
		{"models", http.MethodGet, "/v1/models", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := up.count()
			r := e.do(tc.method, tc.path, tc.body,
				withHeader("Connection", "X-Hop"), withHeader("X-Hop", "secret"),
				withHeader("Keep-Alive", "300"), withHeader("Proxy-Authorization", "Basic c2VjcmV0"),
				withHeader("Upgrade", "websocket"), withHeader("X-End-To-End", "kept"))
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if up.count() > before {
				c := up.last()
				for _, k := range []string{"X-Hop", "Keep-Alive", "Proxy-Authorization", "Upgrade"} {
					if v := c.Header.Get(k); v != "" {
						t.Errorf("upstream received %s: %q", k, v)
					}
				}
				if c.Header.Get("X-End-To-End") != "kept" {
					t.Error("an end-to-end request header was dropped")
				}
			}
			for _, k := range []string{"X-Up-Hop", "Keep-Alive", "Proxy-Authenticate", "Upgrade"} {
				if v := r.header.Get(k); v != "" {
					t.Errorf("client received %s: %q", k, v)
				}
			}
			if r.header.Get("X-End-To-End") != "kept" && tc.name != "chat hit" {
				t.Error("an end-to-end response header was dropped")
			}
		})
	}
}

// TestErrorAnswersNotReused: an upstream error answer is never served to a later request, not
// even one that arrives just as the failed call ends (the window between a flight finishing
// and leaving the coalescing table).
func TestErrorAnswersNotReused(t *testing.T) {
	var n atomic.Int32
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(500)
		fmt.Fprintf(w, `{"error":{"message":"failure %d","type":"server_error"}}`, n.Add(1))
	})
	e := newEnv(t, up, nil)
	const rounds = 200
	for i := 1; i <= rounds; i++ {
		body := chatBody("")
		if i%2 == 0 {
			body = streamBody("", "")
		}
		r := e.chat(body)
		want := fmt.Sprintf(`{"error":{"message":"failure %d","type":"server_error"}}`, i)
		if r.status != 500 || string(r.body) != want || r.header.Get("X-Cache-Status") != "MISS" {
			t.Fatalf("request %d: %d %q %s, want a fresh upstream error (%s)", i, r.status, r.header.Get("X-Cache-Status"), r.body, want)
		}
	}
	wantCalls(t, up, rounds)
}

// TestGzipUpstream: a compressed upstream answer is stored and served decoded on the chat
// path (whatever the client's Accept-Encoding), and passed through as it came elsewhere.
func TestGzipUpstream(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			io.WriteString(w, completionJSON)
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		io.WriteString(zw, completionJSON)
		zw.Close()
	})
	e := newEnv(t, up, nil)
	gz := withHeader("Accept-Encoding", "gzip")
	for _, want := range []string{"MISS", "HIT"} {
		r := e.chat(chatBody(""), gz)
		wantStatus(t, r, 200, want)
		if r.header.Get("Content-Encoding") != "" || string(r.body) != completionJSON {
			t.Errorf("%s: Content-Encoding %q, body %q", want, r.header.Get("Content-Encoding"), r.body)
		}
	}
	r := e.do(http.MethodGet, "/v1/models", "", gz)
	if r.header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("pass-through lost Content-Encoding: %v", r.header)
	}
	zr, err := gzip.NewReader(bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(zr); string(b) != completionJSON {
		t.Errorf("pass-through body decodes to %q", b)
	}
}

// TestBypassAnswerAsItCame: a plain answer to a request that stores nothing (no_cache,
// no_store) reaches its client byte for byte with the upstream's own Content-Type, as a
// pass-through would; a default request's answer is stored and served from the cache after.
func TestBypassAnswerAsItCame(t *testing.T) {
	const answer = "{ \"id\": \"chatcmpl-odd\",\n  \"object\": \"chat.completion\", \"x_vendor\": [1, 2],\n" +
		"  \"choices\": [ {\"index\": 0, \"message\": {\"role\": \"assistant\", \"content\": \"Paris.\"}, \"finish_reason\": \"stop\"} ],\n" +
		"  \"usage\": {\"prompt_tokens\": 9, \"completion_tokens\": 2, \"total_tokens\": 11} }\n"
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		io.WriteString(w, answer)
	})
	e := newEnv(t, up, nil)
	for _, tc := range []struct {
		name, extra, cacheStatus string
	}{
		{"no_cache", `"cache_control":{"type":"no_cache"}`, "BYPASS"},
		{"no_store", `"cache_control":{"type":"no_store"}`, "MISS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.chat(chatBody(tc.extra))
			wantStatus(t, r, 200, tc.cacheStatus)
			if string(r.body) != answer {
				t.Errorf("body changed on the way:\n got %q\nwant %q", r.body, answer)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("Content-Type %q, want the upstream's", ct)
			}
			if r.header.Get("X-Cache-Key") != "" {
				t.Error("X-Cache-Key on an answer that was not stored")
			}
		})
	}
	wantStatus(t, e.chat(chatBody("")), 200, "MISS")
	wantStatus(t, e.chat(chatBody("")), 200, "HIT")
	wantCalls(t, up, 3)
}

// TestStatedLengthAnswers: an answer with a Content-Length is read into a buffer of that size
// (up to presizeMax; a larger one grows its buffer): whole, it is stored and served back byte
// for byte; cut short of its stated length, it is never stored.
func TestStatedLengthAnswers(t *testing.T) {
	big := strings.Replace(completionJSON, "Paris is the capital of France.", strings.Repeat("Paris. ", presizeMax/7+1000), 1)
	stated := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			io.WriteString(w, body)
		}
	}
	cut := func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
			len(completionJSON)+100, completionJSON)
		buf.Flush()
	}
	for _, tc := range []struct {
		name   string
		up     http.HandlerFunc
		body   string // what a second request is served from the cache; "" when nothing is stored
		second string // its X-Cache-Status
		fitted bool   // stored in the buffer it was read into, of exactly its stated length
	}{
		{"small", stated(completionJSON), completionJSON, "HIT", true},
		{"larger than presizeMax", stated(big), big, "HIT", false},
		{"short of its stated length", cut, "", "MISS", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, tc.up)
			e := newEnv(t, up, nil)
			first := e.chat(chatBody(""))
			e.h.Wait(context.Background())
			if tc.fitted {
				stored, ok := e.cache.Get(first.header.Get("X-Cache-Key"))
				if !ok || cap(stored.Body) != len(stored.Body) {
					t.Fatalf("stored %v: want the answer in a buffer of exactly its %d bytes", ok, len(tc.body))
				}
			}
			r := e.chat(chatBody(""))
			if got := r.header.Get("X-Cache-Status"); got != tc.second {
				t.Fatalf("second request: X-Cache-Status %q, want %q", got, tc.second)
			}
			if tc.body == "" {
				wantCalls(t, up, 2)
				return
			}
			wantCalls(t, up, 1)
			if string(r.body) != tc.body {
				t.Errorf("served %d bytes, want the %d stored", len(r.body), len(tc.body))
			}
		})
	}
}

// TestUpstreamRequestBody: the request a chat call sends upstream carries the given context,
// the URL and host of the upstream, and its body with its length; GetBody (what a transport
// retries with) gives the same bytes again, each time from the start. An empty body is
// http.NoBody, as http.NewRequestWithContext makes it.
func TestUpstreamRequestBody(t *testing.T) {
	e := newEnv(t, newUpstream(t, jsonAnswer(200, completionJSON)), nil)
	type ctxKey struct{}
	ctx := context.WithValue(context.Background(), ctxKey{}, "flight")
	in, _ := http.NewRequest(http.MethodPost, "http://zest.test/v1/chat/completions", nil)
	in.Header.Set("Content-Type", "application/json")
	for _, body := range []string{`{"model":"m","messages":[]}`, ""} {
		out := e.h.upstreamRequest(ctx, in, []byte(body))
		if out.Context().Value(ctxKey{}) != "flight" {
			t.Errorf("body %q: the request does not carry the context given", body)
		}
		if out.URL.String() != e.up.base()+chatPath || out.Host != out.URL.Host || out.Method != http.MethodPost ||
			out.ProtoMajor != 1 || out.ProtoMinor != 1 {
			t.Errorf("body %q: %s %s host %q proto %d.%d", body, out.Method, out.URL, out.Host, out.ProtoMajor, out.ProtoMinor)
		}
		if out.ContentLength != int64(len(body)) || out.Header.Get("Content-Type") != "application/json" {
			t.Errorf("body %q: ContentLength %d, Content-Type %q", body, out.ContentLength, out.Header.Get("Content-Type"))
		}
		if body == "" && out.Body != http.NoBody {
			t.Errorf("empty body is %T, want http.NoBody", out.Body)
		}
		bodies := []io.ReadCloser{out.Body}
		for range 2 {
			b, err := out.GetBody()
			if err != nil {
				t.Fatal(err)
			}
			bodies = append(bodies, b)
		}
		io.ReadAll(bodies[1]) // a rewound body read to its end leaves the next one whole
		for i, b := range bodies {
			if i == 1 {
				continue
			}
			got, err := io.ReadAll(b)
			if err != nil || string(got) != body {
				t.Errorf("body %d of %q: %q, %v", i, body, got, err)
			}
			b.Close()
		}
	}
}

// lateReader is a RoundTripper that answers at once and leaves the request body to be read
// later, as net/http's Transport may (it writes the body on a goroutine of its own).
type lateReader struct{ bodies chan io.ReadCloser }

func (l *lateReader) RoundTrip(r *http.Request) (*http.Response, error) {
	l.bodies <- r.Body
	return &http.Response{StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(strings.NewReader(completionJSON)),
		ContentLength: int64(len(completionJSON)), Request: r}, nil
}

// TestUpstreamBodyOutlivesHandler: the body zest sends upstream is the client's own bytes
// (not copied) only while it stays readable: a RoundTripper that reads it after the handler
// has returned and the next request has been read still gets every byte it was given.
func TestUpstreamBodyOutlivesHandler(t *testing.T) {
	lr := &lateReader{bodies: make(chan io.ReadCloser, 4)}
	h, err := New(Options{Upstream: "http://upstream.test/v1", Transport: lr})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Wait(context.Background())
	body := func(c byte) string {
		return `{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat(string(c), 4000) + `"}]}`
	}
	for _, c := range []byte{'a', 'b'} {
		r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body(c)))
		r.Header.Set("Authorization", "Bearer sk-late")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Fatalf("request %c: %d %s", c, w.Code, w.Body)
		}
	}
	for _, c := range []byte{'a', 'b'} {
		rc := <-lr.bodies
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(got) != body(c) {
			t.Fatalf("body of request %c read after its handler returned: %d bytes starting %.60q (%v), want the %d it was",
				c, len(got), got, err, len(body(c)))
		}
	}
}
