// Package strtab is a read-only table of strings with dense ids, built once, that gives the
// garbage collector almost nothing to scan: the strings lie end to end in one blob and the hash
// slots are integers, so a table of 65,000 words is three objects to mark rather than a map
// and 65,000 strings. zest keeps its embedded word lists in it (the offline embedder's
// vocabulary, the WordNet lexicon), which are live for the life of the process: as maps and
// string slices they made every collection cycle mark about 20 MB of pointers.
package strtab

import (
	"fmt"
	"hash/maphash"
	"strings"
)

// Table maps each of its strings to its id, the string's position in the slice given to New.
// It is immutable and safe for concurrent use.
type Table struct {
	blob  string
	ends  []uint32 // string i is blob[ends[i-1]:ends[i]] (from 0 for i = 0)
	slots []uint64 // open addressing, linear probing: 0 = empty, else the hash's top half << 32 | id+1; a power of two
	seed  maphash.Seed
}

// New returns the table of strs, which must be distinct: a string given twice is an error
// naming it, as is more than 4 GiB of strings.
func New(strs []string) (*Table, error) {
	total := 0
	for _, s := range strs {
		total += len(s)
	}
	if total >= 1<<32 || len(strs) >= 1<<31 {
		return nil, fmt.Errorf("strtab: %d strings of %d bytes exceed the table's limits", len(strs), total)
	}
	size := 1
	for size < 2*len(strs) { // at most half full: short probe runs
		size <<= 1
	}
	t := &Table{ends: make([]uint32, len(strs)), slots: make([]uint64, size), seed: maphash.MakeSeed()}
	var b strings.Builder
	b.Grow(total)
	for i, s := range strs {
		b.WriteString(s)
		t.ends[i] = uint32(b.Len())
	}
	t.blob = b.String()
	for i, s := range strs {
		h := maphash.String(t.seed, s)
		j := t.find(s, h)
		if t.slots[j] != 0 {
			return nil, fmt.Errorf("strtab: %q given twice", s)
		}
		t.slots[j] = h&^(1<<32-1) | uint64(i+1)
	}
	return t, nil
}

// Len is the number of strings given to New.
func (t *Table) Len() int { return len(t.ends) }

// Name returns string id; it panics for an id outside 0..Len()-1, as an index would.
func (t *Table) Name(id int32) string {
	start := uint32(0)
	if id > 0 {
		start = t.ends[id-1]
	}
	return t.blob[start:t.ends[id]]
}

// ID returns the id of s, and whether the table holds s.
func (t *Table) ID(s string) (int32, bool) {
	v := t.slots[t.find(s, maphash.String(t.seed, s))]
	return int32(uint32(v)) - 1, v != 0
}

// IDBytes is ID for a byte slice, without converting it to a string.
func (t *Table) IDBytes(b []byte) (int32, bool) {
	h := maphash.Bytes(t.seed, b)
	mask := uint64(len(t.slots) - 1)
	for j := h & mask; ; j = (j + 1) & mask {
		v := t.slots[j]
		if v == 0 || (v^h)>>32 == 0 && t.Name(int32(uint32(v))-1) == string(b) {
			return int32(uint32(v)) - 1, v != 0
		}
	}
}

// find returns the slot of s, whose hash is h: the one holding it, else the empty one where
// its probe run ends. A slot's hash bits are compared before its string.
func (t *Table) find(s string, h uint64) uint64 {
	mask := uint64(len(t.slots) - 1)
	for j := h & mask; ; j = (j + 1) & mask {
		if v := t.slots[j]; v == 0 || (v^h)>>32 == 0 && t.Name(int32(uint32(v))-1) == s {
			return j
		}
	}
}
