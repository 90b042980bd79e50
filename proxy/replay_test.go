package proxy

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zest-proxy/zest/ratelimit"
	"github.com/zest-proxy/zest/replay"
	"github.com/zest-proxy/zest/semantic"
)

// fakeSleeper is ReplayOptions.Sleep without waiting: it notes every wait and, with a clock,
// moves it on by that much, so the pacing of a replay is checked without real time.
type fakeSleeper struct {
	mu    sync.Mutex
	clock *fakeClock
	waits []time.Duration
}

func (s *fakeSleeper) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	if s.clock != nil {
		s.clock.Advance(d)
	}
	return ctx.Err()
}

func (s *fakeSleeper) total() (n int, sum time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.waits {
		sum += d
	}
	return len(s.waits), sum
}

// record runs a recording zest in front of up, sends bodies (each once), and returns the
// records the file holds.
func record(t testing.TB, up *upstream, path string, mod func(*Options), bodies ...string) []replay.Record {
	t.Helper()
	w, err := replay.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, up, func(o *Options) {
		o.Recorder = w
		if mod != nil {
			mod(o)
		}
	})
	for _, b := range bodies {
		wantStatus(t, e.chat(b), http.StatusOK, "MISS")
	}
	e.h.Wait(context.Background()) // the records are written after the clients have the answers
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	recs, bad, err := replay.ReadFile(path)
	if err != nil || len(bad) > 0 {
		t.Fatalf("reading the recording: %v %v", err, bad)
	}
	return recs
}

// replayEnv is zest replaying book in front of up (which it must not call), with a sleeper
// on zest's fake clock.
func replayEnv(t testing.TB, up *upstream, book *replay.Book, speed float64, miss string, mod func(*Options)) (*env, *fakeSleeper) {
	t.Helper()
	s := &fakeSleeper{}
	e := newEnv(t, up, func(o *Options) {
		o.Replay = &ReplayOptions{Book: book, Speed: speed, Miss: miss, Sleep: s.Sleep}
		if mod != nil {
			mod(o)
		}
	})
	s.clock = e.clock
	return e, s
}

var recNSRe = regexp.MustCompile(`^k:[0-9a-f]{64}$`)

// TestRecordReplay: answers recorded against an upstream (plain, streamed, with tool calls)
// are replayed by a new zest from the file with the same content, at the recorded pace, and
// the upstream is never called in replay.
func TestRecordReplay(t *testing.T) {
	tests := []struct {
		name string
		sse  string // golden stream, "" for a plain JSON answer
	}{
		{"plain", ""},
		{"stream", "text.sse"},
		{"tools", "tools.sse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var handler http.HandlerFunc = jsonAnswer(200, completionJSON)
			body := chatBody("")
			var f sseFile
			if tt.sse != "" {
				f = loadSSE(t, tt.sse)
				handler = sseAnswer(f, `{"error":"the test wanted a stream"}`)
				body = streamBody("", "")
			}
			up := newUpstream(t, handler)
			path := filepath.Join(t.TempDir(), "rec.jsonl")
			recs := record(t, up, path, nil, body)
			if len(recs) != 1 {
				t.Fatalf("%d records, want 1", len(recs))
			}
			rec := recs[0]
			raw, _ := os.ReadFile(path)
			if bytes.Contains(raw, []byte("sk-client-one")) {
				t.Error("the recording holds the client's raw API key")
			}
			if !recNSRe.MatchString(rec.Namespace) || len(rec.Key) != 64 || rec.Model != "gpt-4o-mini" || rec.TTL != 3600 {
				t.Errorf("record identity: %+v", rec)
			}
			if rec.Stream != (tt.sse != "") {
				t.Errorf("Stream = %v", rec.Stream)
			}
			if tt.sse != "" && len(rec.Gaps)+1 != len(f.events) {
				t.Errorf("%d gaps for %d upstream events", len(rec.Gaps), len(f.events))
			}
			calls := up.count()

			// A new zest (a restart) replays the file.
			e, s := replayEnv(t, up, replay.NewBook(recs), 1, "", nil)
			plain := e.chat(chatBody(""))
			wantStatus(t, plain, http.StatusOK, "HIT")
			if !bytes.Equal(plain.body, rec.Completion) {
				t.Errorf("replayed JSON differs from the recording:\n got %s\nwant %s", plain.body, rec.Completion)
			}
			if tt.sse == "" && string(plain.body) != completionJSON {
				t.Errorf("replayed JSON differs from the upstream's answer: %s", plain.body)
			}
			for k, v := range map[string]string{"X-Cache-Type": "replay", "X-Cache-Key": rec.Key, "X-Zest-Replay": "recorded"} {
				if got := plain.header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			// The JSON answer comes once the recorded answer was complete.
			_, at := rec.Schedule(1, 1)
			if n, sum := s.total(); n != 1 || sum != at[0] {
				t.Errorf("JSON replay waited %d times, %v in all; want once, %v", n, sum, at[0])
			}

			st := e.chat(streamBody("", ""))
			wantStatus(t, st, http.StatusOK, "HIT")
			got, done := ssePayloads(t, st.body)
			if !done {
				t.Error("replayed stream lacks [DONE]")
			}
			want := viewOfCompletion(t, rec.Completion).noUsage()
			wantView(t, "replayed stream", viewOfStream(t, got), want)
			if tt.sse != "" {
				wantView(t, "replayed stream vs upstream", viewOfStream(t, got), viewOfStream(t, f.payloads).noUsage())
			}
			wantCalls(t, up, calls)
		})
	}
}

