package semantic

import (
	"context"
	"fmt"
)

// candidate is an entry found under the read lock with its similarity. The
// entry fields Lookup reads never change after Store, so verification can
// run without the lock.
type candidate struct {
	e   *entry
	sim float32
}

// Lookup embeds q.Prompt and returns the most similar live entry of q's
// namespace and partition whose similarity reaches the threshold and that the
// Verifier accepts (candidates are tried best first, at most TopK). A miss is
// (Hit{}, false, nil), except that Hit.Vector and Hit.Signature carry what
// Lookup computed, for the Store that follows. An embedder or index failure, including the embed
// deadline passing, is returned as an error and counted; the caller should
// then fall through to the upstream. Lookup does not embed at all when the
// partition holds no entries.
func (c *Cache) Lookup(ctx context.Context, q Query) (Hit, bool, error) {
	c.stats.lookups.Add(1)
	now := c.now()
	c.sweepIfDue(now)
	var kb [160]byte
	kbuf, sig := c.appendKey(kb[:0], q)
	miss := Hit{Signature: sig}

	c.mu.RLock()
	p, ok := c.parts[string(kbuf)]
	pending := ok && len(p.pending) > 0
	c.mu.RUnlock()
	if !ok {
		c.stats.misses.Add(1)
		return miss, false, nil
	}
	key := string(kbuf)

	vec, ok, err := c.embed(ctx, q.Prompt, q.Vector)
	if err != nil || !ok {
		c.stats.misses.Add(1)
		return miss, false, err
	}
	miss.Vector = vec
	if pending {
		if err := c.embedPending(ctx, key); err != nil {
			c.stats.misses.Add(1)
			return miss, false, err
		}
	}

	threshold := c.thresholdOf(q)
	var same func(stored string) bool // the verifier's, with the query read once
	var an anchors
	if c.anchorer != nil {
		same, an.groups, an.may, miss.Keys, miss.Words = c.anchorer.Anchor(q.Prompt)
	}
	var buf [8]candidate
	cands, err := c.candidates(ctx, key, vec, threshold, &an, buf[:0])
	if err != nil {
		c.stats.indexErrors.Add(1)
		c.stats.misses.Add(1)
		c.log.DebugContext(ctx, "semantic: query failed", "err", err)
		return miss, false, err
	}
	for _, cd := range cands {
		if !cd.e.expires.After(now) {
			continue
		}
		if c.refused(q.Namespace, q.Prompt, cd.e.prompt) {
			c.stats.refused.Add(1)
			continue
		}
		if !an.admits(cd.e) {
			c.stats.rejected.Add(1) // Same would say no
			continue
		}
		if c.verifier != nil && same == nil {
			same = c.sameAs(q.Prompt)
		}
		if same != nil && !same(cd.e.prompt) {
			c.stats.rejected.Add(1)
			continue
		}
		c.stats.hits.Add(1)
		if cd.e.noteServed(q.Prompt) && c.share != nil {
			c.share.noteServed(q.Namespace, cd.e, pairKey(q.Namespace, q.Prompt, cd.e.prompt))
		}
		return Hit{Vector: vec, Signature: sig, ID: cd.e.id, Value: cd.e.value, Similarity: cd.sim, Stored: cd.e.stored, Prompt: cd.e.prompt}, true, nil
	}
	c.stats.misses.Add(1)
	return miss, false, nil
}

// sameAs is the verifier's Same with query fixed, read once when the verifier can (Preparer).
func (c *Cache) sameAs(query string) func(stored string) bool {
	if p, ok := c.verifier.(Preparer); ok {
		return p.Prepare(query)
	}
	return func(stored string) bool { return c.verifier.Same(query, stored) }
}

// candidates returns the partition's nearest entries at or above threshold, best first. With
// anchors (see Anchorer) it may read only the entries filed under them; then an admits every
// candidate.
func (c *Cache) candidates(ctx context.Context, key string, vec []float32, threshold float32, an *anchors, out []candidate) ([]candidate, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	p, ok := c.parts[key]
	if !ok || p.idx == nil {
		return out, nil
	}
	if lists, ok := p.anchored(an.groups); ok {
		c.stats.anchored.Add(1)
		return c.anchoredCandidates(ctx, p, vec, an, threshold, lists, out), nil
	}
	var buf [8]match
	res, err := p.idx.query(ctx, vec, c.topK, threshold, buf[:0])
	if err != nil {
		return nil, fmt.Errorf("semantic: query: %w", err)
	}
	for _, r := range res {
		if e, ok := c.entries[r.id]; ok && e.part == p {
			out = append(out, candidate{e, r.sim})
		}
	}
	return out, nil
}
