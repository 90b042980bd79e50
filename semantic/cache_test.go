package semantic

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zest-proxy/zest/internal/redisx/redistest"
	"github.com/zest-proxy/zest/semantic/verify"
)

func TestStoreLookup(t *testing.T) {
	forEachIndex(t, func(t *testing.T, kind IndexKind) {
		clock := newFakeClock()
		emb := &bagEmbedder{}
		c := mustNew(t, Options{Embedder: emb, Index: kind, Now: clock.Now})
		q := Query{Namespace: "alice", Partition: "gpt-4o|sys", Prompt: "how do I sort a list in python"}

		if _, ok, err := c.Lookup(context.Background(), q); ok || err != nil {
			t.Fatalf("empty cache: ok=%v err=%v", ok, err)
		}
		if emb.calls.Load() != 0 {
			t.Error("Lookup embedded a prompt for a partition with no entries")
		}
		mustStore(t, c, q, "id1", "answer one", time.Hour)
		clock.Advance(time.Minute)

		h, ok, err := c.Lookup(context.Background(), Query{Namespace: "alice", Partition: "gpt-4o|sys", Prompt: "How do I sort a list in Python"})
		if err != nil || !ok {
			t.Fatalf("Lookup of the same prompt: ok=%v err=%v", ok, err)
		}
		if h.ID != "id1" || string(h.Value) != "answer one" || h.Prompt != q.Prompt || h.Similarity < 0.999 {
			t.Errorf("hit = %+v", h)
		}
		if want := clock.Now().Add(-time.Minute); !h.Stored.Equal(want) {
			t.Errorf("Stored = %v, want %v", h.Stored, want)
		}
		if got := lookupID(t, c, Query{Namespace: "alice", Partition: "gpt-4o|sys", Prompt: "what is the capital of france"}); got != "" {
			t.Errorf("unrelated prompt hit %q", got)
		}
		st := c.Stats()
		if st.Entries != 1 || st.Partitions != 1 || st.Lookups != 3 || st.Hits != 1 || st.Misses != 2 {
			t.Errorf("stats = %+v", st)
		}
	})
}

// TestByteBudget: entries beyond MaxBytes go, soonest-expiring first; the charged bytes
// never pass the budget, and a nil value (the caller keeps the answer) costs nothing for it.
func TestByteBudget(t *testing.T) {
	const budget = 64 << 10
	c := mustNew(t, Options{Embedder: &bagEmbedder{}, MaxBytes: budget})
	big := make([]byte, 10<<10)
	for i := range 50 {
		q := Query{Prompt: fmt.Sprintf("hello there number %d", i)}
		if err := c.Store(context.Background(), q, fmt.Sprint("id", i), big, time.Hour+time.Duration(i)*time.Second); err != nil {
			t.Fatal(err)
		}
		if st := c.Stats(); st.Bytes > budget {
			t.Fatalf("after %d stores: %d bytes charged, budget %d", i+1, st.Bytes, budget)
		}
	}
	st := c.Stats()
	if st.Entries < 3 || st.Entries > 7 || st.Evictions == 0 {
		t.Errorf("entries %d, evictions %d: want the budget to hold about 6 entries of 10 KiB", st.Entries, st.Evictions)
	}
	if _, ok, _ := c.Lookup(context.Background(), Query{Prompt: "hello there number 49"}); !ok {
		t.Error("the newest entry was evicted before older ones")
	}
	c.Purge()
	for i := range 50 {
		mustStore(t, c, Query{Prompt: fmt.Sprintf("small entry %d", i)}, fmt.Sprint("s", i), "", time.Hour)
	}
	if st := c.Stats(); st.Entries != 50 || st.Bytes > budget {
		t.Errorf("nil values: %d entries, %d bytes", st.Entries, st.Bytes)
	}
}

