package proxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zest-proxy/zest/replay"
	"github.com/zest-proxy/zest/semantic"
)

// A plain leader's call runs on its client's goroutine (inline): what happens when that client
// leaves meanwhile, and when the work after the answer panics.

// TestInlineLeaderGoneLogged499: a plain leader whose client hangs up while its call runs
// inline (a follower keeps the call alive) is logged as a client that left (499), as it was
// before calls ran inline; it was not sent the answer.
func TestInlineLeaderGoneLogged499(t *testing.T) {
	release, started := make(chan struct{}), make(chan struct{})
	var once sync.Once
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(started) })
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		jsonAnswer(200, completionJSON)(w, r)
	})
	x := xNewEnv(t, up, xCfg{})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	leaderDone := make(chan struct{})
	go func() {
		defer close(leaderDone)
		x.doCtx(ctx, http.MethodPost, "/v1/chat/completions", chatBody(""))
	}()
	<-started
	follower := make(chan *result, 1)
	go func() { follower <- x.chat(chatBody("")) }()
	waitFlightRefs(t, x.h, 2)
	cancel()
	<-leaderDone
	waitFlightRefs(t, x.h, 1) // the leader's watcher has left the flight
	close(release)
	wantStatus(t, <-follower, 200, "HIT")
	x.settle(t, 2)
	for _, l := range x.logs.requests(t) {
		if l["cache"] == "MISS" && l["status"] != float64(statusClientClosed) {
			t.Errorf("leader whose client left: logged status %v, want %d (%v)", l["status"], statusClientClosed, l)
		}
	}
}

// TestInlineLeaderGoneOverflowRelay: a plain leader's client that is gone (here: it half-closed
// its connection, which cancels the request's context) while a follower keeps the call alive.
// The watcher marks the leader's cursor done, yet the leader's goroutine still relays the
// overflowing answer from that cursor: the reader trims (and recycles) parts the leader is
// still writing. Whatever the leader's connection receives must be a prefix of the answer.
func TestInlineLeaderGoneOverflowRelay(t *testing.T) {
	const limit = 8 << 20               // more than the socket buffers hold: the leader blocks writing its first part
	const pieces, size = 1024, 32 << 10 // 32 MiB
	release, started := make(chan struct{}), make(chan struct{})
	var once sync.Once
	head := `{"id":"big","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"`
	tail := `"},"finish_reason":"stop"}]}`
	var want bytes.Buffer
	want.WriteString(head)
	for i := range pieces {
		want.WriteString(strings.Repeat(string(rune('A'+i%26)), size))
	}
	want.WriteString(tail)
	answer := want.Bytes()
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		io.WriteString(w, head)
		w.(http.Flusher).Flush()
		once.Do(func() { close(started) })
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		w.Write(answer[len(head):])
	})
	e := newEnv(t, up, func(o *Options) { o.MaxResponseBytes = limit })

	body := chatBody("")
	conn := rawChat(t, e.srv.Listener.Addr().String(), body)
	<-started
	follower := make(chan *result, 1)
	go func() { follower <- e.chat(body) }()
	waitFlightRefs(t, e.h, 2)
	conn.CloseWrite() // the server sees EOF: the leader's request context ends
	waitFlightRefs(t, e.h, 1)
	close(release)
	r := <-follower
	if r.err != nil || r.status != 200 || !bytes.Equal(r.body, answer) {
		t.Fatalf("follower: status %d err %v, %d bytes (want %d)", r.status, r.err, len(r.body), len(answer))
	}
	conn.SetReadDeadline(time.Now().Add(60 * time.Second)) // only a broken build waits this long
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return // nothing sent: fine for a client that left
	}
	got, rerr := io.ReadAll(resp.Body)
	t.Logf("leader: status %d, %d bytes, read error %v", resp.StatusCode, len(got), rerr)
	if !bytes.HasPrefix(answer, got) {
		i := 0
		for i < len(got) && got[i] == answer[i] {
			i++
		}
		t.Errorf("leader received %d bytes (read error %v) that are not a prefix of the answer: first difference at byte %d",
			len(got), rerr, i)
	}
}

