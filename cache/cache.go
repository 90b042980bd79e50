// Package cache is zest's exact cache: key derivation over a canonical form of the request body,
// and a byte-budgeted in-memory store of complete answers over ristretto.
package cache

import (
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
// upstream base URL, the request path and the canonical body (see ParseRequest).
func Key(namespace, upstream, path string, canonical []byte) string {
	bp := keyBufs.Get().(*[]byte)
	b := append((*bp)[:0], namespace...)
	b = append(b, 0)
	b = append(b, upstream...)
	b = append(b, 0)
	b = append(b, path...)
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
// renderings held through Rendering.
type Entry struct {
	Key       string
	Namespace string
	Model     string
	Body      []byte // the complete chat.completion JSON
	Stored    time.Time
	Expires   time.Time
	// PromptTokens and CompletionTokens are the answer's usage, what a hit saves.
	PromptTokens, CompletionTokens int

	renderings [4]atomic.Pointer[[]byte]
}

// Rendering returns the memoised rendering number i (0..3) of the entry, building it once
// with build. Concurrent first calls may each build; one result wins.
func (e *Entry) Rendering(i int, build func() ([]byte, error)) ([]byte, error) {
	if p := e.renderings[i].Load(); p != nil {
		return *p, nil
	}
	b, err := build()
	if err != nil {
		return nil, err
	}
	e.renderings[i].CompareAndSwap(nil, &b)
	return *e.renderings[i].Load(), nil
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
}

// Stats are counters of a Cache since it was made.
type Stats struct {
	Hits, Misses, Stores, Evictions, Rejections, Deletes uint64
	Entries                                              int
	Bytes                                                int64
	MaxBytes                                             int64
}

// Cache is the exact cache. It is safe for concurrent use. A Set is visible to Get after Wait.
type Cache struct {
	store    *ristretto.Cache[string, *Entry]
	now      func() time.Time
	maxBytes int64
	remote   *tier // nil = no Redis tier

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
	c := &Cache{now: opts.Now, maxBytes: opts.MaxBytes}
	// About ten counters per item the budget holds at ~2 KiB an answer, within sane bounds.
	counters := opts.MaxBytes / 2048 * 10
	counters = max(counters, 1e4)
	counters = min(counters, 1e7)
	store, err := ristretto.NewCache(&ristretto.Config[string, *Entry]{
		NumCounters:        counters,
		MaxCost:            opts.MaxBytes,
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
		c.remote = newTier(c, opts.Redis, log)
	}
	return c, nil
}

// Get returns the live entry stored under key.
func (c *Cache) Get(key string) (*Entry, bool) {
	e, ok := c.store.Get(key)
	if !ok || !c.now().Before(e.Expires) {
		c.misses.Add(1)
		return nil, false
	}
	c.hits.Add(1)
	return e, true
}

// Set stores e under e.Key until e.Expires. It does not wait: the entry becomes visible to Get
// shortly after, or at once after Wait. It reports false when the entry is already expired,
// larger than the budget, or dropped under contention; the admission policy may still turn it
// away later (Rejections counts those).
func (c *Cache) Set(e *Entry) bool {
	ttl := e.Expires.Sub(c.now())
	if ttl <= 0 {
		return false
	}
	c.remote.put(e, ttl)
	cost := int64(len(e.Body)+len(e.Key)+len(e.Namespace)+len(e.Model)) + entryOverhead
	if cost > c.maxBytes || !c.store.SetWithTTL(e.Key, e, cost, ttl) {
		c.rejections.Add(1)
		return false
	}
	c.stores.Add(1)
	return true
}

// Wait blocks until every Set before it is visible to Get (or was turned away), and written to
// the Redis tier (or failed).
func (c *Cache) Wait() {
	c.store.Wait()
	c.remote.wait()
}

// Delete removes the entry under key, from every replica when there is a Redis tier; it
// reports whether this replica's local tier held it.
func (c *Cache) Delete(key string) bool {
	c.remote.delete(key)
	return c.deleteLocal(key)
}

func (c *Cache) deleteLocal(key string) bool {
	_, ok := c.store.Get(key)
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
	var keys []string
	c.store.IterValues(func(e *Entry) bool {
		if e.Namespace == ns {
			keys = append(keys, e.Key)
		}
		return false
	})
	for _, k := range keys {
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
	n := c.Len()
	c.store.Clear()
	c.deletes.Add(uint64(n))
	return n
}

// Len counts the stored entries (expired ones not yet collected included). It walks the store.
func (c *Cache) Len() int {
	n := 0
	c.store.IterValues(func(*Entry) bool { n++; return false })
	return n
}

// Stats returns the counters and the current size.
func (c *Cache) Stats() Stats {
	return Stats{
		Hits: c.hits.Load(), Misses: c.misses.Load(), Stores: c.stores.Load(),
		Evictions: c.evictions.Load(), Rejections: c.rejections.Load(), Deletes: c.deletes.Load(),
		Entries:  c.Len(),
		Bytes:    c.maxBytes - c.store.RemainingCost(),
		MaxBytes: c.maxBytes,
	}
}

// Close stops the store's goroutines, after the Redis writes in flight.
func (c *Cache) Close() {
	c.remote.close()
	c.store.Close()
}
