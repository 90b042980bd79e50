package h1

// TestServer* pin the behaviour h1.Server shares with net/http's http.Server, as a client sees
// it: every scenario runs as subtests "net-http" (the reference) and "h1". Raw TCP clients are
// used where the wire matters. Every wait is on an event (a read, a channel the handler
// signals); the watchdog only bounds a failure, it is never the pass condition.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// srvConfig holds the settings shared by both servers.
type srvConfig struct {
	readHeaderTimeout, idleTimeout time.Duration
	maxHeaderBytes                 int
}

// srvRunning is a server under test. Serve's result is in err once done is closed.
type srvRunning struct {
	addr     string
	shutdown func(context.Context) error
	done     chan struct{}
	err      error
}

type srvStartFunc func(h http.Handler, cfg srvConfig) *srvRunning

// srvStart serves h with the kind of server named ("net-http" or "h1") on a loopback listener,
// closed (and Serve's result checked) when the test ends.
func srvStart(t *testing.T, kind string, h http.Handler, cfg srvConfig) *srvRunning {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &srvRunning{addr: ln.Addr().String(), done: make(chan struct{})}
	var serve func(net.Listener) error
	var closeAll func() error
	if kind == "h1" {
		hs := &Server{Handler: h, ReadHeaderTimeout: cfg.readHeaderTimeout, IdleTimeout: cfg.idleTimeout,
			MaxHeaderBytes: cfg.maxHeaderBytes}
		serve, s.shutdown, closeAll = hs.Serve, hs.Shutdown, hs.Close
	} else {
		hs := &http.Server{Handler: h, ReadHeaderTimeout: cfg.readHeaderTimeout, IdleTimeout: cfg.idleTimeout,
			MaxHeaderBytes: cfg.maxHeaderBytes, ErrorLog: log.New(io.Discard, "", 0)}
		serve, s.shutdown, closeAll = hs.Serve, hs.Shutdown, hs.Close
	}
	go func() {
		s.err = serve(ln)
		ln.Close() // a Serve that fails early must not leave dials hanging in the backlog
		close(s.done)
	}()
	t.Cleanup(func() {
		closeAll()
		select {
		case <-s.done:
			if !errors.Is(s.err, http.ErrServerClosed) {
				t.Errorf("Serve returned %v, want http.ErrServerClosed", s.err)
			}
		case <-time.After(watchdog):
			t.Errorf("Serve did not return within %v of Close", watchdog)
		}
	})
	return s
}

// srvEach runs f as subtests "net-http" and "h1"; f starts its server (so handler state, such
// as channels, is per subtest).
func srvEach(t *testing.T, f func(t *testing.T, start srvStartFunc)) {
	for _, kind := range []string{"net-http", "h1"} {
		t.Run(kind, func(t *testing.T) {
			f(t, func(h http.Handler, cfg srvConfig) *srvRunning { return srvStart(t, kind, h, cfg) })
		})
	}
}

// eachServer runs f against both servers serving a stateless h with default settings.
func eachServer(t *testing.T, h http.Handler, f func(t *testing.T, addr string)) {
	srvEach(t, func(t *testing.T, start srvStartFunc) { f(t, start(h, srvConfig{}).addr) })
}

// srvClient is a raw TCP client; its reads and writes fail after the watchdog.
type srvClient struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func srvDial(t *testing.T, addr string) *srvClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(watchdog))
	return &srvClient{t: t, c: c, br: bufio.NewReader(c)}
}

// srvReq formats a request head; extra holds header lines, each ending in "\r\n".
func srvReq(method, target, extra string) string {
	return method + " " + target + " HTTP/1.1\r\nHost: srv.test\r\n" + extra + "\r\n"
}

func (c *srvClient) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.c, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// next reads the head of the next response, to a request of the given method.
func (c *srvClient) next(method string) *http.Response {
	c.t.Helper()
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		c.t.Fatalf("reading response: %v", err)
	}
	return resp
}

// read reads the next whole response.
func (c *srvClient) read(method string) (*http.Response, string) {
	c.t.Helper()
	resp := c.next(method)
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("reading body: %v", err)
	}
	return resp, string(b)
}

