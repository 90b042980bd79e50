package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var goldenStreams = []string{"text.sse", "nousage.sse", "tools.sse", "n2.sse", "reasoning.sse"}

// TestStreamGolden: a streamed miss reaches the client event for event, is stored, and the
// stored entry serves stream and non-stream hits with the same content.
func TestStreamGolden(t *testing.T) {
	checkGoroutines(t)
	for _, name := range goldenStreams {
		t.Run(name, func(t *testing.T) {
			f := loadSSE(t, name)
			up := newUpstream(t, sseAnswer(f, `{"error":"the test wanted a stream"}`))
			e := newEnv(t, up, nil)
			full := viewOfStream(t, f.payloads) // the answer, usage included when the upstream sends one

			miss := e.chat(streamBody("", ""))
			wantStatus(t, miss, 200, "MISS")
			if ct := miss.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
				t.Errorf("MISS Content-Type = %q", ct)
			}
			got, done := ssePayloads(t, miss.body)
			if !done {
				t.Error("MISS stream lacks data: [DONE]")
			}
			if err := equalStrings(got, f.clientPayloads(false)); err != nil {
				t.Errorf("MISS events differ from the upstream's: %v", err)
			}
			if !includeUsageOf(up.last().Body) {
				t.Errorf("zest did not ask the upstream for usage: %s", up.last().Body)
			}
			wantView(t, "MISS stream", viewOfStream(t, got), full.noUsage())

			hit := e.chat(streamBody("", ""))
			wantStatus(t, hit, 200, "HIT")
			if ct := hit.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
				t.Errorf("stream HIT Content-Type = %q", ct)
			}
			got, done = ssePayloads(t, hit.body)
			if !done {
				t.Error("HIT stream lacks data: [DONE]")
			}
			for _, p := range got {
				if isUsageChunk(p) {
					t.Errorf("stream HIT without include_usage has a usage chunk: %s", p)
				}
			}
			wantView(t, "stream HIT", viewOfStream(t, got), full.noUsage())

			withUsage := e.chat(streamBody("", `{"include_usage":true}`))
			wantStatus(t, withUsage, 200, "HIT")
			got, _ = ssePayloads(t, withUsage.body)
			wantView(t, "stream HIT with include_usage", viewOfStream(t, got), full)
			if full.Usage != nil && !isUsageChunk(got[len(got)-1]) {
				t.Errorf("last chunk is not the usage chunk: %s", got[len(got)-1])
			}

			plain := e.chat(chatBody(""))
			wantStatus(t, plain, 200, "HIT")
			if ct := plain.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("non-stream HIT Content-Type = %q", ct)
			}
			wantView(t, "non-stream HIT", viewOfCompletion(t, plain.body), full)
			wantCalls(t, up, 1)
		})
	}
}

