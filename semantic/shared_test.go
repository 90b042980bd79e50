package semantic

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zest-proxy/zest/internal/redisx/redistest"
)

// sharedReplica is a Cache sharing through the test Redis under prefix, on clock now.
func sharedReplica(t *testing.T, addr, prefix string, emb Embedder, now func() time.Time) *Cache {
	t.Helper()
	return sharedReplicaWith(t, addr, prefix, emb, now, nil)
}

// sharedReplicaWith is sharedReplica with Options changed by tweak (when not nil).
func sharedReplicaWith(t *testing.T, addr, prefix string, emb Embedder, now func() time.Time, tweak func(*Options)) *Cache {
	t.Helper()
	o := Options{Embedder: emb, Threshold: 0.5, Now: now, Redis: redistest.Client(t, addr, prefix, nil)}
	if tweak != nil {
		tweak(&o)
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.WaitWarm(ctx); err != nil {
		t.Fatalf("WaitWarm: %v", err)
	}
	return c
}

// waitFor polls cond until it holds, failing after a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 5s: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestSharedEntries(t *testing.T) {
	addr, prefix := redistest.Addr(t), redistest.Prefix(t)
	var clk atomic.Int64
	clk.Store(1_800_000_000)
	now := func() time.Time { return time.Unix(clk.Load(), 0) }
	embA, embB := &bagEmbedder{}, &bagEmbedder{}
	a := sharedReplica(t, addr, prefix, embA, now)
	b := sharedReplica(t, addr, prefix, embB, now)
	ctx := context.Background()
	q := Query{Namespace: "k:t", Partition: "p1", Prompt: "capital of france"}
	if err := a.Store(ctx, q, "id1", []byte(`{"answer":"Paris"}`), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := a.Store(ctx, Query{Namespace: "k:t", Partition: "p1", Prompt: "old news"}, "id2", []byte(`{}`), time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b holds a's entries", func() bool { return b.Stats().Entries == 2 })
	if embB.calls.Load() != 0 {
		t.Fatal("b embedded an entry it received with its vector")
	}
	hit, ok, err := b.Lookup(ctx, Query{Namespace: "k:t", Partition: "p1", Prompt: "capital of france"})
	if err != nil || !ok || hit.ID != "id1" || string(hit.Value) != `{"answer":"Paris"}` || hit.Prompt != "capital of france" {
		t.Fatalf("b's lookup = %+v, %v, %v", hit, ok, err)
	}
	if _, ok, _ := b.Lookup(ctx, Query{Namespace: "k:other", Partition: "p1", Prompt: "capital of france"}); ok {
		t.Fatal("a shared entry crossed namespaces")
	}
	if st := a.SharedStats(); st.Published != 2 || st.Applied != 0 {
		t.Fatalf("a's stats: %+v (it must not apply its own records)", st)
	}

	// A replica that starts later warms from the stream, without what has expired.
	clk.Add(2)
	c := sharedReplica(t, addr, prefix, &bagEmbedder{}, now)
	if st := c.Stats(); st.Entries != 1 {
		t.Fatalf("warmed replica holds %d entries, want 1 (the live one)", st.Entries)
	}
	if _, ok, _ := c.Lookup(ctx, q); !ok {
		t.Fatal("warmed replica misses the shared entry")
	}

	// Deletes travel too, and a later warm-up does not bring the entry back.
	a.Delete("id1")
	waitFor(t, "b drops the deleted entry", func() bool { _, ok, _ := b.Lookup(ctx, q); return !ok })
	waitFor(t, "c drops the deleted entry", func() bool { _, ok, _ := c.Lookup(ctx, q); return !ok })
	d := sharedReplica(t, addr, prefix, &bagEmbedder{}, now)
	if _, ok, _ := d.Lookup(ctx, q); ok {
		t.Fatal("a replay brought back a deleted entry")
	}
}

func TestSharedPurges(t *testing.T) {
	tests := []struct {
		name  string
		purge func(c *Cache)
		left  int
	}{
		{"namespace", func(c *Cache) { c.DeleteNamespace("k:one") }, 1},
		{"all", func(c *Cache) { c.Purge() }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, prefix := redistest.Addr(t), redistest.Prefix(t)
			now := func() time.Time { return time.Unix(1_800_000_000, 0) }
			a := sharedReplica(t, addr, prefix, &bagEmbedder{}, now)
			b := sharedReplica(t, addr, prefix, &bagEmbedder{}, now)
			ctx := context.Background()
			for i, ns := range []string{"k:one", "k:two"} {
				if err := a.Store(ctx, Query{Namespace: ns, Partition: "p", Prompt: "hello world"}, ns, []byte("x"), time.Hour); err != nil {
					t.Fatal(i, err)
				}
			}
			waitFor(t, "b holds both", func() bool { return b.Stats().Entries == 2 })
			tt.purge(a)
			waitFor(t, "b applies the purge", func() bool { return b.Stats().Entries == tt.left })
			if got := sharedReplica(t, addr, prefix, &bagEmbedder{}, now).Stats().Entries; got != tt.left {
				t.Fatalf("a fresh replica warms %d entries, want %d", got, tt.left)
			}
		})
	}
}
