package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
)

// bigStream answers a streamed request with n content chunks of size bytes each (and a plain
// request with a JSON answer of about n*size bytes), flushing as it goes.
func bigStream(n, size int) http.HandlerFunc {
	piece := strings.Repeat("Z", size)
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fl := w.(http.Flusher)
		if !isStreamRequest(body) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"id":"big","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"`)
			for range n {
				io.WriteString(w, piece)
			}
			fmt.Fprint(w, `"},"finish_reason":"stop"}]}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		ev := []byte(`data: {"id":"big","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"` + piece + `"}}]}` + "\n\n")
		for i := range n {
			w.Write(ev)
			if i%16 == 0 {
				fl.Flush()
			}
		}
		fmt.Fprint(w, `data: {"id":"big","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n")
		fmt.Fprint(w, "data: [DONE]\n\n")
	}
}

// TestLargeAnswerRelayedNotKept: an answer far above max_response_bytes reaches its client
// whole, is never stored, and the flight never holds much more than the cap.
func TestLargeAnswerRelayedNotKept(t *testing.T) {
	const limit = 256 << 10
	const chunks, size = 4000, 1000 // ~4 MB of content, 16x the cap
	for _, stream := range []bool{true, false} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			up := newUpstream(t, bigStream(chunks, size))
			e := newEnv(t, up, func(o *Options) { o.MaxResponseBytes = limit })
			extra := ""
			if stream {
				extra = `"stream":true`
			}
			for range 2 {
				r := e.chat(chatBody(extra))
				if r.err != nil || r.status != 200 {
					t.Fatalf("status %d err %v", r.status, r.err)
				}
				if got := bytes.Count(r.body, []byte("Z")); got != chunks*size {
					t.Fatalf("client got %d bytes of content, want %d", got, chunks*size)
				}
				if stream && !bytes.HasSuffix(r.body, []byte("data: [DONE]\n\n")) {
					t.Error("the relayed stream does not end with [DONE]")
				}
				wantStatus(t, r, 200, "MISS")
				// A live stream's headers leave before its size is known; a plain answer's not.
				if !stream && r.header.Get("X-Cache-Key") != "" {
					t.Error("X-Cache-Key on an answer too large to store")
				}
			}
			wantCalls(t, up, 2)
			e.h.Wait(t.Context())
			if p := e.h.Stats().PeakResponseBytes; p > limit+64<<10 {
				t.Errorf("a flight held %d bytes, cap %d", p, limit)
			}
		})
	}
}

// TestLargeAnswerFollowers: clients that joined one call before its answer outgrew the cap
// each get the whole stream; a plain follower of it gets a clear 502.
func TestLargeAnswerFollowers(t *testing.T) {
	const limit = 128 << 10
	release, started := make(chan struct{}), make(chan struct{})
	up := newUpstream(t, heldAnswer(started, release, bigStream(2000, 1000)))
	e := newEnv(t, up, func(o *Options) { o.MaxResponseBytes = limit })
	results := chatTogether(t, e, started, release,
		chatBody(`"stream":true`), chatBody(`"stream":true`), chatBody(`"stream":true`), chatBody(""))
	wantCalls(t, up, 1)
	for i, r := range results[:3] {
		if r.err != nil || bytes.Count(r.body, []byte("Z")) != 2000*1000 {
			t.Errorf("stream client %d: err %v, %d bytes of content", i, r.err, bytes.Count(r.body, []byte("Z")))
		}
	}
	if r := results[3]; r.status != http.StatusBadGateway || !strings.Contains(string(r.body), "max_response_bytes") {
		t.Errorf("plain follower: status %d %s, want a 502 naming max_response_bytes", r.status, r.body)
	}
	e.h.Wait(t.Context())
	if p := e.h.Stats().PeakResponseBytes; p > limit+64<<10 {
		t.Errorf("a flight held %d bytes, cap %d", p, limit)
	}
}

// TestLargeAnswerReusesBuffers: relaying an answer far above the cap makes less garbage than its size, so
// the collector does not let the heap grow by it: the reader refills the buffers of the parts
// every client has written. (Each event was a new allocation: a 200 MB stream made 200 MB of
// garbage and grew an idle process by the collector's whole headroom.)
func TestLargeAnswerReusesBuffers(t *testing.T) {
	const limit = 256 << 10
	const chunks, size = 64000, 1000 // ~64 MB of content, 256x the cap
	up := newUpstream(t, bigStream(chunks, size))
	e := newEnv(t, up, func(o *Options) { o.MaxResponseBytes = limit })
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/chat/completions", strings.NewReader(chatBody(`"stream":true`)))
	req.Header.Set("Authorization", "Bearer sk-test")
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n < chunks*size {
		t.Fatalf("read %d bytes (%v), want at least %d", n, err, chunks*size)
	}
	runtime.ReadMemStats(&after)
	// Without the reuse every event is a new allocation: more than the stream itself. The
	// bound leaves room for what the HTTP client and server allocate, which the race
	// detector's sync.Pool (dropping a share of what is put back) inflates.
	if garbage := after.TotalAlloc - before.TotalAlloc; garbage > chunks*size/2 {
		t.Errorf("relaying %d MB allocated %d MB", n>>20, garbage>>20)
	}
}

// TestLargeStreamByteExact: a stream of events of many sizes, each telling its place, reaches
// a leader and its followers byte for byte, past the flight's cap too, where the parts every
// client has written are reused for new events: a reused part never reaches into another.
func TestLargeStreamByteExact(t *testing.T) {
	const limit = 64 << 10
	const n = 6000
	var want bytes.Buffer
	for i := range n {
		fmt.Fprintf(&want, "data: {\"id\":\"big\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"%d:%s\"}}]}\n\n",
			i, strings.Repeat("q", i*7919%301))
	}
	want.WriteString("data: [DONE]\n\n")
	events := bytes.SplitAfter(want.Bytes(), []byte("\n\n"))
	release, started := make(chan struct{}), make(chan struct{})
	up := newUpstream(t, heldAnswer(started, release, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i, ev := range events {
			w.Write(ev)
			if i%7 == 0 {
				w.(http.Flusher).Flush()
			}
		}
	}))
	e := newEnv(t, up, func(o *Options) { o.MaxResponseBytes = limit })
	stream := chatBody(`"stream":true`)
	results := chatTogether(t, e, started, release, stream, stream, stream)
	wantCalls(t, up, 1)
	for i, r := range results {
		if r.err != nil || !bytes.Equal(r.body, want.Bytes()) {
			t.Errorf("client %d: err %v, %d bytes, want the upstream's %d byte for byte", i, r.err, len(r.body), want.Len())
		}
	}
}
