package semantic

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Store files value under id in q's namespace and partition for ttl. Storing an existing id
// replaces that entry (wherever it was). value is kept, not copied (the caller must not modify
// it), and may be nil when the caller keeps the answer itself under id (Hit.Value is then nil).
// Beyond MaxEntries or MaxBytes, expired entries are dropped first, then the entries that
// expire soonest.
//
// The entry's vector is q.Vector, or q.Prompt embedded. The first entry of a partition (no
// lookup has embedded its prompt, and there is nothing to compare it with yet) is filed without
// one, unless the cache is shared through Redis: it is embedded when a lookup first reaches the
// partition, and never if none does, as with most prompts whose numbers make a partition of
// their own. An embedder failure is returned as an error and counted; a prompt with nothing to
// embed (no word the embedder knows) is not kept and is not an error.
func (c *Cache) Store(ctx context.Context, q Query, id string, value []byte, ttl time.Duration) error {
	if id == "" {
		return errors.New("semantic: store: empty id")
	}
	if ttl <= 0 {
		return errors.New("semantic: store: ttl must be positive")
	}
	var kb [160]byte
	kbuf, _ := c.appendKey(kb[:0], q)
	key := string(kbuf)
	newEntry := func() *entry {
		now := c.now()
		return &entry{id: id, value: value, prompt: q.Prompt, stored: now, expires: now.Add(ttl)}
	}
	if len(q.Vector) == 0 && c.share == nil {
		// Filed without a vector if its partition is new, under one lock with the check.
		if filed, err := c.insert(ctx, key, q.Namespace, nil, newEntry(), true); filed || err != nil {
			return err
		}
	}
	vec, ok, err := c.embed(ctx, q.Prompt, q.Vector)
	if err != nil || !ok {
		return err
	}
	e := newEntry()
	c.key(e, q.Keys, q.Words)
	if _, err := c.insert(ctx, key, q.Namespace, vec, e, false); err != nil {
		return err
	}
	c.share.publishStore(ctx, key, q.Namespace, vec, e)
	return nil
}

// insert files e under the partition key with its vector (nil: pending, see Store), replacing
// an entry of the same id, then applies expiry and the size cap. With onlyNew it files e only
// when no partition is under key, and reports whether it did.
func (c *Cache) insert(ctx context.Context, key, ns string, vec []float32, e *entry, onlyNew bool) (bool, error) {
	now := c.now()
	id := e.id
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.parts[key]
	if ok && onlyNew {
		return false, nil
	}
	if old, found := c.entries[id]; found {
		c.removeLocked(old)
		p, ok = c.parts[key] // the removal may have dropped the partition
	}
	if !ok {
		p = &partition{key: key, ns: ns, cost: partitionCost(key)}
		p.pending = p.firstPending[:0]
		c.parts[key] = p
		c.bytes += p.cost
	}
	e.part = p
	if vec == nil {
		e.pending = true
		p.pending = append(p.pending, e)
	} else if err := c.indexLocked(ctx, p, id, vec); err != nil {
		c.dropIfEmptyLocked(p)
		return false, err
	} else {
		c.file(p, e)
	}
	c.seq++
	e.seq = c.seq
	c.recharge(e)
	c.entries[id] = e
	c.expiry.push(e)
	c.sweepLocked(now)
	for len(c.entries) > c.maxEntries || (c.bytes > c.maxBytes && len(c.entries) > 0) {
		c.removeLocked(c.expiry.top())
		c.stats.evictions.Add(1)
	}
	return true, nil
}

// key gives e the verifier's keys and words of its prompt: those given when keys is not nil (a
// Lookup read them), else read now. Without an Anchorer e stays unkeyed. Call it before e is
// filed, outside c.mu.
func (c *Cache) key(e *entry, keys []uint64, words string) {
	if c.anchorer == nil {
		return
	}
	if keys == nil {
		keys, words = c.anchorer.Keys(e.prompt)
	}
	e.setKeys(keys, words)
}

// indexLocked adds id's vector to p's index, making the index with the first vector.
func (c *Cache) indexLocked(ctx context.Context, p *partition, id string, vec []float32) error {
	if p.idx == nil {
		p.idx = newIndex(c.kind, len(vec))
	}
	if err := p.idx.add(ctx, id, vec); err != nil {
		c.stats.indexErrors.Add(1)
		return fmt.Errorf("semantic: store: %w", err)
	}
	c.dim = len(vec)
	return nil
}