// closed asserts the server closes the connection with nothing (more) sent.
func (c *srvClient) closed() {
	c.t.Helper()
	if b, err := c.br.ReadByte(); err == nil {
		rest, _ := c.br.Peek(c.br.Buffered())
		c.t.Fatalf("got %q, want the connection closed", append([]byte{b}, rest...))
	} else if !srvIsClosed(err) {
		c.t.Fatalf("read: %v, want the connection closed", err)
	}
}

func srvIsClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// srvRecv waits for a value on ch (or its close), failing after the watchdog.
func srvRecv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(watchdog):
		t.Fatalf("timed out after %v waiting for %s", watchdog, what)
		panic("unreachable")
	}
}

func srvHTTPClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: watchdog}
}

// TestServerFraming: responses on one kept-alive connection, each framed so the next is read
// right: a small body written in one Write gets a computed Content-Length; 100 KiB in several
// Writes is chunked; a declared Content-Length is kept; HEAD gets the GET's headers, no body.
func TestServerFraming(t *testing.T) {
	var large []byte
	for i := range 10 {
		large = append(large, bytes.Repeat([]byte{byte('a' + i)}, 10<<10)...)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/large":
			for p := large; len(p) > 0; p = p[10<<10:] {
				w.Write(p[:10<<10])
			}
			return
		case "/declared":
			w.Header().Set("Content-Length", "5")
		}
		io.WriteString(w, "hello")
	})
	eachServer(t, h, func(t *testing.T, addr string) {
		c := srvDial(t, addr)
		for _, tc := range []struct {
			method, path string
			length       int64 // -1: chunked
			body         string
		}{
			{"GET", "/small", 5, "hello"},
			{"GET", "/large", -1, string(large)},
			{"GET", "/declared", 5, "hello"},
			{"HEAD", "/small", 5, ""},
			{"GET", "/small", 5, "hello"},
		} {
			c.send(srvReq(tc.method, tc.path, ""))
			resp, body := c.read(tc.method)
			chunked := len(resp.TransferEncoding) == 1 && resp.TransferEncoding[0] == "chunked"
			if resp.StatusCode != 200 || resp.ContentLength != tc.length || chunked != (tc.length < 0) || resp.Close {
				t.Fatalf("%s %s: %d, Content-Length %d, Transfer-Encoding %v, Close %v; want 200, %d, chunked %v, keep-alive",
					tc.method, tc.path, resp.StatusCode, resp.ContentLength, resp.TransferEncoding, resp.Close,
					tc.length, tc.length < 0)
			}
			if body != tc.body {
				t.Fatalf("%s %s: body of %d bytes, want %d", tc.method, tc.path, len(body), len(tc.body))
			}
		}
	})
}

// TestServerFlushStreams: a Flush sends the head (chunked) and the body so far before the
// handler returns (SSE); the rest follows, correctly framed so the connection is reused.
func TestServerFlushStreams(t *testing.T) {
	flushers := map[string]func(http.ResponseWriter){
		"ResponseController": func(w http.ResponseWriter) { http.NewResponseController(w).Flush() },
		"Flusher":            func(w http.ResponseWriter) { w.(http.Flusher).Flush() },
	}
	srvEach(t, func(t *testing.T, start srvStartFunc) {
		release := make(chan struct{})
		unblock := sync.OnceFunc(func() { close(release) })
		defer unblock()
		s := start(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: one\n\n")
			flushers[r.URL.Query().Get("via")](w)
			<-release
			io.WriteString(w, "data: two\n\n")
		}), srvConfig{})
		c := srvDial(t, s.addr)
		for _, via := range []string{"ResponseController", "Flusher"} {
			c.send(srvReq("GET", "/events?via="+via, ""))
			resp := c.next("GET")
			if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
				t.Fatalf("%s: Transfer-Encoding %v, want chunked", via, resp.TransferEncoding)
			}
			first := make([]byte, len("data: one\n\n"))
			if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "data: one\n\n" {
				t.Fatalf("%s: first part %q, %v (before the handler finished)", via, first, err)
			}
			unblock()
			if rest, err := io.ReadAll(resp.Body); err != nil || string(rest) != "data: two\n\n" {
				t.Fatalf("%s: rest %q, %v", via, rest, err)
			}
		}
	})
}