// TestTenantIsolation: an entry is never served to another namespace or
// partition, however the two strings are chosen.
func TestTenantIsolation(t *testing.T) {
	forEachIndex(t, func(t *testing.T, kind IndexKind) {
		c := mustNew(t, Options{Embedder: &bagEmbedder{}, Index: kind})
		const prompt = "summarise this contract for me"
		mustStore(t, c, Query{Namespace: "a", Partition: "b:c", Prompt: prompt}, "secret", "tenant a's answer", time.Hour)
		tests := []struct {
			name string
			q    Query
			want string
		}{
			{"same namespace and partition", Query{Namespace: "a", Partition: "b:c"}, "secret"},
			{"other namespace", Query{Namespace: "b", Partition: "b:c"}, ""},
			{"empty namespace", Query{Namespace: "", Partition: "b:c"}, ""},
			{"other partition", Query{Namespace: "a", Partition: "b:d"}, ""},
			{"boundary moved into namespace", Query{Namespace: "a:b", Partition: ":c"}, ""},
			{"boundary moved into partition", Query{Namespace: "", Partition: "ab:c"}, ""},
			{"namespace swallows a character", Query{Namespace: "ab", Partition: ":c"}, ""},
			{"length-prefix lookalike", Query{Namespace: "1:a", Partition: "b:c"}, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				tt.q.Prompt = prompt
				if got := lookupID(t, c, tt.q); got != tt.want {
					t.Errorf("Lookup(%q, %q) = %q, want %q", tt.q.Namespace, tt.q.Partition, got, tt.want)
				}
			})
		}
	})
}

func TestThreshold(t *testing.T) {
	emb := vecEmbedder{"stored": {1, 0}, "sim95": unit2(0.95), "sim85": unit2(0.85), "sim60": unit2(0.60)}
	tests := []struct {
		name      string
		cacheT    float32
		queryT    float32
		prompt    string
		wantMatch bool
	}{
		{"default 0.92 admits 0.95", 0, 0, "sim95", true},
		{"default 0.92 refuses 0.85", 0, 0, "sim85", false},
		{"configured 0.8 admits 0.85", 0.8, 0, "sim85", true},
		{"query raises to 0.9", 0.8, 0.9, "sim85", false},
		{"query raise above a match", 0.8, 0.96, "sim95", false},
		{"query cannot lower", 0.8, 0.5, "sim60", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustNew(t, Options{Embedder: emb, Threshold: tt.cacheT})
			mustStore(t, c, Query{Prompt: "stored"}, "id", "v", time.Hour)
			h, ok, err := c.Lookup(context.Background(), Query{Prompt: tt.prompt, Threshold: tt.queryT})
			if err != nil || ok != tt.wantMatch {
				t.Errorf("Lookup = %+v, %v, %v; want match %v", h, ok, err, tt.wantMatch)
			}
		})
	}
}

func TestTTL(t *testing.T) {
	forEachIndex(t, func(t *testing.T, kind IndexKind) {
		clock := newFakeClock()
		c := mustNew(t, Options{Embedder: &bagEmbedder{}, Index: kind, Now: clock.Now})
		q := Query{Namespace: "n", Prompt: "what time is it"}
		mustStore(t, c, q, "short", "v", time.Minute)
		mustStore(t, c, Query{Namespace: "n", Prompt: "other prompt entirely"}, "long", "v", time.Hour)

		clock.Advance(time.Minute - time.Nanosecond)
		if got := lookupID(t, c, q); got != "short" {
			t.Fatalf("just before expiry: got %q, want a hit", got)
		}
		clock.Advance(time.Nanosecond)
		if got := lookupID(t, c, q); got != "" {
			t.Fatalf("at expiry: got %q, want a miss", got)
		}
		if st := c.Stats(); st.Expired != 1 || st.Entries != 1 {
			t.Errorf("stats = %+v, want 1 expired and 1 entry left", st)
		}
		if c.Delete("short") {
			t.Error("Delete found the expired entry")
		}
	})
}

func TestMaxEntries(t *testing.T) {
	forEachIndex(t, func(t *testing.T, kind IndexKind) {
		clock := newFakeClock()
		c := mustNew(t, Options{Embedder: &bagEmbedder{}, Index: kind, Now: clock.Now, MaxEntries: 3})
		q := func(i int) Query { return Query{Prompt: "prompt number " + strconv.Itoa(i)} }
		mustStore(t, c, q(0), "e0", "v", time.Hour)
		mustStore(t, c, q(1), "e1", "v", time.Hour)
		mustStore(t, c, q(2), "e2", "v", 10*time.Minute) // newer but expires first
		mustStore(t, c, q(3), "e3", "v", time.Hour)      // evicts e2
		mustStore(t, c, q(4), "e4", "v", time.Hour)      // evicts e0, the oldest of equal TTLs
		want := map[int]string{0: "", 1: "e1", 2: "", 3: "e3", 4: "e4"}
		for i, id := range want {
			if got := lookupID(t, c, q(i)); got != id {
				t.Errorf("prompt %d: got %q, want %q", i, got, id)
			}
		}
		if st := c.Stats(); st.Entries != 3 || st.Evictions != 2 {
			t.Errorf("stats = %+v, want 3 entries, 2 evictions", st)
		}
	})
}

