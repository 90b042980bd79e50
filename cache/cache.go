// Package cache is zest's exact cache: key derivation over a canonical form of the request body,
// and a byte-budgeted in-memory store of complete answers over ristretto.
package cache

import (
	"bytes"
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/zest-proxy/zest/internal/redisx"
)

// Key returns the exact-cache key of a request: the hex SHA-256 over the namespace, the
// target (what besides the body selects the answer: method, upstream URL with path and query,
// headers that change the answer; see the proxy's cacheKey) and the canonical body (see
// ParseRequest).
func Key(namespace, target string, canonical []byte) string {
	bp := keyBufs.Get().(*[]byte)
	b := append((*bp)[:0], namespace...)
	b = append(b, 0)
	b = append(b, target...)
	b = append(b, 0)
	b = append(b, canonical...)
	sum := sha256.Sum256(b)
	*bp = b
	keyBufs.Put(bp)
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], sum[:])
	return string(out[:])
}

var keyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// Entry is one stored answer. Entries are immutable once stored, except for the memoised
// renderings held through Cache.Rendering.
type Entry struct {
	Key       string
	Namespace string
	Model     string
	Body      []byte // the complete chat.completion JSON
	Stored    time.Time
	Expires   time.Time
	// PromptTokens and CompletionTokens are the answer's usage, what a hit saves.
	PromptTokens, CompletionTokens int
	// SemanticOnly marks an answer kept only for the semantic cache (a semantic_only request
	// stored it): Get does not serve it, GetAny does.
	SemanticOnly bool

	renderings [4]atomic.Pointer[[]byte]
}

// Rendering returns the memoised rendering number i (0..3) of e, building it once with build.
// A new rendering is charged to the budget with the entry (the entry is stored again at its
// larger cost, which may evict others). Concurrent first calls may each build; one result wins.
func (c *Cache) Rendering(e *Entry, i int, build func() ([]byte, error)) ([]byte, error) {
	if p := e.renderings[i].Load(); p != nil {
		return *p, nil
	}
	b, err := build()
	if err != nil {
		return nil, err
	}
	b = fitted(b)
	if e.renderings[i].CompareAndSwap(nil, &b) {
		c.recharge(e)
	}
	return *e.renderings[i].Load(), nil
}

// recharge charges e again at its current cost. In the window that is a change of its
// charge; in the store, e is stored again as a new item, so that the store evicts what no
// longer fits (an update of an item's cost evicts nothing). The entry stays visible
// meanwhile; a later settle (see settleSoon) or Wait drops its slot.
func (c *Cache) recharge(e *Entry) {
	ttl := e.Expires.Sub(c.now())
	if ttl <= 0 {
		return
	}
	inWindow, victims := c.rechargeWindow(e)
	if !inWindow {
		if !c.pendIfCurrent(e) {
			return // replaced or gone meanwhile
		}
		c.store.Del(e.Key)
		// The store applies the delete later: an older queued write of e landing before it
		// would make the write below an update, which that delete then undoes. Let it apply.
		c.store.Wait()
		victims = []*Entry{e}
	}
	if c.promote(victims) {
		c.settleSoon()
	}
}

// Options configures a Cache.
type Options struct {
	// MaxBytes is the memory budget for stored answers. Default 256 MiB.
	MaxBytes int64
	// Now is the clock used for expiry. Default time.Now.
	Now func() time.Time
	// Logger receives nothing on the hot path; nil discards.
	Logger *slog.Logger
	// Redis, when set, is the shared second tier behind the in-memory one (see GetContext,
	// WaitShared, RedisStats); nil = in memory only.
	Redis *redisx.Client
	// MaxPendingPurges bounds the purges kept, while Redis is unreachable, to replay when it
	// is back; beyond it they are replaced by one purge of the whole shared cache. Default
	// redisx.DefaultBacklog (10000). Used only with Redis.
	MaxPendingPurges int
}

// Stats are counters of a Cache since it was made.
type Stats struct {
	Hits, Misses, Stores, Evictions, Rejections, Deletes uint64
	Entries                                              int
	Bytes                                                int64
	MaxBytes                                             int64
}

// Cache is the exact cache. It is safe for concurrent use.
//
// Invariant: an entry is visible to Get as soon as Set returns. Set puts it in the window
// (see window.go), a FIFO of the newest entries that holds a sixteenth of MaxBytes; an entry
// pushed out of the window is offered to ristretto, which holds the rest of the budget and
// admits it only if its hits so far beat those of what it would evict. ristretto applies
// writes asynchronously, so an offered entry stays visible through the window's table until a
// settle has seen ristretto apply it: one runs in the background once settleBatch offered
// entries (or a quarter of the window's bytes) wait, and Wait runs one.
type Cache struct {
	store    *ristretto.Cache[string, *Entry]
	now      func() time.Time
	maxBytes int64 // window + store
	winMax   int64 // the window's share of maxBytes
	remote   *tier // nil = no Redis tier

	bg         sync.WaitGroup // background settles, finished before Close
	pmu        sync.RWMutex
	slots      map[string]slot // entries not (yet) applied by the store: the window, and offered ones
	fifo       list.List       // the window's entries, oldest first (Value: *Entry)
	winBytes   int64           // what the window's entries are charged, under pmu
	pseq       uint64          // under pmu
	offers     []offer         // writes queued to the store and not yet settled, under pmu
	offerBytes int64           // what the offered entries are charged, under pmu
	settling   atomic.Bool     // a background settle runs
	nslots     atomic.Int64    // len(slots), read without the lock on the hit path

	hits, misses, stores, evictions, rejections, deletes atomic.Uint64
}