// TestServerContentLength: a Write beyond a declared Content-Length fails with
// http.ErrContentLength; a body short of it ends with the connection closed.
func TestServerContentLength(t *testing.T) {
	srvEach(t, func(t *testing.T, start srvStartFunc) {
		writeErr := make(chan error, 1)
		s := start(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/over":
				w.Header().Set("Content-Length", "5")
				io.WriteString(w, "hello")
				_, err := io.WriteString(w, "!")
				writeErr <- err
			case "/under":
				w.Header().Set("Content-Length", "10")
				io.WriteString(w, "hello")
			}
		}), srvConfig{})
		t.Run("over", func(t *testing.T) {
			c := srvDial(t, s.addr)
			c.send(srvReq("GET", "/over", ""))
			if _, body := c.read("GET"); body != "hello" {
				t.Errorf("body %q, want hello", body)
			}
			if err := srvRecv(t, writeErr, "the handler's Write"); !errors.Is(err, http.ErrContentLength) {
				t.Errorf("Write beyond Content-Length: %v, want http.ErrContentLength", err)
			}
		})
		t.Run("under", func(t *testing.T) {
			c := srvDial(t, s.addr)
			c.send(srvReq("GET", "/under", ""))
			resp := c.next("GET")
			if b, err := io.ReadAll(resp.Body); string(b) != "hello" || !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("body %q, %v; want hello, unexpected EOF", b, err)
			}
			c.closed()
		})
	})
}

// TestServerNoBodyStatus: 204 and 304 carry no body, a Write gets http.ErrBodyNotAllowed, and
// the connection is kept alive.
func TestServerNoBodyStatus(t *testing.T) {
	srvEach(t, func(t *testing.T, start srvStartFunc) {
		writeErr := make(chan error, 1)
		s := start(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
			w.WriteHeader(code)
			_, err := io.WriteString(w, "body")
			writeErr <- err
		}), srvConfig{})
		c := srvDial(t, s.addr)
		for _, code := range []int{204, 304} {
			c.send(srvReq("GET", "/"+strconv.Itoa(code), ""))
			resp, body := c.read("GET")
			err := srvRecv(t, writeErr, "the handler's Write")
			if resp.StatusCode != code || body != "" || resp.TransferEncoding != nil || resp.Close {
				t.Fatalf("%d: got %d, body %q, Transfer-Encoding %v, Close %v", code, resp.StatusCode, body, resp.TransferEncoding, resp.Close)
			}
			if !errors.Is(err, http.ErrBodyNotAllowed) {
				t.Fatalf("%d: Write: %v, want http.ErrBodyNotAllowed", code, err)
			}
		}
		c.send(srvReq("GET", "/200", "")) // no stray body bytes: the connection is still in step
		if resp, body := c.read("GET"); resp.StatusCode != 200 || body != "body" {
			t.Fatalf("200 after 204 and 304: %d %q", resp.StatusCode, body)
		}
	})
}

// TestServerRequestBody: Content-Length and chunked request bodies reach the handler whole; a
// body the handler leaves unread is drained so the next request on the connection is served.
func TestServerRequestBody(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ignore" {
			io.WriteString(w, "ignored")
			return
		}
		b, _ := io.ReadAll(r.Body) // a read error shows as a short echo
		w.Write(b)
	})
	eachServer(t, h, func(t *testing.T, addr string) {
		c := srvDial(t, addr)
		for _, step := range []struct{ name, req, want string }{
			{"content-length", srvReq("POST", "/echo", "Content-Length: 11\r\n") + "hello world", "hello world"},
			{"chunked", srvReq("POST", "/echo", "Transfer-Encoding: chunked\r\n") + "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world"},
			{"unread content-length", srvReq("POST", "/ignore", "Content-Length: 10\r\n") + "0123456789", "ignored"},
			{"unread chunked", srvReq("POST", "/ignore", "Transfer-Encoding: chunked\r\n") + "3\r\nabc\r\n0\r\n\r\n", "ignored"},
			{"after unread", srvReq("POST", "/echo", "Content-Length: 4\r\n") + "next", "next"},
		} {
			c.send(step.req)
			if resp, body := c.read("POST"); resp.StatusCode != 200 || body != step.want {
				t.Fatalf("%s: got %d %q, want 200 %q", step.name, resp.StatusCode, body, step.want)
			}
		}
	})
}