func TestReplaceAndDelete(t *testing.T) {
	forEachIndex(t, func(t *testing.T, kind IndexKind) {
		c := mustNew(t, Options{Embedder: &bagEmbedder{}, Index: kind})
		qa := Query{Namespace: "a", Partition: "p1", Prompt: "first prompt"}
		qb := Query{Namespace: "a", Partition: "p2", Prompt: "second prompt"}
		mustStore(t, c, qa, "x", "old", time.Hour)
		mustStore(t, c, qb, "x", "new", time.Hour) // same id moves and replaces
		if got := lookupID(t, c, qa); got != "" {
			t.Errorf("replaced entry still found in its old partition")
		}
		if h, ok, _ := c.Lookup(context.Background(), qb); !ok || string(h.Value) != "new" {
			t.Errorf("replacement not found: %+v %v", h, ok)
		}
		if st := c.Stats(); st.Entries != 1 || st.Partitions != 1 {
			t.Errorf("after replace: stats = %+v, want 1 entry in 1 partition", st)
		}
		if !c.Delete("x") || c.Delete("x") {
			t.Error("Delete should report true once, then false")
		}
		if got := lookupID(t, c, qb); got != "" {
			t.Error("deleted entry still found")
		}

		for i := range 3 {
			mustStore(t, c, Query{Namespace: "a", Partition: strconv.Itoa(i), Prompt: "p"}, "a"+strconv.Itoa(i), "v", time.Hour)
		}
		mustStore(t, c, Query{Namespace: "b", Prompt: "p"}, "b0", "v", time.Hour)
		if n := c.DeleteNamespace("a"); n != 3 {
			t.Errorf("DeleteNamespace = %d, want 3", n)
		}
		if lookupID(t, c, Query{Namespace: "a", Partition: "0", Prompt: "p"}) != "" || lookupID(t, c, Query{Namespace: "b", Prompt: "p"}) != "b0" {
			t.Error("DeleteNamespace removed the wrong entries")
		}
		c.Purge()
		if st := c.Stats(); st.Entries != 0 || st.Partitions != 0 || lookupID(t, c, Query{Namespace: "b", Prompt: "p"}) != "" {
			t.Errorf("after Purge: stats = %+v", st)
		}
	})
}

func TestVerifier(t *testing.T) {
	emb := vecEmbedder{"q": {1, 0}, "best": unit2(0.99), "second": unit2(0.97), "third": unit2(0.95)}
	var mu sync.Mutex
	var asked []string
	reject := map[string]bool{"best": true}
	c := mustNew(t, Options{Embedder: emb, Verifier: VerifierFunc(func(query, stored string) bool {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, query+"~"+stored)
		return !reject[stored]
	})})
	for _, p := range []string{"third", "best", "second"} {
		mustStore(t, c, Query{Prompt: p}, p, p, time.Hour)
	}
	h, ok, err := c.Lookup(context.Background(), Query{Prompt: "q"})
	if err != nil || !ok || h.ID != "second" {
		t.Fatalf("Lookup = %+v, %v, %v; want the best candidate the verifier accepts", h, ok, err)
	}
	if len(asked) != 2 || asked[0] != "q~best" || asked[1] != "q~second" {
		t.Errorf("verifier asked %v, want best then second", asked)
	}
	reject["second"], reject["third"] = true, true
	if _, ok, err := c.Lookup(context.Background(), Query{Prompt: "q"}); ok || err != nil {
		t.Errorf("all rejected: ok=%v err=%v, want a miss", ok, err)
	}
	if st := c.Stats(); st.Rejected != 4 || st.Hits != 1 || st.Misses != 1 {
		t.Errorf("stats = %+v", st)
	}
}

