package semantic

import (
	"context"
	"fmt"
	"slices"
	"time"
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
// (Hit{}, false, nil), except that Hit.Vector, Hit.Signature, Hit.Keys and Hit.Words carry what
// Lookup computed, for the Store that follows. An embedder or index failure, including the embed
// deadline passing, is returned as an error and counted; the caller should
// then fall through to the upstream. Lookup does not embed at all when the
// partition holds no entries.
func (c *Cache) Lookup(ctx context.Context, q Query) (Hit, bool, error) {
	c.stats.lookups.Add(1)
	now := c.now()
	c.sweepIfDue(now)
	var kb [160]byte
	var anchor func() (func(string) bool, [][3]uint64, func(string) bool, []uint64, string)
	if c.reader != nil && q.Signature == "" {
		q.Signature, anchor = c.reader.Read(q.Prompt) // anchor, if needed, without reading again
		q.signed = true
	}
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
	pk := picker{c: c, q: q, now: now}
	switch {
	case anchor != nil:
		pk.same, pk.an.groups, pk.an.may, miss.Keys, miss.Words = anchor()
	case c.anchorer != nil:
		pk.same, pk.an.groups, pk.an.may, miss.Keys, miss.Words = c.anchorer.Anchor(q.Prompt)
	}
	var buf [8]candidate
	cands, how, err := c.candidates(ctx, key, vec, threshold, &pk.an, buf[:0])
	cd, ok := pk.pick(cands, nil, how != readScan)
	if !ok && how == readExact && err == nil {
		// The entries filed under the query's exact word were not it: scan the partition.
		var buf2 [8]candidate
		var rest []candidate
		if rest, err = c.scanCandidates(ctx, key, vec, threshold, &pk.an, buf2[:0]); err == nil {
			cd, ok = pk.pick(rest, cands, false)
		}
	}
	if err != nil {
		c.stats.indexErrors.Add(1)
		c.stats.misses.Add(1)
		c.log.DebugContext(ctx, "semantic: query failed", "err", err)
		return miss, false, err
	}
	if !ok {
		c.stats.misses.Add(1)
		return miss, false, nil
	}
	c.stats.hits.Add(1)
	if cd.e.noteServed(q.Prompt) && c.share != nil {
		c.share.noteServed(q.Namespace, cd.e, pairKey(q.Namespace, q.Prompt, cd.e.prompt))
	}
	return Hit{Vector: vec, Signature: sig, ID: cd.e.id, Value: cd.e.value, Similarity: cd.sim, Stored: cd.e.stored, Prompt: cd.e.prompt}, true, nil
}

// picker verifies a lookup's candidates.
type picker struct {
	c    *Cache
	q    Query
	now  time.Time
	an   anchors
	same func(stored string) bool // the verifier's, with the query read once; made when first needed
}

// pick returns the first of cands, best first, that is live, not refused for q, admitted by the
// anchors (unless admitted says they all are) and accepted by the verifier, skipping those in
// tried (already refused).
func (pk *picker) pick(cands, tried []candidate, admitted bool) (candidate, bool) {
	c := pk.c
	for _, cd := range cands {
		if !cd.e.expires.After(pk.now) || slices.ContainsFunc(tried, func(t candidate) bool { return t.e == cd.e }) {
			continue
		}
		if c.refused(pk.q.Namespace, pk.q.Prompt, cd.e.prompt) {
			c.stats.refused.Add(1)
			continue
		}
		if !admitted && !pk.an.admits(cd.e) {
			c.stats.rejected.Add(1) // Same would say no
			continue
		}
		if c.verifier != nil && pk.same == nil {
			pk.same = c.sameAs(pk.q.Prompt)
		}
		if pk.same != nil && !pk.same(cd.e.prompt) {
			c.stats.rejected.Add(1)
			continue
		}
		return cd, true
	}
	return candidate{}, false
}

// sameAs is the verifier's Same with query fixed, read once when the verifier can (Preparer).
func (c *Cache) sameAs(query string) func(stored string) bool {
	if p, ok := c.verifier.(Preparer); ok {
		return p.Prepare(query)
	}
	return func(stored string) bool { return c.verifier.Same(query, stored) }
}

// candidates returns the partition's nearest entries at or above threshold, best first, and how
// it read them (see anchored). With anchors (see Anchorer) it may read only the entries filed
// under them (readFiled), or only those filed under the query's exact word (readExact: if none
// of them is accepted the caller scans, scanCandidates); an then admits every candidate.
func (c *Cache) candidates(ctx context.Context, key string, vec []float32, threshold float32, an *anchors, out []candidate) (cands []candidate, how int, err error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	p, ok := c.parts[key]
	if !ok || p.idx == nil {
		return out, readScan, nil
	}
	lists, how := p.anchored(an.groups)
	if how != readScan {
		c.stats.anchored.Add(1)
		return c.anchoredCandidates(ctx, p, vec, an, threshold, lists, out), how, nil
	}
	out, err = c.scanLocked(ctx, p, vec, threshold, an, out)
	return out, readScan, err
}

// scanCandidates is candidates by a scan of the partition.
func (c *Cache) scanCandidates(ctx context.Context, key string, vec []float32, threshold float32, an *anchors, out []candidate) ([]candidate, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	p, ok := c.parts[key]
	if !ok || p.idx == nil {
		return out, nil
	}
	return c.scanLocked(ctx, p, vec, threshold, an, out)
}

// scanLocked scans p's index for its nearest entries at or above threshold, best first. With
// anchors and a small partition it returns all of them, for the caller to rule out on the anchors
// those that only score as well (prompts that differ in a word the embedder does not know score
// the same). c.mu must be held.
func (c *Cache) scanLocked(ctx context.Context, p *partition, vec []float32, threshold float32, an *anchors, out []candidate) ([]candidate, error) {
	k := c.topK
	if n := p.idx.count(); an.groups != nil && n <= smallIndex {
		k = max(k, n)
	}
	var buf [smallIndex]match
	res, err := p.idx.query(ctx, vec, k, threshold, buf[:0])
	if err != nil {
		return nil, fmt.Errorf("semantic: query: %w", err)
	}
	return c.appendCandidates(p, res, out), nil
}

// appendCandidates appends to out, in order, the entries of p that res names. c.mu must be held.
func (c *Cache) appendCandidates(p *partition, res []match, out []candidate) []candidate {
	for _, r := range res {
		if e, ok := c.entries[r.id]; ok && e.part == p {
			out = append(out, candidate{e, r.sim})
		}
	}
	return out
}