// TestServerExpectContinue: "100 Continue" is sent when the handler reads the body, and never
// when the handler answers without reading it.
func TestServerExpectContinue(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/reject" {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			return
		}
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	})
	head := func(path string) string { return srvReq("POST", path, "Content-Length: 5\r\nExpect: 100-continue\r\n") }
	eachServer(t, h, func(t *testing.T, addr string) {
		t.Run("continue", func(t *testing.T) {
			c := srvDial(t, addr)
			c.send(head("/echo"))
			if resp := c.next("POST"); resp.StatusCode != 100 {
				t.Fatalf("got %d, want 100 Continue before the body is sent", resp.StatusCode)
			}
			c.send("hello")
			if resp, body := c.read("POST"); resp.StatusCode != 200 || body != "hello" {
				t.Fatalf("got %d %q, want the echo", resp.StatusCode, body)
			}
		})
		t.Run("reject", func(t *testing.T) {
			c := srvDial(t, addr)
			c.send(head("/reject"))
			if resp, _ := c.read("POST"); resp.StatusCode != 413 {
				t.Fatalf("got %d, want 413 (and no 100 Continue)", resp.StatusCode)
			}
		})
	})
}

// TestServerConnectionClose: the server answers, then closes, when the request or the handler
// says "Connection: close", or the request is HTTP/1.0 without keep-alive.
func TestServerConnectionClose(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/close" {
			w.Header().Set("Connection", "close")
		}
		io.WriteString(w, "ok")
	})
	eachServer(t, h, func(t *testing.T, addr string) {
		for _, tc := range []struct{ name, req string }{
			{"request", srvReq("GET", "/", "Connection: close\r\n")},
			{"handler", srvReq("GET", "/close", "")},
			{"HTTP/1.0", "GET / HTTP/1.0\r\n\r\n"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := srvDial(t, addr)
				c.send(tc.req)
				if resp, body := c.read("GET"); !resp.Close || body != "ok" {
					t.Fatalf("Close %v, body %q; want Connection: close and ok", resp.Close, body)
				}
				c.closed()
			})
		}
	})
}

// TestServerContextCanceled: a request's context ends when the client goes away mid-handler,
// and after the response is done.
func TestServerContextCanceled(t *testing.T) {
	srvEach(t, func(t *testing.T, start srvStartFunc) {
		started := make(chan struct{}, 1)
		ctxErr := make(chan error, 1)
		ctxs := make(chan context.Context, 1)
		s := start(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/wait" {
				started <- struct{}{}
				<-r.Context().Done()
				ctxErr <- r.Context().Err()
				return
			}
			ctxs <- r.Context()
			io.WriteString(w, "ok")
		}), srvConfig{})
		t.Run("client gone", func(t *testing.T) {
			c := srvDial(t, s.addr)
			c.send(srvReq("GET", "/wait", ""))
			srvRecv(t, started, "the handler to start")
			c.c.Close()
			if err := srvRecv(t, ctxErr, "the handler's context to end"); !errors.Is(err, context.Canceled) {
				t.Fatalf("ctx.Err() = %v, want context.Canceled", err)
			}
		})
		t.Run("after response", func(t *testing.T) {
			c := srvDial(t, s.addr)
			c.send(srvReq("GET", "/", ""))
			c.read("GET")
			ctx := srvRecv(t, ctxs, "the handler's context")
			srvRecv(t, ctx.Done(), "the context to end after the response")
			if !errors.Is(ctx.Err(), context.Canceled) {
				t.Fatalf("ctx.Err() = %v, want context.Canceled", ctx.Err())
			}
		})
	})
}

