package cache

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeClock) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.t }
func (f *fakeClock) Add(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

func newTestCache(t *testing.T, clock *fakeClock, maxBytes int64) *Cache {
	t.Helper()
	c, err := New(Options{MaxBytes: maxBytes, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func entry(clock *fakeClock, key, ns string, ttl time.Duration) *Entry {
	now := clock.Now()
	return &Entry{Key: key, Namespace: ns, Body: []byte(`{"id":"` + key + `"}`), Stored: now, Expires: now.Add(ttl)}
}

func TestSetGetExpire(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	c := newTestCache(t, clock, 1<<20)
	if !c.Set(entry(clock, "k1", "a", time.Minute)) {
		t.Fatal("Set refused a small entry")
	}
	c.Wait()
	e, ok := c.Get("k1")
	if !ok || string(e.Body) != `{"id":"k1"}` {
		t.Fatalf("Get after Set = %v, %v", e, ok)
	}
	clock.Add(59 * time.Second)
	if _, ok := c.Get("k1"); !ok {
		t.Fatal("entry gone before its TTL")
	}
	clock.Add(time.Second)
	if _, ok := c.Get("k1"); ok {
		t.Fatal("entry served at its expiry time")
	}
	if c.Set(entry(clock, "k2", "a", 0)) {
		t.Fatal("Set accepted an already expired entry")
	}
	st := c.Stats()
	if st.Hits != 2 || st.Misses != 1 || st.Stores != 1 {
		t.Errorf("stats = %+v, want 2 hits, 1 miss, 1 store", st)
	}
}

func TestDeleteAndNamespaces(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	c := newTestCache(t, clock, 1<<20)
	for _, k := range []string{"a1", "a2", "b1"} {
		c.Set(entry(clock, k, k[:1], time.Hour))
	}
	c.Wait()
	if !c.Delete("a1") || c.Delete("a1") {
		t.Fatal("Delete should report true once")
	}
	if n := c.DeleteNamespace("a"); n != 1 {
		t.Fatalf("DeleteNamespace(a) = %d, want 1", n)
	}
	if _, ok := c.Get("a2"); ok {
		t.Fatal("a2 survived its namespace purge")
	}
	if _, ok := c.Get("b1"); !ok {
		t.Fatal("b1 lost in another namespace's purge")
	}
	if n := c.Clear(); n != 1 {
		t.Fatalf("Clear = %d, want 1", n)
	}
	if _, ok := c.Get("b1"); ok {
		t.Fatal("b1 survived Clear")
	}
}

func TestByteBudget(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	c := newTestCache(t, clock, 64<<10)
	big := &Entry{Key: "big", Body: []byte(strings.Repeat("x", 128<<10)), Expires: clock.Now().Add(time.Hour)}
	if c.Set(big) {
		t.Fatal("an entry larger than the whole budget was stored")
	}
	for i := range 200 {
		e := entry(clock, "k"+strings.Repeat("0", i%7)+string(rune('a'+i%26))+time.Duration(i).String(), "n", time.Hour)
		e.Body = []byte(strings.Repeat("y", 2048))
		c.Set(e)
	}
	c.Wait()
	if st := c.Stats(); st.Bytes > 64<<10 {
		t.Fatalf("cache holds %d bytes, budget %d", st.Bytes, 64<<10)
	}
}

// TestRenderingCharged: a rendering is built once and then charged to the budget with its
// entry, so renderings cannot carry the cache past it.
func TestRenderingCharged(t *testing.T) {
	c, err := New(Options{MaxBytes: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	exp := time.Now().Add(time.Hour)
	calls := 0
	for i := range 100 {
		e := &Entry{Key: fmt.Sprint("k", i), Body: make([]byte, 4<<10), Expires: exp}
		c.Set(e)
		build := func() ([]byte, error) { calls++; return make([]byte, 16<<10), nil }
		for range 2 {
			if b, err := c.Rendering(e, 1, build); err != nil || len(b) != 16<<10 {
				t.Fatalf("Rendering = %d bytes, %v", len(b), err)
			}
		}
		c.Wait()
		if st := c.Stats(); st.Bytes > 256<<10 {
			t.Fatalf("after %d entries: %d bytes charged, budget %d", i+1, st.Bytes, 256<<10)
		}
	}
	if calls != 100 {
		t.Errorf("build called %d times for 100 entries, want once each", calls)
	}
	// With renderings charged, far fewer than 100 entries of 20 KiB fit in 256 KiB.
	if n := c.Len(); n > 14 {
		t.Errorf("%d entries held: renderings are not charged", n)
	}
}

// TestSetVisibleAtOnce: an entry is visible to Get as soon as Set returns, without Wait, and
// stays visible after the store applies it; Delete and Clear reach pending entries too.
func TestSetVisibleAtOnce(t *testing.T) {
	c, err := New(Options{MaxBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	exp := time.Now().Add(time.Hour)
	for i := range 2000 {
		k := fmt.Sprintf("k%d", i)
		if !c.Set(&Entry{Key: k, Body: []byte("answer"), Expires: exp}) {
			t.Fatalf("Set %s refused", k)
		}
		if _, ok := c.Get(k); !ok {
			t.Fatalf("entry %s not visible right after Set", k)
		}
	}
	c.Wait()
	for i := range 2000 {
		if _, ok := c.Get(fmt.Sprintf("k%d", i)); !ok {
			t.Fatalf("entry k%d lost after Wait", i)
		}
	}
	c.Set(&Entry{Key: "gone", Body: []byte("x"), Expires: exp})
	if !c.Delete("gone") {
		t.Error("Delete of a pending entry reported nothing there")
	}
	if _, ok := c.Get("gone"); ok {
		t.Error("a deleted pending entry is still served")
	}
	c.Set(&Entry{Key: "cleared", Body: []byte("x"), Expires: exp})
	c.Clear()
	if _, ok := c.Get("cleared"); ok {
		t.Error("a pending entry survived Clear")
	}
}

// TestVisibleThroughRecharge: an entry stays visible while a rendering recharges it, however
// Waits interleave (a Wait once settled a recharge whose write was not yet queued, and the
// entry vanished until the store applied it).
func TestVisibleThroughRecharge(t *testing.T) {
	c, err := New(Options{MaxBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				c.Wait()
			}
		}
	}()
	exp := time.Now().Add(time.Hour)
	for i := range 500 {
		e := &Entry{Key: fmt.Sprint("k", i), Body: []byte("answer"), Expires: exp}
		c.Set(e)
		for slot := range 2 {
			if _, err := c.Rendering(e, slot, func() ([]byte, error) { return []byte("sse rendering"), nil }); err != nil {
				t.Fatal(err)
			}
			if _, ok := c.Get(e.Key); !ok {
				close(stop)
				wg.Wait()
				t.Fatalf("entry %d invisible after rendering slot %d", i, slot)
			}
		}
	}
	close(stop)
	wg.Wait()
}

// TestNewAnswerServedOnRepeat: once the cache is full, a new answer is still served when its
// prompt is asked again right away. (ristretto alone turned nearly all of them away: their one
// access lost to the victims' several.) The budget holds meanwhile.
func TestNewAnswerServedOnRepeat(t *testing.T) {
	const budget = 1 << 20
	c, err := New(Options{MaxBytes: budget})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	exp := time.Now().Add(time.Hour)
	body := bytes.Repeat([]byte("a"), 10<<10)
	for i := range 2000 { // twenty times what the budget holds
		k := fmt.Sprint("k", i)
		if _, ok := c.Get(k); ok {
			t.Fatalf("%s: hit before it was stored", k)
		}
		if !c.Set(&Entry{Key: k, Body: body, Expires: exp}) {
			t.Fatalf("Set %s refused", k)
		}
		c.Wait()
		for ask := range 2 {
			if _, ok := c.Get(k); !ok {
				t.Fatalf("answer %d missing on repeat %d, right after it was stored", i, ask+1)
			}
		}
		if st := c.Stats(); st.Bytes > budget {
			t.Fatalf("after %d answers the cache holds %d bytes, over its budget of %d", i+1, st.Bytes, budget)
		}
	}
	if st := c.Stats(); st.Entries < 50 {
		t.Errorf("a full 1 MiB cache of 10 KiB answers holds %d entries", st.Entries)
	}
}

// TestEntries: a snapshot sees every live entry once, in its latest version, SemanticOnly ones
// included, and no expired one.
func TestEntries(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	c := newTestCache(t, clock, 1<<20)
	c.Set(entry(clock, "long", "a", time.Hour))
	c.Set(entry(clock, "short", "a", time.Minute))
	sem := entry(clock, "sem", "b", time.Hour)
	sem.SemanticOnly = true
	c.Set(sem)
	c.Wait()
	newer := entry(clock, "long", "a", 2*time.Hour) // replaces the first, not yet settled
	c.Set(newer)
	clock.Add(time.Minute)
	got := map[string]*Entry{}
	for _, e := range c.Entries() {
		if got[e.Key] != nil {
			t.Fatalf("entry %s listed twice", e.Key)
		}
		got[e.Key] = e
	}
	if len(got) != 2 || got["long"] != newer || got["sem"] != sem {
		t.Errorf("entries %v: want the newer long and sem, not the expired short", got)
	}
}

// TestOfferedSettleWithoutWait: entries pushed out of the window are settled in the background
// in batches, so a cache nobody calls Wait on keeps its table to the window plus less than a
// batch (it once held every offered entry until a Wait, which then walked the whole table).
func TestOfferedSettleWithoutWait(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	c := newTestCache(t, clock, 1<<20)
	for i := range 5000 { // about fifty times what the window holds
		e := entry(clock, fmt.Sprint("k", i), "n", time.Hour)
		e.Body = bytes.Repeat([]byte("b"), 1024)
		if !c.Set(e) {
			t.Fatalf("Set %d refused", i)
		}
	}
	c.bg.Wait() // the background settles started so far, and those they started
	c.pmu.RLock()
	defer c.pmu.RUnlock()
	if n := len(c.offers); n >= settleBatch || c.offerBytes >= c.winMax/4 {
		t.Errorf("%d offered entries (%d bytes) left unsettled; a settle starts at %d or %d bytes", n, c.offerBytes, settleBatch, c.winMax/4)
	}
	if extra := len(c.slots) - c.fifo.Len(); extra >= settleBatch {
		t.Errorf("the table holds %d entries beyond the window's %d", extra, c.fifo.Len())
	}
}
