package sse

import (
	"strconv"

	"github.com/zest-proxy/zest/internal/jsonscan"
)

// The assembler and replay read JSON with internal/jsonscan instead of encoding/json, so that
// string deltas are concatenated in their escaped form (a surrogate pair split across two
// chunks stays intact) and the hit path does no reflection. This file holds the helpers over it.

// ErrMalformed is wrapped by every JSON syntax error this package reports.
var ErrMalformed = jsonscan.ErrMalformed

func isNull(v []byte) bool { return len(v) == 4 && string(v) == "null" }

// strContents returns the escaped contents of the string literal v.
func strContents(v []byte) ([]byte, bool) {
	if len(v) < 2 || v[0] != '"' {
		return nil, false
	}
	return v[1 : len(v)-1], true
}

// isEmptyArray reports whether the raw value v is an array with no elements.
func isEmptyArray(v []byte) bool {
	if len(v) < 2 || v[0] != '[' {
		return false
	}
	return jsonscan.SkipWS(v, 1) == len(v)-1
}

// arrayInner returns the elements of the array v without its brackets and
// surrounding whitespace ("" for an empty array).
func arrayInner(v []byte) []byte {
	i := jsonscan.SkipWS(v, 1)
	j := len(v) - 1
	for j > i && jsonscan.IsWS(v[j-1]) {
		j--
	}
	return v[i:j]
}

// parseInt reads an integer JSON number; ok is false for anything else.
func parseInt(v []byte) (int, bool) {
	n, err := strconv.Atoi(string(v))
	return n, err == nil
}

// trimWS trims JSON whitespace (space, tab, CR, LF) from both ends of b.
func trimWS(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && jsonscan.IsWS(b[i]) {
		i++
	}
	for j > i && jsonscan.IsWS(b[j-1]) {
		j--
	}
	return b[i:j]
}

// kv is one object member as raw slices.
type kv struct{ k, v []byte }

// collect appends the members of the raw object v to dst (callers pass a
// stack array so that each object is scanned once).
func collect(dst []kv, v []byte) ([]kv, error) {
	m := jsonscan.NewMembers(v)
	for {
		k, val, ok := m.Next()
		if !ok {
			return dst, m.Err()
		}
		dst = append(dst, kv{k, val})
	}
}
