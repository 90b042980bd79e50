package redisx

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// replyError is an error Redis answered (a redis.Error).
type replyError string

func (e replyError) Error() string { return string(e) }
func (replyError) RedisError()     {}

// fakeRedis is a Send that fails while down and records what it wrote.
type fakeRedis struct {
	mu    sync.Mutex
	down  bool
	sent  []string
	tried chan struct{} // receives after every attempt
}

func (f *fakeRedis) send(_ context.Context, x string) error {
	defer func() { f.tried <- struct{}{} }()
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.down:
		return errors.New("dial tcp: connection refused")
	case x == "bad":
		return replyError("ERR wrong number of arguments")
	}
	f.sent = append(f.sent, x)
	return nil
}

func (f *fakeRedis) setDown(d bool) {
	f.mu.Lock()
	f.down = d
	f.mu.Unlock()
}

func TestBacklog(t *testing.T) {
	// RetryAfter is an hour: only Kick (and Add) make the backlog retry, so the test decides when.
	rc, err := New(Options{URL: "redis://127.0.0.1:1", RetryAfter: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	f := &fakeRedis{down: true, tried: make(chan struct{}, 100)}
	b := NewBacklog(rc, BacklogOptions[string]{Send: f.send, Max: 3,
		Collapse: func(items []string) []string { return []string{"all(" + items[0] + ".." + items[len(items)-1] + ")"} }})
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for _, x := range []string{"k1", "k2", "bad"} {
		b.Add(x)
		<-f.tried // the attempt Add triggers fails: redis is down
	}
	if st := b.Stats(); st.Pending != 3 || st.Replayed != 0 || st.Overflows != 0 {
		t.Fatalf("stats while down: %+v", st)
	}
	f.setDown(false)
	b.Kick()
	if err := b.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if want := []string{"k1", "k2"}; !slices.Equal(f.sent, want) {
		t.Fatalf("sent %q, want %q (in order; the refused one dropped)", f.sent, want)
	}
	if st := b.Stats(); st.Pending != 0 || st.Replayed != 2 {
		t.Fatalf("stats after the replay: %+v", st)
	}

	// Beyond Max, the items collapse into what Collapse returns.
	f.setDown(true)
	for _, x := range []string{"k3", "k4", "k5", "k6"} {
		b.Add(x)
		<-f.tried
	}
	if st := b.Stats(); st.Pending != 1 || st.Overflows != 1 {
		t.Fatalf("stats after an overflow: %+v", st)
	}
	f.setDown(false)
	b.Kick()
	if err := b.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if want := []string{"k1", "k2", "all(k3..k6)"}; !slices.Equal(f.sent, want) {
		t.Fatalf("sent %q, want %q", f.sent, want)
	}
}