// TestServerPipelining: requests written back to back in one Write are answered in order.
func TestServerPipelining(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s", r.URL.Path, b)
	})
	eachServer(t, h, func(t *testing.T, addr string) {
		c := srvDial(t, addr)
		c.send(srvReq("GET", "/1", "") + srvReq("POST", "/2", "Content-Length: 3\r\n") + "abc" + srvReq("GET", "/3", ""))
		for _, want := range []string{"/1 ", "/2 abc", "/3 "} {
			if resp, body := c.read("GET"); resp.StatusCode != 200 || body != want {
				t.Fatalf("got %d %q, want %q", resp.StatusCode, body, want)
			}
		}
	})
}

// TestServerBadRequest: malformed or unacceptable requests get the status net/http gives, and
// the connection is closed (the handler never sees them).
func TestServerBadRequest(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "handler") })
	srvEach(t, func(t *testing.T, start srvStartFunc) {
		s := start(h, srvConfig{maxHeaderBytes: 4096})
		for _, tc := range []struct {
			name, req string
			code      int
		}{
			{"malformed request line", "GARBAGE\r\n\r\n", 400},
			{"head too large", srvReq("GET", "/", "X-Big: "+strings.Repeat("a", 10<<10)+"\r\n"), 431},
			{"missing Host", "GET / HTTP/1.1\r\n\r\n", 400},
			{"unsupported Expect", srvReq("GET", "/", "Expect: foo\r\n"), 417},
			{"conflicting Content-Length", srvReq("POST", "/", "Content-Length: 1\r\nContent-Length: 2\r\n") + "ab", 400},
			{"unsupported Transfer-Encoding", srvReq("POST", "/", "Transfer-Encoding: gzip\r\n"), 501},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := srvDial(t, s.addr)
				c.send(tc.req)
				resp := c.next("GET")
				io.Copy(io.Discard, resp.Body) // wording and framing of the error body are free
				if resp.StatusCode != tc.code {
					t.Fatalf("got %d, want %d", resp.StatusCode, tc.code)
				}
				c.closed()
			})
		}
	})
}

// TestServerPanic: a handler panic closes the connection without a response (quietly for
// http.ErrAbortHandler), and the server goes on serving new connections.
func TestServerPanic(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/abort":
			panic(http.ErrAbortHandler)
		case "/boom":
			panic("boom")
		}
		io.WriteString(w, "ok")
	})
	eachServer(t, h, func(t *testing.T, addr string) {
		for _, path := range []string{"/abort", "/boom"} {
			t.Run(path[1:], func(t *testing.T) {
				c := srvDial(t, addr)
				c.send(srvReq("GET", path, ""))
				c.closed()
				c = srvDial(t, addr)
				c.send(srvReq("GET", "/", ""))
				if resp, body := c.read("GET"); resp.StatusCode != 200 || body != "ok" {
					t.Fatalf("after the panic: %d %q", resp.StatusCode, body)
				}
			})
		}
	})
}