// TestEmbedderFailureFallsThrough: every embedder failure is an error from
// Lookup and Store (the caller then goes upstream), counted, never a panic
// or a false hit.
func TestEmbedderFailureFallsThrough(t *testing.T) {
	bag := &bagEmbedder{}
	failing := false
	mode := ""
	emb := EmbedderFunc{N: bagDim, Fn: func(ctx context.Context, texts []string) ([][]float32, error) {
		if !failing {
			return bag.Embed(ctx, texts)
		}
		switch mode {
		case "error":
			return nil, errors.New("model overloaded")
		case "blocks":
			<-ctx.Done()
			return nil, ctx.Err()
		case "ignores deadline":
			<-ctx.Done()
			return bag.Embed(context.Background(), texts)
		case "wrong count":
			return nil, nil
		}
		panic("unknown mode")
	}}
	c := mustNew(t, Options{Embedder: emb, EmbedTimeout: 5 * time.Millisecond})
	q := Query{Prompt: "cached prompt"}
	mustStore(t, c, q, "id", "v", time.Hour)
	failing = true
	tests := []struct {
		mode     string
		deadline bool
	}{{"error", false}, {"blocks", true}, {"ignores deadline", true}, {"wrong count", false}}
	for i, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			mode = tt.mode
			_, ok, err := c.Lookup(context.Background(), q)
			if err == nil || ok {
				t.Fatalf("Lookup: ok=%v err=%v, want an error", ok, err)
			}
			if tt.deadline && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v, want a deadline error", err)
			}
			if err := c.Store(context.Background(), q, "id2", []byte("v"), time.Hour); err == nil {
				t.Error("Store succeeded with a failing embedder")
			}
			if st := c.Stats(); st.EmbedErrors != uint64(2*(i+1)) {
				t.Errorf("EmbedErrors = %d, want %d", st.EmbedErrors, 2*(i+1))
			}
		})
	}
}

// TestUnembeddablePrompt: a prompt with nothing to embed is never served. Filed first in its
// partition (pending), it leaves when a lookup reaches the partition; filed in a partition
// that exists, it is not kept at all.
func TestUnembeddablePrompt(t *testing.T) {
	c := mustNew(t, Options{Embedder: &bagEmbedder{}})
	mustStore(t, c, Query{Prompt: "   "}, "blank", "v", time.Hour)
	if got := lookupID(t, c, Query{Prompt: "real words"}); got != "" {
		t.Errorf("a lookup hit %q, an entry with nothing embedded", got)
	}
	if st := c.Stats(); st.Entries != 0 || st.Unembeddable != 1 {
		t.Errorf("after the lookup: stats = %+v, want the blank entry gone", st)
	}
	mustStore(t, c, Query{Prompt: "real words"}, "id", "v", time.Hour)
	if got := lookupID(t, c, Query{Prompt: "real words"}); got != "id" {
		t.Errorf("lookup = %q, want the pending entry, embedded on the way", got)
	}
	mustStore(t, c, Query{Prompt: "   "}, "blank", "v", time.Hour)
	if st := c.Stats(); st.Entries != 1 || st.Unembeddable != 2 {
		t.Errorf("stats = %+v, want the blank prompt not kept", st)
	}
	if got := lookupID(t, c, Query{Prompt: ""}); got != "" {
		t.Errorf("empty prompt hit %q", got)
	}
}

// TestStoreEmbedsLazily: the first entry of a partition costs no embedding until a lookup
// reaches its partition; that lookup embeds it (one call after the query's) and finds it.
// Entries of a partition that exists are embedded when stored.
func TestStoreEmbedsLazily(t *testing.T) {
	bag := &bagEmbedder{}
	c := mustNew(t, Options{Embedder: bag})
	for i := range 3 {
		mustStore(t, c, Query{Partition: fmt.Sprint("p", i), Prompt: "how do caches work"}, fmt.Sprint("id", i), "v", time.Hour)
	}
	if n := bag.calls.Load(); n != 0 {
		t.Fatalf("%d embedder calls for three first entries, want none", n)
	}
	if got := lookupID(t, c, Query{Partition: "p1", Prompt: "how do caches work"}); got != "id1" {
		t.Fatalf("lookup = %q, want id1", got)
	}
	if n := bag.calls.Load(); n != 2 {
		t.Fatalf("%d embedder calls, want 2 (the query, then the pending entry)", n)
	}
	if got := lookupID(t, c, Query{Partition: "p1", Prompt: "how do caches work"}); got != "id1" || bag.calls.Load() != 3 {
		t.Fatalf("second lookup = %q after %d calls, want id1 after 3 (nothing pending)", got, bag.calls.Load())
	}
	mustStore(t, c, Query{Partition: "p1", Prompt: "how do proxies work"}, "id9", "v", time.Hour)
	if n := bag.calls.Load(); n != 4 {
		t.Fatalf("%d embedder calls, want 4: a partition that exists embeds on store", n)
	}
	// Pending entries leave like any other: deleted, expired, evicted.
	if !c.Delete("id2") {
		t.Fatal("Delete of a pending entry: not found")
	}
	if st := c.Stats(); st.Entries != 3 || st.Partitions != 2 {
		t.Fatalf("stats = %+v, want 3 entries in 2 partitions", st)
	}
}

