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
// Keys and words are opaque. A group of anchors is {a, b, exact}. Invariants required: if
// Same(query, stored), then for every group Keys(stored) holds a or b (b may be zero: unused),
// and may(words of stored) is true. Keys are what a lookup finds entries by; may, which reads the
// words, then rules out most of those that only share a key with the query by chance, for far
// less than Same costs. exact, when not zero, is a key that stored prompts with the very same
// word have: the likeliest matches, read first when a or b is filed under too many entries.
type Anchorer interface {
	// Anchor reads query once: same(stored) is Same(query, stored); anchors are the groups and
	// may the test on words (both nil: no constraint); keys and words are Keys(query).
	Anchor(query string) (same func(stored string) bool, anchors [][3]uint64, may func(words string) bool, keys []uint64, words string)
	// Keys returns the keys of a stored prompt, in any order, possibly repeated, and its words.
	// nil keys leave the prompt unfiled: a lookup with anchors then reads it anyway.
	Keys(prompt string) (keys []uint64, words string)
}

// Reader is implemented by a Verifier that is a Signer and an Anchorer and can read a query
// once for both: Read returns Signature(query), and anchor returns what Anchor(query) does
// without reading query again, or is nil when Read did not read it (Lookup then calls Anchor).
// Lookup then reads each query once.
type Reader interface {
	Read(query string) (sig string, anchor func() (same func(stored string) bool, anchors [][3]uint64, may func(words string) bool, keys []uint64, words string))
}

// anchorRatio: a lookup reads the entries filed under its rarest anchor instead of scanning
// the partition when they are at most 1/anchorRatio of it (scoring one by its id costs a few
// times what the scan spends per vector).
const anchorRatio = 4

// keyCost is what each key under which an entry is filed is charged against MaxBytes, on top of
// the 8 bytes of the key itself (charged whether or not the entry is filed): its position in the
// entry (4 bytes), its slot in the partition's list (8), and, for a key no other entry of the
// partition has, a map slot with its share of the map and the list's allocation (about 36).
// Most keys of a large partition are shared (common words), so this overcharges there
// (TestChargeCoversMemory).
const keyCost = 48

// postings files a partition's keyed entries under their keys. Each entry knows its position
// in each list (entry.pos), so removal is a swap with the list's last element.
type postings map[uint64][]*entry

// A key is saturated in a partition of at least saturateMin entries once more than half of them
// are filed under it (a word every prompt of a template shares). A lookup reads a key's list
// only when it holds at most 1/anchorRatio of the partition, so such a list is never read, and
// keeping it cost a store and an eviction a slot per common word. The partition drops the list
// and files no entry under that key again (entry.pos is -1 there); a lookup counts the key as
// filed under every entry. A key stays saturated while the partition lives: if prompts without
// it come to outnumber those with it, lookups scan where they might have read a list, which
// changes their cost, never their answer.
const saturateMin = 64

// setKeys gives e its keys, sorted and without repeats, and its words. nil keys leave e
// unkeyed. keys is sorted in place, then copied.
func (e *entry) setKeys(keys []uint64, words string) {
	if keys == nil {
		return
	}
	slices.Sort(keys)
	e.keys = slices.Clone(slices.Compact(keys))
	e.words = words
	e.keyed = true
}