// TestServerResponseHeaders: what a client sees of the head: Content-Type sniffed when unset, a
// Date, no header changes made after WriteHeader, a 103 (with its Link) before the final 200, and
// trailers declared with "Trailer" before WriteHeader or set with http.TrailerPrefix, after a Flush.
func TestServerResponseHeaders(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/html":
			io.WriteString(w, "<!DOCTYPE html><html><body>hi</body></html>")
			return
		case "/late":
			w.Header().Set("X-Early", "1")
			w.WriteHeader(200)
			w.Header().Set("X-Late", "1")
		case "/hints":
			w.Header().Set("Link", "</app.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(200)
		case "/declared":
			w.Header().Set("Trailer", "X-T")
			w.WriteHeader(200)
		}
		io.WriteString(w, "body")
		http.NewResponseController(w).Flush()
		switch r.URL.Path {
		case "/declared":
			w.Header().Set("X-T", "declared")
		case "/prefixed":
			w.Header().Set(http.TrailerPrefix+"X-T", "prefixed")
		}
	})
	type kv map[string]string
	eachServer(t, h, func(t *testing.T, addr string) {
		client := srvHTTPClient(t)
		for _, tc := range []struct {
			path            string
			header, trailer kv
			hints           string
		}{
			{"/html", kv{"Content-Type": "text/html; charset=utf-8"}, nil, ""},
			{"/text", kv{"Content-Type": "text/plain; charset=utf-8"}, nil, ""},
			{"/late", kv{"X-Early": "1", "X-Late": ""}, nil, ""},
			{"/hints", kv{"Link": "</app.css>; rel=preload"}, nil, "103 </app.css>; rel=preload;"},
			{"/declared", nil, kv{"X-T": "declared"}, ""},
			{"/prefixed", nil, kv{"X-T": "prefixed"}, ""},
		} {
			var hints string // written before Do returns
			trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, hdr textproto.MIMEHeader) error {
				hints += fmt.Sprintf("%d %s;", code, hdr.Get("Link"))
				return nil
			}}
			req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", "http://"+addr+tc.path, nil)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || hints != tc.hints {
				t.Errorf("%s: %d, %v, 1xx %q; want 200 after 1xx %q", tc.path, resp.StatusCode, err, hints, tc.hints)
			}
			if _, err := http.ParseTime(resp.Header.Get("Date")); err != nil {
				t.Errorf("%s: Date %q: %v", tc.path, resp.Header.Get("Date"), err)
			}
			for k, v := range tc.header {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s: header %s %q, want %q", tc.path, k, got, v)
				}
			}
			for k, v := range tc.trailer {
				if got := resp.Trailer.Get(k); got != v {
					t.Errorf("%s: trailer %s %q, want %q", tc.path, k, got, v)
				}
			}
		}
	})
}

// TestServerHeaderOrder: a handler's headers go out sorted by name, a name's values in the
// order set, whether a handful (sorted by insertion) or many (see sortFields).
func TestServerHeaderOrder(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		for i := range n {
			k := fmt.Sprintf("X-H%02d", (i*7)%n) // every name once, out of order
			w.Header()[k] = []string{"b" + k, "a" + k}
		}
		io.WriteString(w, "ok")
	})
	// The wire order, read raw: net/http's Header map does not keep it.
	eachServer(t, h, func(t *testing.T, addr string) {
		for _, n := range []int{5, 16, 17, 60} {
			c := srvDial(t, addr)
			c.send(srvReq("GET", "/?n="+strconv.Itoa(n), "Connection: close\r\n"))
			var names, want []string
			for {
				line, err := c.br.ReadString('\n')
				if err != nil {
					t.Fatalf("n=%d: reading the head: %v", n, err)
				}
				if line == "\r\n" {
					break
				}
				if k, v, ok := strings.Cut(strings.TrimSpace(line), ": "); ok && strings.HasPrefix(k, "X-H") {
					names = append(names, k)
					if v != "b"+k && v != "a"+k {
						t.Fatalf("n=%d: %s: %q", n, k, v)
					}
					if v == "a"+k && (len(names) < 2 || names[len(names)-2] != k) {
						t.Fatalf("n=%d: %s's second value not right after its first", n, k)
					}
				}
			}
			for i := range n {
				k := fmt.Sprintf("X-H%02d", i)
				want = append(want, k, k)
			}
			if strings.Join(names, ",") != strings.Join(want, ",") {
				t.Errorf("n=%d: header names in the order %v, want %v", n, names, want)
			}
		}
	})
}

// TestServerShutdown: Shutdown closes an idle connection at once, makes Serve return
// http.ErrServerClosed, lets the in-flight request finish with its full response, and only
// then returns.
func TestServerShutdown(t *testing.T) {
	srvEach(t, func(t *testing.T, start srvStartFunc) {
		started := make(chan struct{}, 1)
		release := make(chan struct{})
		unblock := sync.OnceFunc(func() { close(release) })
		defer unblock()
		s := start(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/block" {
				started <- struct{}{}
				<-release
			}
			io.WriteString(w, "done "+r.URL.Path)
		}), srvConfig{})
		idle := srvDial(t, s.addr)
		idle.send(srvReq("GET", "/idle", ""))
		if _, body := idle.read("GET"); body != "done /idle" {
			t.Fatalf("idle: %q", body)
		}
		busy := srvDial(t, s.addr)
		busy.send(srvReq("GET", "/block", ""))
		srvRecv(t, started, "the handler to start")

		shut := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), watchdog)
			defer cancel()
			shut <- s.shutdown(ctx)
		}()
		idle.closed()
		srvRecv(t, s.done, "Serve to return")
		if !errors.Is(s.err, http.ErrServerClosed) {
			t.Fatalf("Serve returned %v, want http.ErrServerClosed", s.err)
		}
		select {
		case err := <-shut:
			t.Fatalf("Shutdown returned %v while a handler was still running", err)
		default:
		}
		unblock()
		if resp, body := busy.read("GET"); resp.StatusCode != 200 || body != "done /block" {
			t.Fatalf("in-flight request: %d %q", resp.StatusCode, body)
		}
		busy.closed()
		if err := srvRecv(t, shut, "Shutdown to return"); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	})
}

