package semantic

import (
	"context"
	"slices"
)

// Anchorer is implemented by a Verifier that can name words a stored prompt must have for Same
// to accept it. The cache then files each entry under its prompt's keys, and a lookup whose
// query has such words reads only the entries filed under them instead of its whole partition.
// This matters where the embedder cannot see the difference: words outside its vocabulary
// (names, identifiers) add nothing to a vector, so prompts that differ only there all score
// the same.
//
// Keys and words are opaque. Invariants required: if Same(query, stored), then for every group
// of Anchor(query)'s anchors, Keys(stored) holds at least one of the group's non-zero keys, and
// may(words of stored) is true. Keys are what a lookup finds entries by; may, which reads the
// words, then rules out most of those that only share a key with the query by chance, for far
// less than Same costs.
type Anchorer interface {
	// Anchor reads query once: same(stored) is Same(query, stored); anchors are the groups and
	// may the test on words (both nil: no constraint); keys and words are Keys(query).
	Anchor(query string) (same func(stored string) bool, anchors [][2]uint64, may func(words string) bool, keys []uint64, words string)
	// Keys returns the keys of a stored prompt, in any order, possibly repeated, and its words.
	// nil keys leave the prompt unfiled: a lookup with anchors then reads it anyway.
	Keys(prompt string) (keys []uint64, words string)
}

// anchorRatio: a lookup reads the entries filed under its rarest anchor instead of scanning
// the partition when they are at most 1/anchorRatio of it (scoring one by its id costs a few
// times what the scan spends per vector).
const anchorRatio = 4

// keyCost is what each key of an entry is charged against MaxBytes: the key and its position in
// the entry (12 bytes), its slot in the partition's list (8), and, for a key no other entry of
// the partition has, a map slot and the list itself (about 36). Most keys are shared (common
// words), so this overcharges (TestChargeCoversMemory).
const keyCost = 56

// postings files a partition's keyed entries under their keys. Each entry knows its position
// in each list (entry.pos), so removal is a swap with the list's last element.
type postings map[uint64][]*entry

// setKeys gives e its keys, sorted and without repeats, and its words. nil keys leave e
// unkeyed.
func (e *entry) setKeys(keys []uint64, words string) {
	if keys == nil {
		return
	}
	keys = slices.Clone(keys)
	slices.Sort(keys)
	e.keys = slices.Compact(keys)
	e.words = words
	e.keyed = true
}

// anchors is what a stored prompt must have for the verifier to accept it (see Anchorer).
type anchors struct {
	groups [][2]uint64
	may    func(words string) bool
}

// admits reports whether e may be the same as the query of a: its keys hold a key of every
// group and a's may accepts its words. An unfiled entry is admitted: Same decides.
func (a *anchors) admits(e *entry) bool {
	if !e.keyed || a.groups == nil {
		return true
	}
	return e.meets(a.groups) && (a.may == nil || a.may(e.words))
}

// meets reports whether e's keys hold a key of every group.
func (e *entry) meets(anchors [][2]uint64) bool {
	for _, g := range anchors {
		if _, ok := slices.BinarySearch(e.keys, g[0]); ok {
			continue
		}
		if g[1] == 0 {
			return false
		}
		if _, ok := slices.BinarySearch(e.keys, g[1]); !ok {
			return false
		}
	}
	return true
}

// file adds e, just indexed in p, to p's postings, or to p.unfiled when it has no keys. c.mu
// must be held for writing; without an Anchorer it does nothing.
func (c *Cache) file(p *partition, e *entry) {
	if c.anchorer == nil {
		return
	}
	if !e.keyed {
		e.upos = int32(len(p.unfiled))
		p.unfiled = append(p.unfiled, e)
		return
	}
	if len(e.keys) == 0 {
		return
	}
	if p.posts == nil {
		p.posts = make(postings)
	}
	e.pos = make([]int32, len(e.keys))
	for i, k := range e.keys {
		list := p.posts[k]
		e.pos[i] = int32(len(list))
		p.posts[k] = append(list, e)
	}
}

// unfile removes e, leaving p's index, from p's postings or p.unfiled. c.mu must be held for
// writing.
func (c *Cache) unfile(p *partition, e *entry) {
	if c.anchorer == nil {
		return
	}
	if !e.keyed {
		last := len(p.unfiled) - 1
		moved := p.unfiled[last]
		p.unfiled[e.upos], moved.upos = moved, e.upos
		p.unfiled[last] = nil
		p.unfiled = p.unfiled[:last]
		if cap(p.unfiled) > 64 && last < cap(p.unfiled)/4 {
			p.unfiled = slices.Clip(slices.Clone(p.unfiled))
		}
		return
	}
	for i, k := range e.keys {
		list := p.posts[k]
		j, last := e.pos[i], len(list)-1
		if moved := list[last]; int(j) != last {
			list[j] = moved
			mi, _ := slices.BinarySearch(moved.keys, k)
			moved.pos[mi] = j
		}
		list[last] = nil
		list = list[:last]
		switch {
		case last == 0:
			delete(p.posts, k)
		case cap(list) > 64 && last < cap(list)/4:
			p.posts[k] = slices.Clip(slices.Clone(list)) // give back what a shrunk list held
		default:
			p.posts[k] = list
		}
	}
	e.pos = nil
}

// anchored returns the entries a lookup with anchors must read in p: those filed under the
// rarest group, and the unfiled ones; and whether they are few enough to read them instead of
// scanning p (see anchorRatio). An entry may appear twice (under both keys of the group). c.mu
// must be held.
func (p *partition) anchored(anchors [][2]uint64) (lists [3][]*entry, ok bool) {
	n := p.idx.count()
	if len(anchors) == 0 || n <= smallIndex {
		return lists, false
	}
	best := n + 1
	for _, g := range anchors {
		x, y := p.posts[g[0]], p.posts[g[1]] // g[1] == 0 is never a key: nil
		if len(x)+len(y) < best {
			lists[0], lists[1], best = x, y, len(x)+len(y)
		}
	}
	lists[2] = p.unfiled
	return lists, (best+len(p.unfiled))*anchorRatio <= n
}

// anchoredCandidates appends to out the at most k entries among lists that a admits with
// similarity at least threshold, best first, each once. c.mu must be held.
func (c *Cache) anchoredCandidates(ctx context.Context, p *partition, vec []float32, a *anchors, threshold float32, lists [3][]*entry, out []candidate) []candidate {
	base := len(out)
	for _, list := range lists {
		for _, e := range list {
			if slices.ContainsFunc(out[base:], func(c candidate) bool { return c.e == e }) || !a.admits(e) {
				continue
			}
			sim, ok := p.idx.similarity(ctx, e.id, vec)
			if !ok || sim < threshold {
				continue
			}
			out = insertCandidate(out, base, c.topK, candidate{e, sim})
		}
	}
	return out
}

// insertCandidate inserts cd into out[base:], kept best first and at most k long.
func insertCandidate(out []candidate, base, k int, cd candidate) []candidate {
	i := len(out)
	for i > base && out[i-1].sim < cd.sim {
		i--
	}
	if i-base >= k {
		return out
	}
	if len(out)-base < k {
		out = append(out, candidate{})
	}
	copy(out[i+1:], out[i:len(out)-1])
	out[i] = cd
	return out
}