// entryOverhead approximates the memory of an entry beyond its body and key.
const entryOverhead = 256

// New returns an empty cache.
func New(opts Options) (*Cache, error) {
	if opts.MaxBytes == 0 {
		opts.MaxBytes = 256 << 20
	}
	if opts.MaxBytes < 0 {
		return nil, errors.New("cache: MaxBytes must be positive")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &Cache{now: opts.Now, maxBytes: opts.MaxBytes, winMax: opts.MaxBytes / 16, slots: map[string]slot{}}
	// About ten counters per item the budget holds at ~2 KiB an answer, within sane bounds.
	counters := opts.MaxBytes / 2048 * 10
	counters = max(counters, 1e4)
	counters = min(counters, 1e7)
	store, err := ristretto.NewCache(&ristretto.Config[string, *Entry]{
		NumCounters:        counters,
		MaxCost:            opts.MaxBytes - c.winMax,
		BufferItems:        64,
		IgnoreInternalCost: true,
		OnEvict:            func(*ristretto.Item[*Entry]) { c.evictions.Add(1) },
		OnReject:           func(*ristretto.Item[*Entry]) { c.rejections.Add(1) },
	})
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	c.store = store
	if opts.Redis != nil {
		log := opts.Logger
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		c.remote = newTier(c, opts.Redis, log, opts.MaxPendingPurges)
	}
	return c, nil
}

// Get returns the live entry stored under key for an exact hit (never a SemanticOnly one),
// and counts the hit or miss.
func (c *Cache) Get(key string) (*Entry, bool) {
	e, ok := c.lookup(key)
	if !ok || e.SemanticOnly {
		c.misses.Add(1)
		return nil, false
	}
	c.hits.Add(1)
	return e, true
}

// GetAny returns the live entry stored under key, SemanticOnly ones included: the semantic
// cache keeps its answers here. It counts nothing.
func (c *Cache) GetAny(key string) (*Entry, bool) { return c.lookup(key) }

// lookup finds the live entry under key, in the window's table first. Every lookup counts as
// an access for the store's admission policy.
func (c *Cache) lookup(key string) (*Entry, bool) {
	var e *Entry
	ok := false
	if c.nslots.Load() > 0 {
		c.pmu.RLock()
		var s slot
		s, ok = c.slots[key]
		e = s.e
		c.pmu.RUnlock()
		if ok {
			c.store.Get(key) // counts the access, so that the entry's hits speak for it later
		}
	}
	if !ok {
		e, ok = c.store.Get(key)
	}
	if !ok || !c.now().Before(e.Expires) {
		return nil, false
	}
	return e, true
}

// Set stores e under e.Key until e.Expires; e is visible to Get when Set returns. It does
// not wait for the store's own bookkeeping (Wait does). It reports false when the entry is
// already expired or larger than the budget; an entry leaving the window may still be turned
// away by the store's admission policy (Rejections counts those).
func (c *Cache) Set(e *Entry) bool {
	ttl := e.Expires.Sub(c.now())
	if ttl <= 0 {
		return false
	}
	e.Body = fitted(e.Body)
	if e.SemanticOnly {
		if cur, ok := c.lookup(e.Key); ok && !cur.SemanticOnly {
			return true // an exact entry for the same request serves the semantic cache too
		}
	}
	c.remote.put(e, ttl)
	return c.setLocal(e)
}

// setLocal stores e in the in-memory tier only, visible at once (see Set).
func (c *Cache) setLocal(e *Entry) bool {
	cost := c.Cost(e)
	if cost > c.maxBytes-c.winMax {
		c.rejections.Add(1)
		return false
	}
	if c.promote(c.enter(e, cost)) {
		c.settleSoon()
	}
	c.stores.Add(1)
	return true
}

// Cost is what an entry is charged against MaxBytes: the memory of its body (its capacity,
// not just its length), key, namespace and model, the renderings built so far, and a fixed
// per-entry overhead.
func (c *Cache) Cost(e *Entry) int64 {
	n := int64(cap(e.Body)+len(e.Key)+len(e.Namespace)+len(e.Model)) + entryOverhead
	for i := range e.renderings {
		if p := e.renderings[i].Load(); p != nil {
			n += int64(cap(*p))
		}
	}
	return n
}

// fitted returns b, or a copy of exactly its length when b's spare capacity (what a growing
// buffer leaves) would waste more than a sixteenth of it: stored bytes stay what is charged.
func fitted(b []byte) []byte {
	if cap(b)-len(b) > len(b)/16 {
		return bytes.Clone(b)
	}
	return b
}

// Wait blocks until every Set before it has been applied by the store (or turned away by its
// admission policy) and written to the Redis tier (or failed), and empties the window's table
// of the entries offered to the store before it.
func (c *Cache) Wait() {
	c.settleLocal()
	c.remote.wait()
}

// WaitRemote blocks until the writes to the Redis tier started before it are done (or failed);
// without a Redis tier it returns at once. Local writes need no wait: they are visible when
// Set returns.
func (c *Cache) WaitRemote() { c.remote.wait() }

// HasRemote reports whether the cache has a Redis tier (whose writes WaitRemote waits for).
func (c *Cache) HasRemote() bool { return c.remote != nil }

// Delete removes the entry under key, from every replica when there is a Redis tier; it
// reports whether this replica's local tier held it.
func (c *Cache) Delete(key string) bool {
	c.remote.delete(key)
	return c.deleteLocal(key)
}

func (c *Cache) deleteLocal(key string) bool {
	_, ok := c.lookup(key)
	c.unpend(key, nil)
	c.store.Del(key)
	if ok {
		c.deletes.Add(1)
	}
	return ok
}

// DeleteNamespace removes every entry of one namespace (from every replica when there is a
// Redis tier) and returns how many this replica's local tier held.
func (c *Cache) DeleteNamespace(ns string) int {
	c.remote.deleteNamespace(ns)
	return c.deleteNamespaceLocal(ns)
}

func (c *Cache) deleteNamespaceLocal(ns string) int {
	c.settleLocal()
	keys := c.windowKeys(func(e *Entry) bool { return e.Namespace == ns })
	c.store.IterValues(func(e *Entry) bool {
		if e.Namespace == ns {
			keys[e.Key] = struct{}{}
		}
		return false
	})
	for k := range keys {
		c.unpend(k, nil)
		c.store.Del(k)
	}
	c.deletes.Add(uint64(len(keys)))
	return len(keys)
}

// Clear removes every entry (from every replica when there is a Redis tier) and returns how
// many this replica's local tier held.
func (c *Cache) Clear() int {
	c.remote.clear()
	return c.clearLocal()
}

func (c *Cache) clearLocal() int {
	c.settleLocal()
	n := c.Len()
	c.clearWindow()
	c.store.Clear()
	c.deletes.Add(uint64(n))
	return n
}

// Entries returns the live entries of the in-memory tier, SemanticOnly ones included, in no
// order: what a snapshot of the cache saves. It settles the writes offered to the store, then
// walks the window and the store (outside their locks once the slice is built, so callers may
// take their time). The slice is transient and bounded: every entry is charged at least 256
// bytes of MaxBytes, so it holds at most MaxBytes/256 pointers (8 MiB for the default 256 MiB).
func (c *Cache) Entries() []*Entry {
	c.settleLocal()
	now := c.now()
	var out []*Entry
	var newer map[string]bool // keys in the table: their entries are newer than the store's
	c.pmu.RLock()
	for k, s := range c.slots {
		if newer == nil {
			newer = make(map[string]bool, len(c.slots))
		}
		newer[k] = true
		if now.Before(s.e.Expires) {
			out = append(out, s.e)
		}
	}
	c.pmu.RUnlock()
	c.store.IterValues(func(e *Entry) bool {
		if !newer[e.Key] && now.Before(e.Expires) {
			out = append(out, e)
		}
		return false
	})
	return out
}

// Len counts the stored entries (expired ones not yet collected included; a key whose new
// entry is in the window while the old one is still in the store counts twice). It walks the
// store.
func (c *Cache) Len() int {
	c.pmu.RLock()
	n := c.fifo.Len()
	c.pmu.RUnlock()
	c.store.IterValues(func(*Entry) bool { n++; return false })
	return n
}

// Stats returns the counters and the current size.
func (c *Cache) Stats() Stats {
	c.pmu.RLock()
	win := c.winBytes
	c.pmu.RUnlock()
	return Stats{
		Hits: c.hits.Load(), Misses: c.misses.Load(), Stores: c.stores.Load(),
		Evictions: c.evictions.Load(), Rejections: c.rejections.Load(), Deletes: c.deletes.Load(),
		Entries:  c.Len(),
		Bytes:    c.maxBytes - c.winMax - c.store.RemainingCost() + win,
		MaxBytes: c.maxBytes,
	}
}

// Close stops the store's goroutines, after the Redis writes in flight. No other call may run
// during or after it.
func (c *Cache) Close() {
	c.bg.Wait()
	c.remote.close()
	c.store.Close()
}