// TestServerTimeouts: a client stalled mid-head is disconnected after ReadHeaderTimeout, and a
// kept-alive connection after IdleTimeout (whatever, if anything, is sent first).
func TestServerTimeouts(t *testing.T) {
	const d = 200 * time.Millisecond
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	srvEach(t, func(t *testing.T, start srvStartFunc) {
		t.Run("ReadHeaderTimeout", func(t *testing.T) {
			c := srvDial(t, start(h, srvConfig{readHeaderTimeout: d}).addr)
			c.send("GET / HTTP/1.1\r\nHost: srv.test\r\n")
			if _, err := io.ReadAll(c.br); err != nil && !srvIsClosed(err) {
				t.Fatalf("read: %v, want the connection closed", err)
			}
		})
		t.Run("IdleTimeout", func(t *testing.T) {
			c := srvDial(t, start(h, srvConfig{idleTimeout: d}).addr)
			c.send(srvReq("GET", "/", ""))
			c.read("GET")
			c.closed()
		})
	})
}

// TestServerDeadlines: ResponseController's SetReadDeadline and SetWriteDeadline are supported.
func TestServerDeadlines(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		fmt.Fprintf(w, "read=%v write=%v", rc.SetReadDeadline(time.Now().Add(watchdog)), rc.SetWriteDeadline(time.Now().Add(watchdog)))
	})
	eachServer(t, h, func(t *testing.T, addr string) {
		c := srvDial(t, addr)
		c.send(srvReq("GET", "/", ""))
		if _, body := c.read("GET"); body != "read=<nil> write=<nil>" {
			t.Fatalf("got %q, want both nil", body)
		}
	})
}

// TestServerReadDeadlineEndsBodyRead: a read deadline the handler sets ends a body read that
// waits for a client, whether set before the read or while it blocks (from another goroutine).
func TestServerReadDeadlineEndsBodyRead(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if r.URL.Path == "/before" {
			rc.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		} else {
			// Most likely while the read below blocks; the outcome must be the same either way.
			go func() {
				time.Sleep(10 * time.Millisecond)
				rc.SetReadDeadline(time.Now())
			}()
		}
		_, err := io.ReadAll(r.Body)
		var ne net.Error
		fmt.Fprintf(w, "timeout=%v", errors.As(err, &ne) && ne.Timeout())
	})
	eachServer(t, h, func(t *testing.T, addr string) {
		for _, path := range []string{"/before", "/during"} {
			c := srvDial(t, addr)
			c.send(srvReq("POST", path, "Content-Length: 10\r\n") + "ab")
			if _, body := c.read("POST"); body != "timeout=true" {
				t.Fatalf("%s: got %q, want the body read ended by its deadline", path, body)
			}
		}
	})
}

// TestServerHijack: a hijacking handler owns the connection: it reads bytes the client sent
// after the head (even in the same packet) and its raw writes reach the client.
func TestServerHijack(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hijack := w.(http.Hijacker).Hijack
		if r.URL.Path == "/controller" {
			hijack = http.NewResponseController(w).Hijack
		}
		conn, brw, err := hijack()
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer conn.Close()
		ping := make([]byte, 4)
		io.ReadFull(brw, ping)
		fmt.Fprintf(conn, "raw %s: pong", ping)
	})
	eachServer(t, h, func(t *testing.T, addr string) {
		for _, path := range []string{"/controller", "/hijacker"} {
			c := srvDial(t, addr)
			c.send(srvReq("GET", path, "") + "ping")
			if b, err := io.ReadAll(c.br); err != nil || string(b) != "raw ping: pong" {
				t.Fatalf("%s: got %q, %v; want the handler's raw bytes, then EOF", path, b, err)
			}
		}
	})
}