// TestAfterWorkPanic: a panic in the work that files a clean answer after its clients
// have it (here the embedder, called by the semantic store) is logged, as it is on a streaming
// leader's call goroutine (recoverCall), never the end of the process. A plain leader's after
// work runs on a goroutine of its own (finish, f.bg) without recoverCall. Each case runs in a
// child process, as a panic there would end this one.
func TestAfterWorkPanic(t *testing.T) {
	if kind := os.Getenv("ZEST_TEST_AFTER_PANIC"); kind != "" {
		up := newUpstream(t, sseAnswer(loadSSE(t, "text.sse"), completionJSON))
		x := xNewEnv(t, up, xCfg{semantic: true, semOpts: func(o *semantic.Options) {
			o.Embedder = semantic.EmbedderFunc{N: xDim, Fn: func(context.Context, []string) ([][]float32, error) {
				panic("embedder bug")
			}}
		}})
		body := chatBody("")
		if kind == "stream" {
			body = chatBody(`"stream":true`)
		}
		r := x.chat(body) // the first: the lookup finds no partition and embeds nothing
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		x.h.Wait(context.Background())
		return
	}
	for _, kind := range []string{"stream", "plain"} {
		t.Run(kind, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestAfterWorkPanic$", "-test.count=1")
			cmd.Env = append(os.Environ(), "ZEST_TEST_AFTER_PANIC="+kind)
			out, err := cmd.CombinedOutput()
			if err != nil {
				first := string(out)
				if i := strings.Index(first, "goroutine "); i > 0 {
					first = first[:i]
				}
				t.Errorf("%s leader: the process ended: %v\n%s", kind, err, first)
			}
		})
	}
}

// TestClientGoneMidAnswerIsCut: a client whose request ends (here: it half-closes its side)
// while its streamed answer is still arriving gets its connection broken, never the clean end
// of a truncated stream; the request is logged as a client that left.
func TestClientGoneMidAnswerIsCut(t *testing.T) {
	firstSent := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}`+"\n\n")
		w.(http.Flusher).Flush()
		close(firstSent)
		<-r.Context().Done() // the rest never comes while the client is there
	})
	x := xNewEnv(t, up, xCfg{})
	body := streamBody("", "")
	conn := rawChat(t, x.srv.Listener.Addr().String(), body)
	conn.SetReadDeadline(time.Now().Add(60 * time.Second)) // only a broken build waits this long
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	<-firstSent
	first := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "data:" {
		t.Fatalf("first event: %q %v", first, err)
	}
	conn.CloseWrite() // the server sees EOF: the request's context ends
	rest, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("the stream ended cleanly after %d more bytes: a truncated answer that looks whole", len(rest))
	}
	x.settle(t, 1)
	if l := x.logs.requests(t)[0]; l["status"] != float64(statusClientClosed) || l["failure"] != "client closed the request" {
		t.Errorf("log line %v: want status %d, failure \"client closed the request\"", l, statusClientClosed)
	}
}

// TestClientGoneBeforeAnswerGetsNone: a plain client whose request ends (it half-closes its
// side) before the answer starts gets no response at all, not an empty 200.
func TestClientGoneBeforeAnswerGetsNone(t *testing.T) {
	arrived := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done()
	})
	x := xNewEnv(t, up, xCfg{})
	body := chatBody("")
	conn := rawChat(t, x.srv.Listener.Addr().String(), body)
	<-arrived
	conn.CloseWrite()
	conn.SetReadDeadline(time.Now().Add(60 * time.Second)) // only a broken build waits this long
	if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err == nil {
		t.Fatalf("a client that left got a %d response (Content-Length %d)", resp.StatusCode, resp.ContentLength)
	}
	x.settle(t, 1)
	if l := x.logs.requests(t)[0]; l["status"] != float64(statusClientClosed) {
		t.Errorf("log line %v: want status %d", l, statusClientClosed)
	}
}

// rawChat sends a chat request on a connection of its own, closed when the test ends, and
// returns the connection to read the answer from (or half-close).
func rawChat(t *testing.T, addr, body string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: zest\r\nAuthorization: Bearer sk-client-one\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	return c.(*net.TCPConn)
}

// blockingRecorder holds every Record call until release is closed.
type blockingRecorder struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blockingRecorder) Record(*replay.Record) error {
	b.entered <- struct{}{}
	<-b.release
	return nil
}

// TestRecordAfterAnswer: in record mode, a plain client has its answer before the recording is
// written (Recorder: "after the clients have the answer"), although its call ran on its own
// goroutine.
func TestRecordAfterAnswer(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	rec := &blockingRecorder{entered: make(chan struct{}, 1), release: make(chan struct{})}
	e := newEnv(t, up, func(o *Options) { o.Recorder = rec })
	got := make(chan *result, 1)
	go func() { got <- e.chat(chatBody("")) }()
	<-rec.entered
	select {
	case r := <-got:
		wantStatus(t, r, 200, "MISS")
	case <-time.After(60 * time.Second): // only a broken build waits this long
		t.Error("the client is still waiting for its answer while the recording is written")
	}
	close(rec.release)
	e.h.Wait(context.Background())
}
