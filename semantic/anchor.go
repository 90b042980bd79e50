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
// Keys are opaque. Invariant required: if Same(query, stored), then for every group of
// Anchor(query)'s anchors, Keys(stored) holds at least one of the group's non-zero keys.
type Anchorer interface {
	// Anchor reads query once: same(stored) is Same(query, stored), anchors the groups, keys
	// Keys(query). anchors nil means no constraint; keys nil means the verifier keys nothing.
	Anchor(query string) (same func(stored string) bool, anchors [][2]uint64, keys []uint64)
	// Keys returns the keys of a stored prompt, in any order, possibly repeated.
	Keys(prompt string) []uint64
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

// setKeys gives e its keys, sorted and without repeats. nil keys leave e unkeyed.
func (e *entry) setKeys(keys []uint64) {
	if keys == nil {
		return
	}
	keys = slices.Clone(keys)
	slices.Sort(keys)
	e.keys = slices.Compact(keys)
	e.keyed = true
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

// file adds e, just indexed in p, to p's postings. c.mu must be held for writing.
func (p *partition) file(e *entry) {
	if !e.keyed {
		p.unkeyed++
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

// unfile removes e, leaving p's index, from p's postings. c.mu must be held for writing.
func (p *partition) unfile(e *entry) {
	if !e.keyed {
		p.unkeyed--
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

// anchored returns the entries of p filed under the rarest group of anchors, and whether that
// is few enough to read them instead of scanning p (see anchorRatio). An entry may appear twice
// (under both keys of the group). c.mu must be held.
func (p *partition) anchored(anchors [][2]uint64) (a, b []*entry, ok bool) {
	n := p.idx.count()
	if len(anchors) == 0 || p.unkeyed > 0 || n <= smallIndex {
		return nil, nil, false
	}
	best := n + 1
	for _, g := range anchors {
		x, y := p.posts[g[0]], p.posts[g[1]] // g[1] == 0 is never a key: nil
		if len(x)+len(y) < best {
			a, b, best = x, y, len(x)+len(y)
		}
	}
	return a, b, best*anchorRatio <= n
}

// anchoredCandidates appends to out the at most k entries among lists that meet anchors with
// similarity at least threshold, best first, each once. c.mu must be held.
func (c *Cache) anchoredCandidates(ctx context.Context, p *partition, vec []float32, anchors [][2]uint64, threshold float32, lists [2][]*entry, out []candidate) []candidate {
	base := len(out)
	for _, list := range lists {
		for _, e := range list {
			if !e.meets(anchors) || slices.ContainsFunc(out[base:], func(c candidate) bool { return c.e == e }) {
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
