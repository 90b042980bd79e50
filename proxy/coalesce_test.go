package proxy

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// client kinds in a coalescing test.
const (
	kindPlain = iota
	kindStream
	kindStreamUsage
)

func kindBody(kind int) string {
	switch kind {
	case kindStream:
		return streamBody("", "")
	case kindStreamUsage:
		return streamBody("", `{"include_usage":true}`)
	}
	return chatBody("")
}

// heldUpstream answers f (stream) or completionJSON (plain) once release is closed.
func heldUpstream(t *testing.T, f sseFile, release <-chan struct{}, started chan<- struct{}) *upstream {
	return newUpstream(t, heldAnswer(started, release, sseAnswer(f, completionJSON)))
}

// checkAnswer checks one client's answer against the one upstream answer.
func checkAnswer(t *testing.T, i, kind int, r *result, want view) {
	t.Helper()
	if r.err != nil || r.status != 200 {
		t.Errorf("client %d: status %d, err %v: %s", i, r.status, r.err, r.body)
		return
	}
	if kind == kindPlain {
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("client %d: Content-Type %q", i, ct)
		}
		wantView(t, "plain client", viewOfCompletion(t, r.body), want)
		return
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("client %d: Content-Type %q", i, ct)
	}
	got, done := ssePayloads(t, r.body)
	if !done {
		t.Errorf("client %d: no [DONE]", i)
	}
	if kind == kindStream {
		for _, p := range got {
			if isUsageChunk(p) {
				t.Errorf("client %d did not ask for usage and got %s", i, p)
			}
		}
		want = want.noUsage()
	}
	wantView(t, "stream client", viewOfStream(t, got), want)
}

// TestCoalesce: 100 concurrent identical requests, stream and plain mixed, make one upstream
// call; every client gets the same answer in its own form; one MISS, the rest coalesced HITs.
func TestCoalesce(t *testing.T) {
	checkGoroutines(t)
	f := loadSSE(t, "text.sse")
	tests := []struct {
		name   string
		leader int // kind of a leader sent first; -1 = all 100 at once
	}{
		{"all at once", -1},
		{"plain leader", kindPlain},
		{"stream leader", kindStream},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const n = 100
			release, started := make(chan struct{}), make(chan struct{})
			up := heldUpstream(t, f, release, started)
			e := newEnv(t, up, nil)
			results := make([]*result, n)
			kinds := make([]int, n)
			var wg sync.WaitGroup
			gate := make(chan struct{})
			for i := range n {
				kinds[i] = i % 3
				if i == 0 && tc.leader >= 0 {
					kinds[i] = tc.leader
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					if i > 0 || tc.leader < 0 {
						<-gate
					}
					results[i] = e.chat(kindBody(kinds[i]))
				}()
				if i == 0 && tc.leader >= 0 {
					<-started
				}
			}
			close(gate)
			waitFlightRefs(t, e.h, n)
			close(release)
			wg.Wait()

			wantCalls(t, up, 1)
			want := viewOfCompletion(t, []byte(completionJSON))
			if isStreamRequest(up.last().Body) {
				want = viewOfStream(t, f.payloads)
			}
			misses, key := 0, results[0].header.Get("X-Cache-Key")
			for i, r := range results {
				checkAnswer(t, i, kinds[i], r, want)
				switch st, typ := r.header.Get("X-Cache-Status"), r.header.Get("X-Cache-Type"); {
				case st == "MISS":
					misses++
				case st != "HIT" || typ != "coalesced":
					t.Errorf("client %d: X-Cache-Status %q X-Cache-Type %q, want HIT coalesced", i, st, typ)
				case r.header.Get("Age") != "0":
					t.Errorf("client %d: coalesced hit with Age %q, want 0", i, r.header.Get("Age"))
				}
				if r.header.Get("X-Cache-Key") != key {
					t.Errorf("client %d: X-Cache-Key %q, want %q", i, r.header.Get("X-Cache-Key"), key)
				}
			}
			if misses != 1 {
				t.Errorf("%d MISSes, want 1", misses)
			}
			if tc.leader >= 0 && results[0].header.Get("X-Cache-Status") != "MISS" {
				t.Error("the first request is not the MISS")
			}
			for _, kind := range []int{kindPlain, kindStream, kindStreamUsage} {
				r := e.chat(kindBody(kind))
				wantStatus(t, r, 200, "HIT")
				if r.header.Get("X-Cache-Type") != "exact" {
					t.Errorf("after the flight: X-Cache-Type %q", r.header.Get("X-Cache-Type"))
				}
				checkAnswer(t, -1, kind, r, want)
			}
			wantCalls(t, up, 1)
		})
	}
}

