package semantic

import (
	"context"
	"testing"
	"time"

	"github.com/zest-proxy/zest/internal/redisx/redistest"
)

// Prompts of the feedback tests: asked matches stored; other matches it too but is never reported.
var (
	fbStored = Query{Namespace: "k:t", Partition: "p", Prompt: "how do I sort a list in python"}
	fbAsked  = Query{Namespace: "k:t", Partition: "p", Prompt: "how do I sort a python list"}
	fbOther  = Query{Namespace: "k:t", Partition: "p", Prompt: "sort a list in python how"}
)

// TestSharedReport: a report on any replica — the one that served the wrong answer or another
// — removes the entry everywhere and refuses the served pair on every replica, including one
// that starts later, even after the stream that carried the refusal is gone.
func TestSharedReport(t *testing.T) {
	tests := []struct {
		name             string
		server, reporter int // replica indexes
	}{
		{"reported where served", 0, 0},
		{"reported on another replica", 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, prefix := redistest.Addr(t), redistest.Prefix(t)
			now := func() time.Time { return time.Unix(1_800_000_000, 0) }
			reps := []*Cache{sharedReplica(t, addr, prefix, &bagEmbedder{}, now), sharedReplica(t, addr, prefix, &bagEmbedder{}, now)}
			ctx := context.Background()
			if err := reps[0].Store(ctx, fbStored, "e1", []byte("x"), time.Hour); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "replica 1 holds e1", func() bool { return reps[1].Stats().Entries == 1 })
			server, reporter := reps[tt.server], reps[tt.reporter]
			if hit, ok, _ := server.Lookup(ctx, fbAsked); !ok || hit.ID != "e1" {
				t.Fatalf("no hit before the report: %+v %v", hit, ok)
			}
			server.Wait() // its note of the served pair is in redis

			if reporter.Report(ctx, "k:other", "e1") {
				t.Fatal("another namespace reported the entry")
			}
			if !reporter.Report(ctx, fbAsked.Namespace, "e1") {
				t.Fatal("the report found no entry")
			}
			for _, r := range reps {
				waitFor(t, "the entry leaves every replica", func() bool { return r.Stats().Entries == 0 })
				waitFor(t, "every replica refuses the pair", func() bool { return r.Stats().RefusedPairs == 1 })
			}
			for i, r := range reps {
				if err := r.Store(ctx, fbStored, "e2", []byte("x"), time.Hour); err != nil { // stored anew
					t.Fatal(i, err)
				}
				if _, ok, _ := r.Lookup(ctx, fbAsked); ok {
					t.Fatalf("replica %d served the reported pair again", i)
				}
				if _, ok, _ := r.Lookup(ctx, fbOther); !ok {
					t.Fatalf("replica %d stopped serving a pair nobody reported", i)
				}
			}

			// A replica that starts after the stream was trimmed away loads the refusals.
			rc := redistest.Client(t, addr, prefix, nil)
			if err := rc.R.Del(ctx, rc.Key("s", "log")).Err(); err != nil {
				t.Fatal(err)
			}
			late := sharedReplica(t, addr, prefix, &bagEmbedder{}, now)
			if st := late.Stats(); st.RefusedPairs != 1 || st.Entries != 0 {
				t.Fatalf("a late replica: %+v", st)
			}
			if err := late.Store(ctx, fbStored, "e3", []byte("x"), time.Hour); err != nil {
				t.Fatal(err)
			}
			if _, ok, _ := late.Lookup(ctx, fbAsked); ok {
				t.Fatal("a late replica served the reported pair")
			}
		})
	}
}

// TestSharedDeletesDuringOutage: a report and a delete made while this replica cannot reach
// Redis hold here at once, and reach the other replicas once Redis is back; beyond
// MaxPendingDeletes they collapse into a purge of every index that keeps the refusal.
func TestSharedDeletesDuringOutage(t *testing.T) {
	tests := []struct {
		name       string
		maxPending int
		left       int // entries b keeps after the replay (of e1, e2, e3)
		overflows  uint64
	}{
		{"queued", 10, 1, 0},
		{"overflow", 1, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, prefix := redistest.Addr(t), redistest.Prefix(t)
			px := redistest.NewProxy(t, addr)
			now := func() time.Time { return time.Unix(1_800_000_000, 0) }
			a := sharedReplicaWith(t, px.Addr(), prefix, &bagEmbedder{}, now, func(o *Options) { o.MaxPendingDeletes = tt.maxPending })
			b := sharedReplica(t, addr, prefix, &bagEmbedder{}, now) // b's link stays up
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for i, q := range []Query{fbStored, {Namespace: "k:t", Partition: "q", Prompt: "old news"},
				{Namespace: "k:t", Partition: "r", Prompt: "kept news"}} {
				if err := a.Store(ctx, q, "e"+string(rune('1'+i)), []byte("x"), time.Hour); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, "b holds a's entries", func() bool { return b.Stats().Entries == 3 })
			if _, ok, _ := a.Lookup(ctx, fbAsked); !ok {
				t.Fatal("no hit before the report")
			}
			a.Wait()

			px.Cut()
			a.Delete("e2")
			if !a.Report(ctx, fbAsked.Namespace, "e1") {
				t.Fatal("the report found no entry")
			}
			if st := a.SharedStats(); st.Pending == 0 || st.Overflows != tt.overflows {
				t.Fatalf("a's stats with redis cut: %+v", st)
			}
			if st := b.Stats(); st.Entries != 3 || st.RefusedPairs != 0 {
				t.Fatalf("b changed while a could not reach redis: %+v", st)
			}

			px.Restore()
			if err := a.WaitPurges(ctx); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "b applies the refusal", func() bool { return b.Stats().RefusedPairs == 1 })
			waitFor(t, "b applies the deletes", func() bool { return b.Stats().Entries == tt.left })
			if err := b.Store(ctx, fbStored, "e4", []byte("x"), time.Hour); err != nil {
				t.Fatal(err)
			}
			if _, ok, _ := b.Lookup(ctx, fbAsked); ok {
				t.Fatal("b served the pair reported during the outage")
			}
		})
	}
}
