package semantic

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"time"
)

// Store embeds q.Prompt and stores value under id in q's namespace and
// partition for ttl. Storing an existing id replaces that entry (wherever it
// was). value is kept, not copied (the caller must not modify it), and may be
// nil when the caller keeps the answer itself under id (Hit.Value is then nil).
// Beyond MaxEntries or MaxBytes, expired entries are dropped first, then the
// entries that expire soonest. An embedder failure is returned as an error and
// counted; a prompt with nothing to embed (no word the embedder knows) is not
// stored and is not an error.
func (c *Cache) Store(ctx context.Context, q Query, id string, value []byte, ttl time.Duration) error {
	if id == "" {
		return errors.New("semantic: store: empty id")
	}
	if ttl <= 0 {
		return errors.New("semantic: store: ttl must be positive")
	}
	vec, ok, err := c.embed(ctx, q.Prompt, q.Vector)
	if err != nil || !ok {
		return err
	}
	now := c.now()
	e := &entry{
		id:      id,
		value:   value,
		prompt:  q.Prompt,
		stored:  now,
		expires: now.Add(ttl),
	}
	var kb [160]byte
	kbuf, _ := c.appendKey(kb[:0], q)
	key := string(kbuf)
	if err := c.insert(ctx, key, q.Namespace, vec, e); err != nil {
		return err
	}
	c.share.publishStore(ctx, key, q.Namespace, vec, e)
	return nil
}

// insert files e under the partition key with its vector, replacing an entry of the same id,
// then applies expiry and the size cap.
func (c *Cache) insert(ctx context.Context, key, ns string, vec []float32, e *entry) error {
	now := c.now()
	id := e.id
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.entries[id]; ok {
		c.removeLocked(old)
	}
	p, ok := c.parts[key]
	if !ok {
		p = &partition{key: key, ns: ns, idx: newIndex(c.kind, len(vec)), cost: partitionCost(key)}
		c.parts[key] = p
		c.bytes += p.cost
	}
	if err := p.idx.add(ctx, id, vec); err != nil {
		c.stats.indexErrors.Add(1)
		c.dropIfEmptyLocked(p)
		return fmt.Errorf("semantic: store: %w", err)
	}
	c.seq++
	e.seq = c.seq
	e.part = p
	e.cost = entryCost(e, len(vec))
	c.bytes += e.cost
	c.entries[id] = e
	heap.Push(&c.expiry, e)
	c.sweepLocked(now)
	for len(c.entries) > c.maxEntries || (c.bytes > c.maxBytes && len(c.entries) > 0) {
		c.removeLocked(c.expiry[0])
		c.stats.evictions.Add(1)
	}
	return nil
}

// Delete removes the entry with this id (from every replica, with Options.Redis) and reports
// whether this replica held one.
func (c *Cache) Delete(id string) bool {
	c.share.publish(change{op: opDelete, arg: id})
	return c.deleteLocal(id)
}

// Forget removes the entry with this id from this replica only: for an entry found stale here
// (its answer gone from the caller's store), which other replicas may still serve.
func (c *Cache) Forget(id string) bool { return c.deleteLocal(id) }

// deleteLocalIn removes the entry with this id from this replica when it belongs to ns.
func (c *Cache) deleteLocalIn(ns, id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[id]
	if ok && e.part.ns == ns {
		c.removeLocked(e)
		return true
	}
	return false
}

func (c *Cache) deleteLocal(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[id]
	if ok {
		c.removeLocked(e)
	}
	return ok
}

// DeleteNamespace removes every entry of namespace ns (from every replica, with Options.Redis)
// and returns how many this replica held.
func (c *Cache) DeleteNamespace(ns string) int {
	c.share.publish(change{op: opDeleteNS, arg: ns})
	return c.deleteNamespaceLocal(ns)
}

func (c *Cache) deleteNamespaceLocal(ns string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, e := range c.entries {
		if e.part.ns == ns {
			c.removeLocked(e)
			n++
		}
	}
	return n
}

// Purge removes every entry (from every replica, with Options.Redis).
func (c *Cache) Purge() {
	c.share.publish(change{op: opPurge})
	c.purgeLocal()
}

func (c *Cache) purgeLocal() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reset()
}

// removeLocked removes e from the table, the expiry heap and its index,
// and drops the partition once empty. c.mu must be held for writing.
func (c *Cache) removeLocked(e *entry) {
	delete(c.entries, e.id)
	c.bytes -= e.cost
	heap.Remove(&c.expiry, e.heapIdx)
	if err := e.part.idx.remove(e.id); err != nil {
		c.stats.indexErrors.Add(1)
		c.log.Debug("semantic: delete failed", "id", e.id, "err", err)
	}
	c.dropIfEmptyLocked(e.part)
}

func (c *Cache) dropIfEmptyLocked(p *partition) {
	if p.idx.count() == 0 && c.parts[p.key] == p {
		delete(c.parts, p.key)
		c.bytes -= p.cost
	}
}

// sweepLocked removes every entry expired at now; they sit at the top of the
// expiry heap. c.mu must be held for writing.
func (c *Cache) sweepLocked(now time.Time) {
	for len(c.expiry) > 0 && !c.expiry[0].expires.After(now) {
		c.removeLocked(c.expiry[0])
		c.stats.expired.Add(1)
	}
}

// sweepIfDue sweeps expired entries if there are any, taking the write lock
// only then.
func (c *Cache) sweepIfDue(now time.Time) {
	c.mu.RLock()
	due := len(c.expiry) > 0 && !c.expiry[0].expires.After(now)
	c.mu.RUnlock()
	if due {
		c.mu.Lock()
		c.sweepLocked(now)
		c.mu.Unlock()
	}
}

// entryOverhead approximates what an entry costs beyond its vector, prompt, id and value: the
// entry and heap records, the id in two maps and in the index, the index's own bookkeeping.
const entryOverhead = 288

// partitionOverhead approximates a partition's own memory beyond its key: its record, its
// index's bookkeeping and its place in the partition table. Most partitions hold one entry
// (numbers in a prompt make their own partition), so this is charged, not ignored.
const partitionOverhead = 128

// partitionCost is what a partition under key is charged against MaxBytes while it exists.
func partitionCost(key string) int64 { return int64(partitionOverhead + len(key)) }

// entryCost is what e is charged against MaxBytes (dim is its vector's length, stored once as
// float32 and once quantised).
func entryCost(e *entry, dim int) int64 {
	return int64(len(e.value)+len(e.prompt)+3*len(e.id)+5*dim) + entryOverhead
}
