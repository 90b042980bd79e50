package proxy

import (
	"bytes"
	"maps"
	"sync/atomic"
)

// maxInterned bounds the strings an interner keeps; beyond it, reads allocate as usual.
const maxInterned = 256

// interner keeps the few distinct strings a field takes (model names, tenants' namespaces), so
// reading one from a request costs no allocation, and what keeps it (a log line, a cache entry)
// shares one copy. Reads are lock-free: the table is replaced, never changed.
type interner struct {
	table atomic.Pointer[map[string]string]
}

// stringOf is jsonString(raw) (a JSON string value decoded, "" for anything else), interned
// when raw needs no decoding.
func (in *interner) stringOf(raw []byte) string {
	if len(raw) < 2 || raw[0] != '"' || bytes.IndexByte(raw, '\\') >= 0 {
		return jsonString(raw)
	}
	return in.of(raw[1 : len(raw)-1])
}

// of returns text as a string: the interned copy when there is one, else a new one, which is
// kept while the table holds fewer than maxInterned.
func (in *interner) of(text []byte) string {
	var table map[string]string
	cur := in.table.Load()
	if cur != nil {
		table = *cur
	}
	if s, ok := table[string(text)]; ok {
		return s
	}
	s := string(text)
	if len(table) < maxInterned {
		next := maps.Clone(table)
		if next == nil {
			next = map[string]string{}
		}
		next[s] = s
		in.table.CompareAndSwap(cur, &next) // a lost race only costs a later read an allocation
	}
	return s
}