// TestServerHijackClearsReadDeadline: a hijacked connection comes without the read deadline
// the handler set for its request.
func TestServerHijackClearsReadDeadline(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		rc.SetReadDeadline(time.Now().Add(time.Millisecond))
		conn, brw, err := rc.Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		time.Sleep(20 * time.Millisecond) // past the deadline, whatever the machine's speed
		conn.Write([]byte("go\n"))
		b, err := brw.ReadString('\n')
		fmt.Fprintf(conn, "%q %v\n", b, err)
	})
	eachServer(t, h, func(t *testing.T, addr string) {
		c := srvDial(t, addr)
		c.send(srvReq("GET", "/", ""))
		if l, err := c.br.ReadString('\n'); l != "go\n" {
			t.Fatalf("got %q, %v; want the handler's go-ahead", l, err)
		}
		c.send("ping\n")
		if l, err := c.br.ReadString('\n'); l != "\"ping\\n\" <nil>\n" {
			t.Fatalf("got %q, %v; want the handler to read the ping", l, err)
		}
	})
}

// TestServerHeaderLineBreaks: a line break in a header value goes out as a space, never as a
// line of its own (no header injection).
func TestServerHeaderLineBreaks(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["X-Break"] = []string{"a\r\nX-Injected: 1", "plain"}
		io.WriteString(w, "ok")
	})
	eachServer(t, h, func(t *testing.T, addr string) {
		c := srvDial(t, addr)
		c.send(srvReq("GET", "/", ""))
		resp, _ := c.read("GET")
		if got := resp.Header["X-Break"]; len(got) != 2 || got[0] != "a  X-Injected: 1" || got[1] != "plain" {
			t.Fatalf("X-Break = %q, want the line break as spaces", got)
		}
		if resp.Header.Get("X-Injected") != "" {
			t.Fatal("a header was injected")
		}
	})
}

// TestServerRequestFields: what the handler sees of the request line and connection.
func TestServerRequestFields(t *testing.T) {
	type seen struct {
		Method, Proto, RemoteAddr, Host, RequestURI, Path, RawPath, RawQuery, URLHost, XA string
		HostHeader, NilBody                                                               bool
	}
	srvEach(t, func(t *testing.T, start srvStartFunc) {
		got := make(chan seen, 1)
		s := start(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, hostHeader := r.Header["Host"]
			got <- seen{r.Method, r.Proto, r.RemoteAddr, r.Host, r.RequestURI, r.URL.Path, r.URL.RawPath,
				r.URL.RawQuery, r.URL.Host, r.Header.Get("X-A"), hostHeader, r.Body == nil}
		}), srvConfig{})
		for _, tc := range []struct {
			name, req string
			want      seen
		}{
			{"origin form", "GET /p/a%2Fb?q=1 HTTP/1.1\r\nHost: example.test:8080\r\nX-A: 1\r\n\r\n",
				seen{"GET", "HTTP/1.1", "", "example.test:8080", "/p/a%2Fb?q=1", "/p/a/b", "/p/a%2Fb", "q=1", "", "1", false, false}},
			{"absolute form", "GET http://other.test/x?y HTTP/1.1\r\nHost: example.test\r\n\r\n",
				seen{"GET", "HTTP/1.1", "", "other.test", "http://other.test/x?y", "/x", "", "y", "other.test", "", false, false}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := srvDial(t, s.addr)
				c.send(tc.req)
				c.read("GET")
				tc.want.RemoteAddr = c.c.LocalAddr().String()
				if g := srvRecv(t, got, "the handler"); g != tc.want {
					t.Fatalf("handler saw\n%+v\nwant\n%+v", g, tc.want)
				}
			})
		}
	})
}