// anchors is what a stored prompt must have for the verifier to accept it (see Anchorer).
type anchors struct {
	groups [][3]uint64
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
func (e *entry) meets(anchors [][3]uint64) bool {
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

// file adds e, just indexed in p, to p's postings, or to p.unfiled when it has no keys. While
// p's index holds at most smallIndex entries, lookups scan it and p keeps no postings, only the
// list of its entries (p.few); the postings are made when it outgrows that, and e's charge then
// grows by keyCost per key. c.mu must be held for writing; without an Anchorer it does nothing.
func (c *Cache) file(p *partition, e *entry) {
	if c.anchorer == nil {
		return
	}
	if p.posts == nil {
		if p.idx.count() <= smallIndex {
			p.few = append(p.few, e)
			return
		}
		p.posts = make(postings)
		for _, x := range p.few {
			c.fileOne(p, x)
			c.recharge(x)
		}
		p.few = nil
	}
	c.fileOne(p, e)
}

// fileOne adds e to p's postings, or to p.unfiled.
func (c *Cache) fileOne(p *partition, e *entry) {
	if !e.keyed {
		e.upos = int32(len(p.unfiled))
		p.unfiled = append(p.unfiled, e)
		return
	}
	e.pos = make([]int32, len(e.keys))
	for i, k := range e.keys {
		if _, ok := p.saturated[k]; ok {
			e.pos[i] = -1
			continue
		}
		list := append(p.posts[k], e)
		e.pos[i] = int32(len(list) - 1)
		p.posts[k] = list
		if n := p.idx.count(); n >= saturateMin && 2*len(list) > n {
			p.saturate(k, list)
		}
	}
}

// saturate stops filing entries under k, whose list is list (see saturateMin).
func (p *partition) saturate(k uint64, list []*entry) {
	for _, x := range list {
		i, _ := slices.BinarySearch(x.keys, k)
		x.pos[i] = -1
	}
	delete(p.posts, k)
	if p.saturated == nil {
		p.saturated = make(map[uint64]struct{})
	}
	p.saturated[k] = struct{}{}
}

// filed returns the entries filed under k and how many a lookup counts there: for a
// saturated key, n (the partition's size), with no list.
func (p *partition) filed(k uint64, n int) ([]*entry, int) {
	if _, ok := p.saturated[k]; ok {
		return nil, n
	}
	list := p.posts[k]
	return list, len(list)
}

// unfile removes e, leaving p's index, from p's postings, p.unfiled or p.few. c.mu must be
// held for writing.
func (c *Cache) unfile(p *partition, e *entry) {
	switch {
	case c.anchorer == nil:
	case p.posts == nil:
		if i := slices.Index(p.few, e); i >= 0 {
			p.few = slices.Delete(p.few, i, i+1)
		}
	case !e.keyed:
		last := len(p.unfiled) - 1
		moved := p.unfiled[last]
		p.unfiled[e.upos], moved.upos = moved, e.upos
		p.unfiled[last] = nil
		p.unfiled = shrunk(p.unfiled[:last])
	default:
		p.unpost(e)
	}
}

// unpost removes e from p's postings.
func (p *partition) unpost(e *entry) {
	for i, k := range e.keys {
		j := e.pos[i]
		if j < 0 {
			continue // saturated: not filed
		}
		list := p.posts[k]
		last := len(list) - 1
		if moved := list[last]; int(j) != last {
			list[j] = moved
			mi, _ := slices.BinarySearch(moved.keys, k)
			moved.pos[mi] = j
		}
		list[last] = nil
		if last == 0 {
			delete(p.posts, k)
		} else {
			p.posts[k] = shrunk(list[:last])
		}
	}
	e.pos = nil
}

// shrunk returns s, or a copy of just its elements once it fills under a quarter of a capacity
// over 64: a list that grew and emptied gives back what it held.
func shrunk[T any](s []T) []T {
	if cap(s) > 64 && len(s) < cap(s)/4 {
		return slices.Clip(slices.Clone(s))
	}
	return s
}

// How a lookup with anchors reads a partition (see anchored).
const (
	readScan  = iota // scan the index
	readFiled        // read the entries filed under the rarest group and the unfiled ones
	readExact        // read the entries filed under an anchor word's exact key, then scan if none is it
)

// anchored returns how a lookup with anchors reads p, and the lists of entries to read (an
// entry may appear twice). It reads everything that can match, the entries filed under the
// rarest group and the unfiled ones, when they are at most 1/anchorRatio of p. Otherwise, when
// an anchor word is filed exactly under few entries (a name that shares its first letters with
// many), it reads those first. A small partition is scanned: its few vectors cost less than the
// postings. c.mu must be held.
func (p *partition) anchored(anchors [][3]uint64) (lists [3][]*entry, how int) {
	n := p.idx.count()
	if len(anchors) == 0 || n <= smallIndex || p.posts == nil {
		return lists, readScan
	}
	best, exact := n+1, n+1
	var ex []*entry
	for _, g := range anchors {
		x, nx := p.filed(g[0], n)
		y, ny := p.filed(g[1], n) // a zero key is never filed: nil
		if nx+ny < best {
			lists[0], lists[1], best = x, y, nx+ny
		}
		if z, nz := p.filed(g[2], n); nz < exact {
			ex, exact = z, nz
		}
	}
	if (best+len(p.unfiled))*anchorRatio <= n {
		lists[2] = p.unfiled
		return lists, readFiled
	}
	if exact > 0 && exact*anchorRatio <= n {
		return [3][]*entry{ex}, readExact
	}
	return [3][]*entry{}, readScan
}

// anchoredCandidates appends to out the at most c.topK entries among lists that a admits with
// similarity at least threshold, best first, each once. c.mu must be held.
func (c *Cache) anchoredCandidates(ctx context.Context, p *partition, vec []float32, a *anchors, threshold float32, lists [3][]*entry, out []candidate) []candidate {
	var buf [8]match
	top := buf[:0]
	for _, list := range lists {
		for _, e := range list {
			if c.entries[e.id] != e || slices.ContainsFunc(top, func(m match) bool { return m.id == e.id }) || !a.admits(e) {
				continue
			}
			if sim, ok := p.idx.similarity(ctx, e.id, vec); ok && sim >= threshold {
				top = insertTop(top, 0, c.topK, match{e.id, sim})
			}
		}
	}
	return c.appendCandidates(p, top, out)
}
