package cache

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/zest-proxy/zest/internal/redisx/redistest"
)

// replica is one Cache on the shared test Redis.
func replica(t *testing.T, clock *fakeClock, addr, prefix string) *Cache {
	t.Helper()
	return replicaWith(t, clock, addr, prefix, nil)
}

// replicaWith is replica with Options changed by tweak (when not nil).
func replicaWith(t *testing.T, clock *fakeClock, addr, prefix string, tweak func(*Options)) *Cache {
	t.Helper()
	rc := redistest.Client(t, addr, prefix, nil)
	o := Options{MaxBytes: 1 << 20, Now: clock.Now, Redis: rc}
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
	if err := c.WaitShared(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// eventually polls cond until it holds, failing after a generous deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 5s: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestRedisTierSharesEntries(t *testing.T) {
	addr, prefix := redistest.Addr(t), redistest.Prefix(t)
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	a, b := replica(t, clock, addr, prefix), replica(t, clock, addr, prefix)
	e := entry(clock, "k1", "k:tenant", time.Minute)
	e.Model, e.PromptTokens, e.CompletionTokens = "gpt-4o-mini", 14, 7
	a.Set(e)
	a.Wait()
	ctx := context.Background()
	if _, ok := b.Get("k1"); ok {
		t.Fatal("b's local tier has an entry it never saw")
	}
	got, ok := b.GetContext(ctx, "k1")
	if !ok {
		t.Fatal("b missed an entry a stored in redis")
	}
	if !bytes.Equal(got.Body, e.Body) || got.Namespace != e.Namespace || got.Model != e.Model ||
		got.PromptTokens != 14 || got.CompletionTokens != 7 ||
		!got.Stored.Equal(e.Stored) || !got.Expires.Equal(e.Expires) {
		t.Fatalf("entry from redis = %+v, want %+v", got, e)
	}
	b.Wait()
	if _, ok := b.Get("k1"); !ok {
		t.Fatal("a redis hit did not fill the local tier")
	}
	if st := b.RedisStats(); st.Hits != 1 || st.Errors != 0 {
		t.Fatalf("b's redis stats: %+v", st)
	}
	if _, ok := b.GetContext(ctx, "absent"); ok {
		t.Fatal("hit on an absent key")
	}
	clock.Add(time.Minute)
	c := replica(t, clock, addr, prefix)
	if _, ok := c.GetContext(ctx, "k1"); ok {
		t.Fatal("an expired entry was served from redis")
	}
}

// fillBoth stores a1, a2 (namespace ns-a) and b1 (ns-b) on a and reads them on b, so both
// replicas' local tiers and Redis hold them.
func fillBoth(t *testing.T, clock *fakeClock, a, b *Cache) {
	t.Helper()
	for _, k := range []string{"a1", "a2", "b1"} {
		a.Set(entry(clock, k, "ns-"+k[:1], time.Hour))
	}
	a.Wait()
	for _, k := range []string{"a1", "a2", "b1"} {
		if _, ok := b.GetContext(context.Background(), k); !ok {
			t.Fatalf("b missed %s", k)
		}
	}
	b.Wait()
}

func TestRedisTierPurges(t *testing.T) {
	tests := []struct {
		name  string
		purge func(c *Cache)
		gone  []string // keys that must leave every replica and redis
		kept  []string
	}{
		{"key", func(c *Cache) { c.Delete("a1") }, []string{"a1"}, []string{"a2", "b1"}},
		{"namespace", func(c *Cache) { c.DeleteNamespace("ns-a") }, []string{"a1", "a2"}, []string{"b1"}},
		{"all", func(c *Cache) { c.Clear() }, []string{"a1", "a2", "b1"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, prefix := redistest.Addr(t), redistest.Prefix(t)
			clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
			a, b := replica(t, clock, addr, prefix), replica(t, clock, addr, prefix)
			ctx := context.Background()
			fillBoth(t, clock, a, b)
			tt.purge(a)
			for _, k := range tt.gone {
				eventually(t, "b drops "+k, func() bool { _, ok := b.Get(k); return !ok })
				if _, ok := a.Get(k); ok {
					t.Fatalf("a still holds %s", k)
				}
			}
			fresh := replica(t, clock, addr, prefix)
			for _, k := range tt.gone {
				if _, ok := fresh.GetContext(ctx, k); ok {
					t.Fatalf("redis still holds %s", k)
				}
			}
			for _, k := range tt.kept {
				if _, ok := b.Get(k); !ok {
					t.Fatalf("b lost %s, which was not purged", k)
				}
				if _, ok := fresh.GetContext(ctx, k); !ok {
					t.Fatalf("redis lost %s, which was not purged", k)
				}
			}
		})
	}
}

// TestRedisTierDown: with Redis cut, the local tier serves alone and failures are counted;
// when the purge channel comes back, the local tier is emptied (purges may have been missed)
// and refills from Redis.
func TestRedisTierDown(t *testing.T) {
	px := redistest.NewProxy(t, redistest.Addr(t))
	prefix := redistest.Prefix(t)
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	a := replica(t, clock, px.Addr(), prefix)
	ctx := context.Background()
	a.Set(entry(clock, "k1", "ns", time.Hour))
	a.Wait()
	px.Cut()
	a.Set(entry(clock, "k2", "ns", time.Hour))
	a.Wait()
	for _, k := range []string{"k1", "k2"} {
		if _, ok := a.GetContext(ctx, k); !ok {
			t.Fatalf("local tier lost %s while redis is down", k)
		}
	}
	if _, ok := a.GetContext(ctx, "k3"); ok {
		t.Fatal("hit on an absent key")
	}
	if st := a.RedisStats(); st.Errors == 0 {
		t.Fatalf("no redis error counted: %+v", st)
	}
	px.Restore()
	eventually(t, "the purge channel reconnects", func() bool { return a.RedisStats().Resyncs > 0 })
	if _, ok := a.Get("k1"); ok {
		t.Fatal("local tier kept entries across a gap in the purge channel")
	}
	eventually(t, "k1 from redis again", func() bool { _, ok := a.GetContext(ctx, "k1"); return ok })
}

// TestRedisTierPurgeDuringOutage: a purge made while this replica cannot reach Redis is queued
// and replayed once it can: Redis loses the entries and a replica that never lost its own
// connection (so never resynced) drops its copies. Beyond MaxPendingPurges the queue becomes
// one purge of everything.
func TestRedisTierPurgeDuringOutage(t *testing.T) {
	tests := []struct {
		name   string
		purges func(c *Cache)
		local  []string // keys a drops at once
		gone   []string // keys that leave redis and b after the replay
		kept   []string
		over   uint64 // overflows expected
	}{
		{"key", func(c *Cache) { c.Delete("a1") }, []string{"a1"}, []string{"a1"}, []string{"a2", "b1"}, 0},
		{"namespace", func(c *Cache) { c.DeleteNamespace("ns-a") }, []string{"a1", "a2"}, []string{"a1", "a2"}, []string{"b1"}, 0},
		{"all", func(c *Cache) { c.Clear() }, []string{"a1", "a2", "b1"}, []string{"a1", "a2", "b1"}, nil, 0},
		{"overflow", func(c *Cache) {
			for _, k := range []string{"x1", "x2", "a1"} { // three purges, room for two
				c.Delete(k)
			}
		}, []string{"a1"}, []string{"a1", "a2", "b1"}, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, prefix := redistest.Addr(t), redistest.Prefix(t)
			px := redistest.NewProxy(t, addr)
			clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
			a := replicaWith(t, clock, px.Addr(), prefix, func(o *Options) { o.MaxPendingPurges = 2 })
			b := replica(t, clock, addr, prefix) // b's link to Redis stays up
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			fillBoth(t, clock, a, b)

			px.Cut()
			tt.purges(a)
			for _, k := range tt.local {
				if _, ok := a.Get(k); ok {
					t.Fatalf("a still holds %s after its own purge", k)
				}
			}
			for _, k := range tt.gone {
				if _, ok := b.Get(k); !ok {
					t.Fatalf("b lost %s while a could not reach redis", k)
				}
			}
			if st := a.RedisStats(); st.PendingPurges == 0 || st.PurgeOverflows != tt.over {
				t.Fatalf("a's stats with redis cut: %+v", st)
			}

			px.Restore()
			if err := a.WaitPurges(ctx); err != nil {
				t.Fatal(err)
			}
			if st := a.RedisStats(); st.PendingPurges != 0 || st.ReplayedPurges == 0 {
				t.Fatalf("a's stats after the replay: %+v", st)
			}
			fresh := replica(t, clock, addr, prefix)
			for _, k := range tt.gone {
				eventually(t, "b drops "+k, func() bool { _, ok := b.Get(k); return !ok })
				if _, ok := fresh.GetContext(ctx, k); ok {
					t.Fatalf("redis still holds %s after the replay", k)
				}
			}
			for _, k := range tt.kept {
				if _, ok := fresh.GetContext(ctx, k); !ok {
					t.Fatalf("redis lost %s, which was not purged", k)
				}
				if _, ok := b.Get(k); !ok {
					t.Fatalf("b lost %s, which was not purged", k)
				}
			}
			if st := b.RedisStats(); st.Resyncs != 0 {
				t.Fatalf("b resynced (%+v): the test must show the replayed purge reaching it", st)
			}
		})
	}
}

func TestEncodeEntry(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_123)
	body := []byte(`{"choices":[{"message":{"content":"` + strings.Repeat("Paris is the capital of France. ", 40) + `"}}]}`)
	e := &Entry{Key: "k", Namespace: "u:ünïcode", Model: "m", Body: body, Stored: now, Expires: now.Add(time.Hour),
		PromptTokens: 3, CompletionTokens: 1 << 20}
	v := encodeEntry(e)
	if len(v) >= len(body)/3 {
		t.Fatalf("encoded %d bytes for a %d-byte repetitive body: not compressed", len(v), len(body))
	}
	got, err := decodeEntry("k", v)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Body, body) || got.Namespace != e.Namespace || got.Model != "m" || !got.Stored.Equal(now) ||
		!got.Expires.Equal(e.Expires) || got.PromptTokens != 3 || got.CompletionTokens != 1<<20 {
		t.Fatalf("round trip: %+v", got)
	}
	for _, bad := range [][]byte{nil, {9}, v[:3], v[:len(v)-2]} {
		if _, err := decodeEntry("k", bad); err == nil {
			t.Fatalf("decoded a damaged value %q", bad)
		}
	}
}