func TestNewValidates(t *testing.T) {
	for name, o := range map[string]Options{
		"no embedder":   {},
		"threshold > 1": {Embedder: &bagEmbedder{}, Threshold: 1.5},
		"negative cap":  {Embedder: &bagEmbedder{}, MaxEntries: -1},
		"unknown index": {Embedder: &bagEmbedder{}, Index: "faiss"},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	c := mustNew(t, Options{Embedder: &bagEmbedder{}})
	if err := c.Store(context.Background(), Query{Prompt: "x"}, "id", nil, 0); err == nil {
		t.Error("Store with zero TTL succeeded")
	}
	if err := c.Store(context.Background(), Query{Prompt: "x"}, "", nil, time.Hour); err == nil {
		t.Error("Store with empty id succeeded")
	}
}

func TestConcurrentUse(t *testing.T) {
	forEachIndex(t, func(t *testing.T, kind IndexKind) {
		clock := newFakeClock()
		c := mustNew(t, Options{Embedder: &bagEmbedder{}, Index: kind, Now: clock.Now, MaxEntries: 50,
			Verifier: VerifierFunc(func(a, b string) bool { return a == b })})
		ctx := context.Background()
		var wg sync.WaitGroup
		for g := range 4 {
			ns := "tenant" + strconv.Itoa(g%2)
			wg.Go(func() {
				for i := range 200 {
					q := Query{Namespace: ns, Partition: strconv.Itoa(i % 3), Prompt: "prompt " + strconv.Itoa(i%40)}
					switch i % 5 {
					case 0, 1:
						if err := c.Store(ctx, q, ns+strconv.Itoa(i%60), []byte(ns), time.Duration(1+i%7)*time.Second); err != nil {
							t.Error(err)
						}
					case 2:
						c.Delete(ns + strconv.Itoa(i%60))
					case 3:
						clock.Advance(100 * time.Millisecond)
					}
					h, ok, err := c.Lookup(ctx, q)
					if err != nil {
						t.Error(err)
					}
					if ok && string(h.Value) != ns {
						t.Errorf("namespace %s got %q's entry", ns, h.Value)
					}
				}
			})
		}
		wg.Go(func() {
			for range 20 {
				c.Stats()
				c.DeleteNamespace("tenant0")
			}
		})
		wg.Wait()
		if st := c.Stats(); st.Entries > 50 {
			t.Errorf("%d entries, cap 50", st.Entries)
		}
	})
}

// signingVerifier accepts everything and signs a prompt by its last word.
type signingVerifier struct{ calls, signs atomic.Int64 }

func (v *signingVerifier) Same(a, b string) bool { v.calls.Add(1); return true }
func (v *signingVerifier) Signature(p string) string {
	v.signs.Add(1)
	f := strings.Fields(p)
	return f[len(f)-1]
}

// TestSignerPartitions: prompts whose verifier signatures differ are never compared, even with
// identical embeddings; equal signatures are.
func TestSignerPartitions(t *testing.T) {
	v := &signingVerifier{}
	emb := vecEmbedder{"rate 1": unit2(1), "rate 2": unit2(1), "price 1": unit2(1)}
	c, err := New(Options{Embedder: emb, Verifier: v, Threshold: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	q := Query{Namespace: "n", Partition: "p", Prompt: "rate 1"}
	if err := c.Store(ctx, q, "id1", []byte("one"), time.Hour); err != nil {
		t.Fatal(err)
	}
	q.Prompt = "rate 2"
	if _, ok, err := c.Lookup(ctx, q); err != nil || ok {
		t.Fatalf("a prompt with another signature was served: ok=%v err=%v", ok, err)
	}
	if n := v.calls.Load(); n != 0 {
		t.Fatalf("the verifier compared %d prompts across signatures", n)
	}
	q.Prompt = "price 1"
	if h, ok, err := c.Lookup(ctx, q); err != nil || !ok || string(h.Value) != "one" {
		t.Fatalf("same signature, same vector: hit=%v ok=%v err=%v", h, ok, err)
	}

	// A Store after a missed Lookup reuses the signature (and vector) the Lookup computed.
	q.Prompt = "rate 2"
	miss, ok, err := c.Lookup(ctx, q)
	if err != nil || ok || miss.Signature != "2" {
		t.Fatalf("miss = %+v, %v, %v; want signature 2", miss, ok, err)
	}
	before := v.signs.Load()
	q.Vector, q.Signature = miss.Vector, miss.Signature
	if err := c.Store(ctx, q, "id2", []byte("two"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if n := v.signs.Load() - before; n != 0 {
		t.Errorf("Store signed the prompt again (%d calls)", n)
	}
	q.Vector, q.Signature = nil, ""
	if h, ok, err := c.Lookup(ctx, q); err != nil || !ok || string(h.Value) != "two" {
		t.Fatalf("stored under the reused signature: hit=%v ok=%v err=%v", h, ok, err)
	}
}

// TestChargeCoversMemory: what the entries are charged against MaxBytes covers the heap they
// take, both when they share one partition and when each has its own (a prompt's numbers make
// its own partition, and such partitions once cost 43% more than they were charged).
func TestChargeCoversMemory(t *testing.T) {
	l, err := NewLocal()
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Load(); err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	vecs, err := l.Embed(context.Background(), []string{templatedPrompt(0)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		own bool
		v   Verifier
	}{{false, nil}, {true, nil}, {false, v}, {true, v}} {
		own := tc.own
		c := mustNew(t, Options{Embedder: l, Verifier: tc.v, MaxBytes: 1 << 30, MaxEntries: 1 << 20})
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range n {
			part := "one"
			if own {
				part = fmt.Sprint("p", i)
			}
			q := Query{Namespace: "ns", Partition: part,
				Prompt: fmt.Sprintf("Explain in two sentences what a caching reverse proxy does for a chat API. Request %d.", i)}
			if tc.v != nil { // numbers would give each prompt a partition, filed without keys
				q.Prompt = templatedPrompt(i)
				if own { // a vector given, as with Redis: each entry filed under its keys at once
					q.Vector = vecs[0]
				}
			}
			if err := c.Store(context.Background(), q, fmt.Sprintf("%064x", i), nil, time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
		charged := c.Stats().Bytes
		t.Logf("own partitions %v, verifier %v: %d heap bytes per entry, %d charged", own, tc.v != nil, heap/n, charged/n)
		if heap > charged+charged/20 {
			t.Errorf("own partitions %v, verifier %v: %d entries take %d heap bytes (%d each) but are charged %d (%d each)",
				own, tc.v != nil, n, heap, heap/n, charged, charged/n)
		}
		runtime.KeepAlive(c)
	}
}

// TestAppendKeySeparatesTenants: no split of the same characters between namespace and
// partition gives one tenant the index key of another.
func TestAppendKeySeparatesTenants(t *testing.T) {
	c := mustNew(t, Options{Embedder: vecEmbedder{}})
	seen := map[string]Query{}
	for _, q := range []Query{
		{Namespace: "ab", Partition: "c"}, {Namespace: "a", Partition: "bc"},
		{Namespace: "abc", Partition: ""}, {Namespace: "", Partition: "abc"},
		{Namespace: "1:a", Partition: "b"}, {Namespace: "1", Partition: ":ab"},
	} {
		k, _ := c.appendKey(nil, q)
		if prev, dup := seen[string(k)]; dup {
			t.Errorf("%+v and %+v share the key %q", prev, q, k)
		}
		seen[string(k)] = q
	}
}

// TestMayBlock: only a Store that can wait on the network (a remote embedder, Redis sharing)
// asks its caller for a deadline.
func TestMayBlock(t *testing.T) {
	local, err := NewLocal()
	if err != nil {
		t.Fatal(err)
	}
	remote := EmbedderFunc{N: 4, Fn: func(context.Context, []string) ([][]float32, error) { return nil, nil }}
	for _, tc := range []struct {
		name string
		emb  Embedder
		want bool
	}{{"local", local, false}, {"remote", remote, true}} {
		c, err := New(Options{Embedder: tc.emb})
		if err != nil {
			t.Fatal(err)
		}
		if got := c.MayBlock(); got != tc.want {
			t.Errorf("%s embedder: MayBlock() = %v, want %v", tc.name, got, tc.want)
		}
	}
	t.Run("redis", func(t *testing.T) {
		addr, prefix := redistest.Addr(t), redistest.Prefix(t) // skips without ZEST_TEST_REDIS
		if c := sharedReplica(t, addr, prefix, local, time.Now); !c.MayBlock() {
			t.Error("local embedder with Redis sharing: MayBlock() = false, want true")
		}
	})
}