// TestCoalesceLeaderHangsUp: the leader's client leaving does not cancel the call its
// followers wait on; they get the whole answer and it is stored. Both kinds of leader run the
// call on their own goroutine; a streaming one relays it live and hands the rest of the read
// to a goroutine of its own when its client leaves: both are covered.
func TestCoalesceLeaderHangsUp(t *testing.T) {
	checkGoroutines(t)
	f := loadSSE(t, "tools.sse")
	for _, leaderKind := range []int{kindStream, kindPlain} {
		name := map[int]string{kindStream: "stream-leader", kindPlain: "plain-leader"}[leaderKind]
		t.Run(name, func(t *testing.T) {
			release, started := make(chan struct{}), make(chan struct{})
			var upCancelled, once atomic.Bool
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				fl := w.(http.Flusher)
				writeEvents(w, fl, f.events[:2]...)
				if once.CompareAndSwap(false, true) {
					close(started)
				}
				select {
				case <-release:
				case <-r.Context().Done():
					upCancelled.Store(true)
					return
				}
				// A plain request's answer carries usage, as a real upstream's JSON does.
				body := mustRead(r.Body)
				usage := includeUsageOf(body) || !isStreamRequest(body)
				for _, ev := range f.events[2:] {
					if !usage && isUsageChunk(strings.TrimSuffix(strings.TrimPrefix(ev, "data: "), "\n\n")) {
						continue
					}
					writeEvents(w, fl, ev)
				}
			})
			e := newEnv(t, up, nil)

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.URL+"/v1/chat/completions", strings.NewReader(kindBody(leaderKind)))
			req.Header.Set("Authorization", "Bearer sk-client-one")
			leaderDone := make(chan struct{})
			if leaderKind == kindStream {
				close(leaderDone)
				resp, err := e.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || !strings.HasPrefix(line, "data: ") {
					t.Fatalf("leader's first line %q, %v", line, err)
				}
			} else {
				go func() {
					defer close(leaderDone)
					if resp, err := e.client.Do(req); err == nil {
						resp.Body.Close()
					}
				}()
				<-started
			}

			const followers = 9
			results := make([]*result, followers)
			var wg sync.WaitGroup
			for i := range followers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					results[i] = e.chat(kindBody(i % 3))
				}()
			}
			waitFlightRefs(t, e.h, followers+1)
			cancel()
			<-leaderDone
			waitFlightRefs(t, e.h, followers)
			close(release)
			wg.Wait()

			if upCancelled.Load() {
				t.Error("the upstream call was cancelled when the leader's client left")
			}
			want := viewOfStream(t, f.payloads)
			for i, r := range results {
				checkAnswer(t, i, i%3, r, want)
			}
			wantCalls(t, up, 1)
			wantStatus(t, e.chat(chatBody("")), 200, "HIT")
			wantCalls(t, up, 1)
		})
	}
}

func mustRead(r io.Reader) []byte { b, _ := io.ReadAll(r); return b }

// TestCoalesceScope: requests in different namespaces, and any request with NoCoalesce, do
// not share an upstream call.
func TestCoalesceScope(t *testing.T) {
	checkGoroutines(t)
	tests := []struct {
		name   string
		noCo   bool
		tokens []string
		calls  int
	}{
		{"two tenants", false, []string{"sk-a", "sk-b"}, 2},
		{"one tenant", false, []string{"sk-a", "sk-a", "sk-a"}, 1},
		{"NoCoalesce", true, []string{"sk-a", "sk-a", "sk-a"}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
				jsonAnswer(200, completionJSON)(w, r)
			})
			e := newEnv(t, up, func(o *Options) { o.NoCoalesce = tc.noCo })
			var wg sync.WaitGroup
			for _, tok := range tc.tokens {
				wg.Add(1)
				go func() {
					defer wg.Done()
					e.chat(chatBody(""), withToken(tok))
				}()
			}
			deadline := time.Now().Add(20 * time.Second)
			for up.count() < tc.calls && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if !tc.noCo && tc.calls == 1 {
				waitFlightRefs(t, e.h, len(tc.tokens))
			}
			close(release)
			wg.Wait()
			wantCalls(t, up, tc.calls)
		})
	}
}