// TestStreamIncludeUsage: zest asks the upstream for usage; only a client that asked sees it.
func TestStreamIncludeUsage(t *testing.T) {
	f := loadSSE(t, "text.sse")
	tests := []struct {
		name, so  string
		wantUsage bool
	}{
		{"absent", "", false},
		{"false", `{"include_usage":false}`, false},
		{"true", `{"include_usage":true}`, true},
		{"other members kept", `{"continuous_usage_stats":false}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, sseAnswer(f, ""))
			e := newEnv(t, up, nil)
			r := e.chat(streamBody(`"cache_control":{"type":"no_store"}`, tc.so))
			wantStatus(t, r, 200, "MISS")
			got, done := ssePayloads(t, r.body)
			if !done {
				t.Error("no [DONE]")
			}
			if err := equalStrings(got, f.clientPayloads(tc.wantUsage)); err != nil {
				t.Error(err)
			}
			ub := up.last().Body
			if !includeUsageOf(ub) {
				t.Errorf("upstream was not asked for usage: %s", ub)
			}
			if strings.Contains(tc.so, "continuous_usage_stats") && !strings.Contains(string(ub), `"continuous_usage_stats":false`) {
				t.Errorf("upstream lost a stream_options member: %s", ub)
			}
			if strings.Contains(string(ub), "cache_control") {
				t.Errorf("cache_control went upstream: %s", ub)
			}
			if !json.Valid(ub) {
				t.Errorf("upstream body is not JSON: %s", ub)
			}
		})
	}
}

// TestStoredJSONReplaysAsSSE: an answer stored from a plain miss serves stream clients valid SSE.
func TestStoredJSONReplaysAsSSE(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	e := newEnv(t, up, nil)
	wantStatus(t, e.chat(chatBody("")), 200, "MISS")
	want := viewOfCompletion(t, []byte(completionJSON))
	for _, so := range []string{"", `{"include_usage":true}`} {
		r := e.chat(streamBody("", so))
		wantStatus(t, r, 200, "HIT")
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
			t.Errorf("Content-Type = %q", ct)
		}
		got, done := ssePayloads(t, r.body)
		if !done {
			t.Error("replay lacks [DONE]")
		}
		if so == "" {
			wantView(t, "replay", viewOfStream(t, got), want.noUsage())
		} else {
			wantView(t, "replay with usage", viewOfStream(t, got), want)
		}
	}
	wantCalls(t, up, 1)
}

// badStream is an upstream that misbehaves on its first call and answers f cleanly after.
func badStream(f sseFile, first func(w http.ResponseWriter, r *http.Request, fl http.Flusher)) http.HandlerFunc {
	var calls atomic.Int32
	good := sseAnswer(f, completionJSON)
	return func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) > 1 {
			good(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		fl := w.(http.Flusher)
		fl.Flush()
		first(w, r, fl)
	}
}

func writeEvents(w io.Writer, fl http.Flusher, evs ...string) {
	for _, ev := range evs {
		io.WriteString(w, ev)
		fl.Flush()
	}
}

// TestBrokenStreamsNotStored: a stream that is cut, carries an error, or outlives the timeout
// is not stored; the next request is a miss that goes upstream.
func TestBrokenStreamsNotStored(t *testing.T) {
	checkGoroutines(t)
	f := loadSSE(t, "text.sse")
	head := f.events[:3]
	tests := []struct {
		name      string
		first     func(w http.ResponseWriter, r *http.Request, fl http.Flusher)
		clientErr bool   // the client sees a broken connection
		wantEvent string // an event the stream client must receive
	}{
		{"ends without DONE", func(w http.ResponseWriter, r *http.Request, fl http.Flusher) {
			writeEvents(w, fl, head...)
		}, false, ""},
		{"connection dropped", func(w http.ResponseWriter, r *http.Request, fl http.Flusher) {
			writeEvents(w, fl, head...)
			panic(http.ErrAbortHandler)
		}, true, ""},
		{"error data", func(w http.ResponseWriter, r *http.Request, fl http.Flusher) {
			writeEvents(w, fl, head...)
			writeEvents(w, fl, `data: {"error":{"message":"overloaded","type":"server_error","code":null}}`+"\n\n", "data: [DONE]\n\n")
		}, false, `{"error":{"message":"overloaded","type":"server_error","code":null}}`},
		{"event error", func(w http.ResponseWriter, r *http.Request, fl http.Flusher) {
			writeEvents(w, fl, head...)
			writeEvents(w, fl, "event: error\ndata: {\"message\":\"overloaded\"}\n\n", "data: [DONE]\n\n")
		}, false, ""},
		{"no finish_reason", func(w http.ResponseWriter, r *http.Request, fl http.Flusher) {
			writeEvents(w, fl, head...)
			writeEvents(w, fl, "data: [DONE]\n\n")
		}, false, ""},
		{"hangs past the timeout", func(w http.ResponseWriter, r *http.Request, fl http.Flusher) {
			writeEvents(w, fl, head...)
			<-r.Context().Done()
		}, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, badStream(f, tc.first))
			e := newEnv(t, up, func(o *Options) { o.Timeout = 300 * time.Millisecond })
			body := streamBody("", "")
			r := e.chat(body)
			if tc.clientErr && r.err == nil {
				t.Errorf("the client got a clean end of a broken stream: %q", r.body)
			}
			if !tc.clientErr && r.err != nil {
				t.Errorf("read error: %v", r.err)
			}
			if r.status != 200 || r.header.Get("X-Cache-Status") != "MISS" {
				t.Errorf("status %d %q", r.status, r.header.Get("X-Cache-Status"))
			}
			got, _ := ssePayloads(t, r.body)
			if len(got) < len(head) {
				t.Errorf("client got %d events, want at least %d", len(got), len(head))
			}
			if tc.wantEvent != "" && (len(got) == 0 || got[len(got)-1] != tc.wantEvent) {
				t.Errorf("client did not get the error event; got %q", got)
			}
			r = e.chat(body)
			wantStatus(t, r, 200, "MISS")
			wantCalls(t, up, 2)
			wantStatus(t, e.chat(body), 200, "HIT") // the clean answer is stored
		})
	}
}

// TestBrokenStreamPlainClient: a non-stream client whose coalesced leader's stream broke gets
// an error in OpenAI's envelope (504 for a timeout, else 502), and nothing is stored.
func TestBrokenStreamPlainClient(t *testing.T) {
	f := loadSSE(t, "text.sse")
	head := f.events[:3]
	tests := []struct {
		name   string
		first  func(w http.ResponseWriter, r *http.Request, fl http.Flusher)
		status int
	}{
		{"ends without DONE", func(w http.ResponseWriter, r *http.Request, fl http.Flusher) { writeEvents(w, fl, head...) }, 502},
		{"connection dropped", func(w http.ResponseWriter, r *http.Request, fl http.Flusher) {
			writeEvents(w, fl, head...)
			panic(http.ErrAbortHandler)
		}, 502},
		{"hangs past the timeout", func(w http.ResponseWriter, r *http.Request, fl http.Flusher) {
			writeEvents(w, fl, head...)
			<-r.Context().Done()
		}, 504},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// An upstream that streams even to a plain request (some gateways do).
			var calls atomic.Int32
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				w.WriteHeader(200)
				fl := w.(http.Flusher)
				if calls.Add(1) == 1 {
					tc.first(w, r, fl)
					return
				}
				writeEvents(w, fl, f.events...)
			})
			e := newEnv(t, up, func(o *Options) { o.Timeout = 300 * time.Millisecond })
			r := e.chat(chatBody(""))
			wantError(t, r, tc.status, "server_error", "")
			wantStatus(t, e.chat(chatBody("")), 200, "MISS")
			wantStatus(t, e.chat(chatBody("")), 200, "HIT")
			wantCalls(t, up, 2)
		})
	}
}

// TestClientCancel: a client that hangs up before the answer is complete cancels the upstream
// call (it was the only client) and leaves no entry; a stream client gets each event as it
// comes, before the upstream sends the next.
func TestClientCancel(t *testing.T) {
	checkGoroutines(t)
	f := loadSSE(t, "text.sse")
	for _, tc := range []struct {
		name   string
		stream bool
		body   string
	}{
		{"stream", true, streamBody("", "")},
		{"plain", false, chatBody("")},
		// A call nobody may join runs on the client's own context.
		{"plain no_store", false, chatBody(`"cache_control":{"type":"no_store"}`)},
		{"stream no_store", true, streamBody(`"cache_control":{"type":"no_store"}`, "")},
	} {
		stream, body := tc.stream, tc.body
		t.Run(tc.name, func(t *testing.T) {
			cancelled, started := make(chan struct{}), make(chan struct{})
			var calls atomic.Int32
			good := sseAnswer(f, completionJSON)
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) > 1 {
					good(w, r)
					return
				}
				close(started)
				w.Header().Set("Content-Type", "text/event-stream")
				writeEvents(w, w.(http.Flusher), f.events[:2]...)
				select {
				case <-r.Context().Done():
					close(cancelled)
				case <-time.After(20 * time.Second):
				}
			})
			e := newEnv(t, up, nil)

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.URL+"/v1/chat/completions", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer sk-client-one")
			if stream {
				resp, err := e.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				// The first event arrives while the upstream still holds the rest.
				line, err := bufio.NewReader(resp.Body).ReadString('\n')
				if err != nil || !strings.HasPrefix(line, "data: {") {
					t.Fatalf("first line %q, %v", line, err)
				}
				cancel()
				resp.Body.Close()
			} else {
				done := make(chan struct{})
				go func() {
					defer close(done)
					if resp, err := e.client.Do(req); err == nil {
						resp.Body.Close()
					}
				}()
				<-started
				cancel()
				<-done
			}
			select {
			case <-cancelled:
			case <-time.After(15 * time.Second):
				t.Fatal("the upstream call was not cancelled after its only client left")
			}
			r := e.chat(body)
			wantStatus(t, r, 200, "MISS")
			wantCalls(t, up, 2)
		})
	}
}

// TestStreamHeadAtOnce: a streamed miss's status and headers reach the client as soon as the
// upstream sends them, before its first event: a client sees the call is under way while a
// slow model thinks. The events then follow as they come.
func TestStreamHeadAtOnce(t *testing.T) {
	checkGoroutines(t)
	f := loadSSE(t, "text.sse")
	release := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		writeEvents(w, w.(http.Flusher), f.events...)
	})
	e := newEnv(t, up, nil)
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/chat/completions", strings.NewReader(streamBody("", `{"include_usage":true}`)))
	req.Header.Set("Authorization", "Bearer sk-client-one")
	type answer struct {
		resp *http.Response
		err  error
	}
	got := make(chan answer, 1)
	go func() { resp, err := e.client.Do(req); got <- answer{resp, err} }()
	var a answer
	select {
	case a = <-got: // the head, while the upstream holds every event
		close(release)
	case <-time.After(30 * time.Second): // only a broken build waits this long
		close(release)
		t.Fatal("the head waited for the first event")
	}
	resp, err := a.resp, a.err
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Cache-Status") != "MISS" ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("head: %d, X-Cache-Status %q, Content-Type %q", resp.StatusCode,
			resp.Header.Get("X-Cache-Status"), resp.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(body), strings.Join(f.events, ""); got != want {
		t.Errorf("stream:\n%s\nwant:\n%s", got, want)
	}
	wantStatus(t, e.chat(streamBody("", `{"include_usage":true}`)), 200, "HIT")
}

// TestPassThroughStreams: a streamed answer on a non-chat path is relayed as it arrives.
func TestPassThroughStreams(t *testing.T) {
	checkGoroutines(t)
	ack := make(chan struct{})
	var stalled atomic.Bool
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		writeEvents(w, fl, "event: response.created\ndata: {\"type\":\"response.created\"}\n\n")
		select {
		case <-ack:
		case <-time.After(15 * time.Second):
			stalled.Store(true)
		}
		writeEvents(w, fl, "event: response.completed\ndata: {\"type\":\"response.completed\"}\n\n")
	})
	e := newEnv(t, up, nil)
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/responses", strings.NewReader(`{"model":"m","input":"hi","stream":true}`))
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || line != "event: response.created\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	close(ack)
	rest, _ := io.ReadAll(br)
	if stalled.Load() {
		t.Error("zest held back the first event until the upstream sent more")
	}
	if !strings.Contains(string(rest), "response.completed") {
		t.Errorf("rest of the stream: %q", rest)
	}
}

// TestStreamOptionsNull: "stream_options":null is the same as absent: zest still asks the
// upstream for usage, so the stored answer carries it.
func TestStreamOptionsNull(t *testing.T) {
	f := loadSSE(t, "text.sse")
	up := newUpstream(t, sseAnswer(f, completionJSON))
	e := newEnv(t, up, nil)
	r := e.chat(streamBody("", "null"))
	wantStatus(t, r, 200, "MISS")
	if ub := up.last().Body; !includeUsageOf(ub) || !json.Valid(ub) {
		t.Errorf("upstream was not asked for usage: %s", ub)
	}
	plain := e.chat(chatBody(""))
	wantStatus(t, plain, 200, "HIT")
	if v := viewOfCompletion(t, plain.body); v.Usage == nil {
		t.Error("the stored answer has no usage")
	}
}

// TestNoCache: without an exact cache every chat request goes upstream, marked BYPASS.
func TestNoCache(t *testing.T) {
	f := loadSSE(t, "text.sse")
	up := newUpstream(t, sseAnswer(f, completionJSON))
	e := newEnv(t, up, func(o *Options) { o.Cache = nil })
	for i := 1; i <= 2; i++ {
		r := e.chat(chatBody(""))
		wantStatus(t, r, 200, "BYPASS")
		if string(r.body) != completionJSON {
			t.Errorf("body %s", r.body)
		}
		s := e.chat(streamBody("", ""))
		wantStatus(t, s, 200, "BYPASS")
		got, done := ssePayloads(t, s.body)
		if !done {
			t.Error("no [DONE]")
		}
		if err := equalStrings(got, f.clientPayloads(false)); err != nil {
			t.Error(err)
		}
		wantCalls(t, up, 2*i)
	}
}