// bookWithTiming records one streamed answer and gives it a known timing: headers at 5 ms,
// events at 100, 150, 250 and 400 ms.
func bookWithTiming(t *testing.T, up *upstream) (*replay.Book, *replay.Record) {
	t.Helper()
	recs := record(t, up, filepath.Join(t.TempDir(), "rec.jsonl"), nil, streamBody("", ""))
	recs[0].TTFB, recs[0].TTFT, recs[0].Gaps, recs[0].Total = 5, 100, []float64{50, 100, 150}, 400
	b := replay.NewBook(recs)
	r, _ := b.Lookup(recs[0].Key)
	return b, r
}

// TestReplayPacing: a replayed stream sleeps from event to event on the recorded schedule,
// scaled by the speed; speed 0 never sleeps.
func TestReplayPacing(t *testing.T) {
	up := newUpstream(t, sseAnswer(loadSSE(t, "text.sse"), "{}"))
	book, rec := bookWithTiming(t, up)
	for _, speed := range []float64{1, 2, 0} {
		t.Run("speed", func(t *testing.T) {
			e, s := replayEnv(t, up, book, speed, "", nil)
			r := e.chat(streamBody("", ""))
			wantStatus(t, r, http.StatusOK, "HIT")
			payloads, _ := ssePayloads(t, r.body)
			head, at := rec.Schedule(len(payloads)+1, speed) // [DONE] is an event too
			var want []time.Duration
			prev := time.Duration(0)
			for _, d := range append([]time.Duration{head}, at...) {
				if d > prev {
					want = append(want, d-prev)
					prev = d
				}
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if !reflect.DeepEqual(s.waits, want) {
				t.Errorf("speed %v: waits %v, want %v", speed, s.waits, want)
			}
			if speed == 1 && prev != 400*time.Millisecond {
				t.Errorf("the stream ended at %v, want the recorded 400ms", prev)
			}
		})
	}
}

// TestReplayConcurrent: concurrent replays of one recording each play it whole at its own
// pace (no coalescing).
func TestReplayConcurrent(t *testing.T) {
	up := newUpstream(t, sseAnswer(loadSSE(t, "text.sse"), "{}"))
	book, rec := bookWithTiming(t, up)
	e, s := replayEnv(t, up, book, 1, "", nil)
	s.clock = nil // every request sleeps its whole schedule from its own start
	const n = 8
	var wg sync.WaitGroup
	results := make([]*result, n)
	for i := range n {
		wg.Go(func() { results[i] = e.chat(streamBody("", "")) })
	}
	wg.Wait()
	payloads, _ := ssePayloads(t, results[0].body)
	for _, r := range results {
		wantStatus(t, r, http.StatusOK, "HIT")
		if !bytes.Equal(r.body, results[0].body) {
			t.Error("concurrent replays differ")
		}
	}
	head, at := rec.Schedule(len(payloads)+1, 1)
	var sum time.Duration
	for _, d := range append(at, head) {
		sum += d
	}
	if got, total := s.total(); got != n*(len(at)+1) || total != n*sum {
		t.Errorf("%d sleeps (%v), want %d (%v)", got, total, n*(len(at)+1), n*sum)
	}
	wantCalls(t, up, 1)
}

// TestReplayMiss: what a request without a recording gets in each miss mode.
func TestReplayMiss(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	withSem := func(o *Options) {
		s, err := semantic.New(semantic.Options{Embedder: xNewEmbedder(), Now: o.Now, EmbedTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		o.Semantic = s
	}
	recs := record(t, up, filepath.Join(t.TempDir(), "rec.jsonl"), nil, xChat(xPromptA, ""))
	calls := up.count()
	book := replay.NewBook(recs)
	tests := []struct {
		name, miss, prompt string
		sem                bool
		status             int
		cacheStatus, how   string
	}{
		{"error", "", xPromptA2, false, 404, "MISS", "not_recorded"},
		{"semantic near", ReplayMissSemantic, xPromptA2, true, 200, "HIT", "semantic"},
		{"semantic far", ReplayMissSemantic, xPromptFar, true, 404, "MISS", "not_recorded"},
		{"semantic without the cache", ReplayMissSemantic, xPromptA2, false, 404, "MISS", "not_recorded"},
		{"synthetic", ReplayMissSynthetic, xPromptFar, false, 200, "MISS", "synthetic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mod func(*Options)
			if tt.sem {
				mod = withSem
			}
			e, _ := replayEnv(t, up, book, 1, tt.miss, mod)
			for _, stream := range []bool{false, true} {
				extra := ""
				if stream {
					extra = `"stream":true`
				}
				r := e.chat(xChat(tt.prompt, extra))
				wantStatus(t, r, tt.status, tt.cacheStatus)
				if got := r.header.Get("X-Zest-Replay"); got != tt.how {
					t.Errorf("X-Zest-Replay = %q, want %q", got, tt.how)
				}
				switch tt.how {
				case "not_recorded":
					if e := wantError(t, r, 404, "invalid_request_error", ""); e.Code == nil || *e.Code != "not_recorded" ||
						!strings.Contains(e.Message, "not recorded") {
						t.Errorf("error = %+v", e)
					}
				case "semantic":
					if r.header.Get("X-Cache-Similarity") != "1.0000" {
						t.Errorf("X-Cache-Similarity = %q", r.header.Get("X-Cache-Similarity"))
					}
				case "synthetic":
					if !bytes.Contains(r.body, []byte("zest-synthetic")) {
						t.Errorf("synthetic body: %s", r.body)
					}
				}
			}
		})
	}
	wantCalls(t, up, calls)
}

// TestReplayRateLimit: the rate limiter works in replay, so an app's 429 handling can be
// load-tested.
func TestReplayRateLimit(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	recs := record(t, up, filepath.Join(t.TempDir(), "rec.jsonl"), nil, chatBody(""))
	e, _ := replayEnv(t, up, replay.NewBook(recs), 0, "", func(o *Options) {
		l, err := ratelimit.New(ratelimit.Options{Default: ratelimit.Limits{RequestsPerMinute: 1}, Now: o.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(l.Close)
		o.Limiter = l
	})
	r := e.chat(chatBody(""))
	wantStatus(t, r, http.StatusOK, "HIT")
	if r.header.Get("X-Ratelimit-Remaining-Requests") != "0" {
		t.Errorf("limit headers: %v", r.header)
	}
	r = e.chat(chatBody(""))
	wantStatus(t, r, http.StatusTooManyRequests, "BYPASS")
	wantCalls(t, up, 1)
}

// TestRecordSkipsHitsAndErrors: only clean upstream answers are recorded: not a hit, not an
// upstream error.
func TestRecordSkipsHitsAndErrors(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	recs := record(t, up, filepath.Join(t.TempDir(), "a.jsonl"), func(o *Options) {}, chatBody(""))
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	bad := newUpstream(t, jsonAnswer(500, `{"error":{"message":"down"}}`))
	w, _ := replay.Create(filepath.Join(t.TempDir(), "b.jsonl"))
	e := newEnv(t, bad, func(o *Options) { o.Recorder = w })
	e.chat(chatBody(""))
	e.h.Wait(context.Background())
	if w.Count() != 0 {
		t.Errorf("an upstream error was recorded")
	}
	w.Close()
}
