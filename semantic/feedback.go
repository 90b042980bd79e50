package semantic

import (
	"context"
	"crypto/sha256"
	"slices"
	"strconv"
	"sync"
)

// DefaultMaxRefusedPairs bounds the set of refused (query, stored prompt) pairs kept by a Cache
// when Options.MaxRefusedPairs is 0. Each pair costs about 100 bytes (a 32-byte digest in a map
// and a ring), so the default holds under 1 MiB.
const DefaultMaxRefusedPairs = 10000

// maxServedPrompts is how many of the query prompts an entry was last served for it remembers,
// so that a report names the pairs to refuse.
const maxServedPrompts = 4

// pairKey is the digest of a refused pair within one namespace, the same in either order (a
// pair that means different things does so both ways), length-prefixed so that no choice of
// the strings can collide with another split.
func pairKey(ns, query, stored string) [32]byte {
	if stored < query {
		query, stored = stored, query
	}
	h := sha256.New()
	for _, s := range []string{ns, query, stored} {
		h.Write([]byte(strconv.Itoa(len(s))))
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// refusals is a bounded set of pair digests; beyond max the oldest is forgotten first.
// Safe for concurrent use.
type refusals struct {
	mu   sync.RWMutex
	max  int
	set  map[[32]byte]struct{}
	ring [][32]byte // insertion order
	next int        // ring position of the oldest once full
}

func (r *refusals) add(k [32]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.set[k]; ok {
		return
	}
	if r.set == nil {
		r.set = make(map[[32]byte]struct{})
	}
	if len(r.ring) < r.max {
		r.ring = append(r.ring, k)
	} else {
		delete(r.set, r.ring[r.next])
		r.ring[r.next] = k
		r.next = (r.next + 1) % r.max
	}
	r.set[k] = struct{}{}
}

func (r *refusals) has(k [32]byte) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.set[k]
	return ok
}

func (r *refusals) len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.set)
}

// refused reports whether the pair (query, stored) was reported as a wrong answer in ns.
func (c *Cache) refused(ns, query, stored string) bool {
	if c.refusals.len() == 0 {
		return false
	}
	return c.refusals.has(pairKey(ns, query, stored))
}

// noteServed remembers that e was served for query (the last maxServedPrompts distinct ones),
// and reports whether query is new to it.
func (e *entry) noteServed(query string) bool {
	e.servedMu.Lock()
	defer e.servedMu.Unlock()
	for _, q := range e.served {
		if q == query {
			return false
		}
	}
	if len(e.served) == maxServedPrompts {
		copy(e.served, e.served[1:])
		e.served = e.served[:maxServedPrompts-1]
	}
	e.served = append(e.served, query)
	return true
}

// Report handles a client's report that the entry id gave it a wrong answer: when the entry
// exists in namespace ns, it is removed, and every (query, stored prompt) pair it was recently
// served for is refused from then on in ns, in either order, so the same pair never matches
// again even when one of its prompts is stored anew. With Options.Redis the pairs are those
// every replica served (read from Redis; this replica's alone when Redis cannot be reached),
// and the removal and the refusals reach every replica, including those that start later. It
// reports whether there was such an entry (here, or served by another replica); an entry of
// another namespace is left alone and reported as absent.
func (c *Cache) Report(ctx context.Context, ns, id string) bool {
	local, pairs := c.reportLocal(ns, id)
	remote := c.share.served(ctx, ns, id)
	for _, k := range remote {
		if !slices.Contains(pairs, k) {
			pairs = append(pairs, k)
		}
	}
	if !local && len(remote) == 0 {
		return false
	}
	digests := make([]byte, 0, 32*len(pairs))
	for _, k := range pairs {
		c.refusals.add(k)
		digests = append(digests, k[:]...)
	}
	c.stats.reports.Add(1)
	c.share.publish(change{op: opRefuse, arg: id, ns: ns, pairs: digests})
	return true
}

// reportLocal removes the entry id of ns from this replica and returns the digests of the pairs
// it was served for here.
func (c *Cache) reportLocal(ns, id string) (bool, [][32]byte) {
	c.mu.Lock()
	e, ok := c.entries[id]
	if !ok || e.part.ns != ns {
		c.mu.Unlock()
		return false, nil
	}
	c.removeLocked(e)
	c.mu.Unlock()
	e.servedMu.Lock()
	defer e.servedMu.Unlock()
	pairs := make([][32]byte, 0, len(e.served))
	for _, q := range e.served {
		pairs = append(pairs, pairKey(ns, q, e.prompt))
	}
	return true, pairs
}

// Refuse marks the pair (query, stored) as never to be matched in namespace ns (on this
// replica only).
func (c *Cache) Refuse(ns, query, stored string) {
	c.refusals.add(pairKey(ns, query, stored))
}