// embedPending embeds the pending entries of the partition under key, in one call to the
// embedder, and puts them in its index; an entry with nothing to embed leaves. It runs on the
// lookup that first reaches the partition, before the partition is searched.
func (c *Cache) embedPending(ctx context.Context, key string) error {
	c.mu.RLock()
	var list []*entry
	var prompts []string
	if p := c.parts[key]; p != nil {
		for _, e := range p.pending {
			list, prompts = append(list, e), append(prompts, e.prompt)
		}
	}
	c.mu.RUnlock()
	if len(list) == 0 {
		return nil
	}
	vecs, err := c.embedMany(ctx, prompts)
	if err != nil {
		return err
	}
	keys, words := make([][]uint64, len(list)), make([]string, len(list))
	if c.anchorer != nil {
		for i, pr := range prompts {
			keys[i], words[i] = c.anchorer.Keys(pr)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, e := range list {
		if !e.pending || c.entries[e.id] != e {
			continue // gone meanwhile, or embedded by another lookup
		}
		if vecs[i] == nil || c.indexLocked(ctx, e.part, e.id, vecs[i]) != nil {
			c.removeLocked(e)
			continue
		}
		c.unpendLocked(e)
		e.setKeys(keys[i], words[i]) // a pending entry has none yet
		c.file(e.part, e)
		c.recharge(e)
	}
	return nil
}

// unpendLocked takes e off its partition's pending list.
func (c *Cache) unpendLocked(e *entry) {
	p := e.part
	if i := slices.Index(p.pending, e); i >= 0 {
		p.pending = slices.Delete(p.pending, i, i+1)
	}
	e.pending = false
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

// removeLocked removes e from the table, the expiry order and its index,
// and drops the partition once empty. c.mu must be held for writing.
func (c *Cache) removeLocked(e *entry) {
	delete(c.entries, e.id)
	c.bytes -= e.cost
	c.expiry.remove(e)
	if e.pending {
		c.unpendLocked(e)
	} else {
		c.unfile(e.part, e)
		if err := e.part.idx.remove(e.id); err != nil {
			c.stats.indexErrors.Add(1)
			c.log.Debug("semantic: delete failed", "id", e.id, "err", err)
		}
	}
	c.dropIfEmptyLocked(e.part)
}

func (c *Cache) dropIfEmptyLocked(p *partition) {
	if p.size() == 0 && c.parts[p.key] == p {
		delete(c.parts, p.key)
		c.bytes -= p.cost
	}
}

// sweepLocked removes every entry expired at now; they sit at the top of the
// expiry order. c.mu must be held for writing.
func (c *Cache) sweepLocked(now time.Time) {
	for e := c.expiry.top(); e != nil && !e.expires.After(now); e = c.expiry.top() {
		c.removeLocked(e)
		c.stats.expired.Add(1)
	}
}

// sweepIfDue sweeps expired entries if there are any, taking the write lock
// only then.
func (c *Cache) sweepIfDue(now time.Time) {
	c.mu.RLock()
	due := c.expiry.due(now)
	c.mu.RUnlock()
	if due {
		c.mu.Lock()
		c.sweepLocked(now)
		c.mu.Unlock()
	}
}

// recharge charges e again at its current cost (entryCost with the vectors' length); a new e
// has cost 0. c.mu must be held for writing.
func (c *Cache) recharge(e *entry) {
	c.bytes -= e.cost
	e.cost = entryCost(e, c.dim)
	c.bytes += e.cost
}

// entryOverhead approximates what an entry costs beyond its vector, prompt, id and value: the
// entry and heap records, the id in two maps and in the index, the index's own bookkeeping.
const entryOverhead = 360

// partitionOverhead approximates a partition's own memory beyond its key: its record, its
// index's bookkeeping and its place in the partition table. Most partitions hold one entry
// (numbers in a prompt make their own partition), so this is charged, not ignored.
const partitionOverhead = 176

// partitionCost is what a partition under key is charged against MaxBytes while it exists.
func partitionCost(key string) int64 { return int64(partitionOverhead + len(key)) }

// entryCost is what e is charged against MaxBytes (dim is its vector's length, stored once as
// float32 and once quantised).
func entryCost(e *entry, dim int) int64 {
	return int64(len(e.value)+len(e.prompt)+3*len(e.id)+5*dim+8*len(e.keys)+keyCost*len(e.pos)+len(e.words)) + entryOverhead
}
