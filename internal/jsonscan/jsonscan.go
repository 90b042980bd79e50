// Package jsonscan is a small strict JSON reader that walks raw bytes without allocating: it
// validates values as it skips them (as strictly as encoding/json, fuzzed against it, except
// that nesting stops at 512 levels) and hands out sub-slices. Object keys come back with their
// escapes decoded (and re-escaped minimally), so "\u0063ontent" still reads as content.
// zest reads requests and answers with it on the hot paths instead of encoding/json: no
// reflection, no copies.
package jsonscan

import (
	"encoding/json"
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by every JSON syntax error this package reports.
var ErrMalformed = errors.New("malformed JSON")

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 512

func syntaxErr(b []byte, i int, what string) error {
	return fmt.Errorf("%w: %s at offset %d of %d", ErrMalformed, what, i, len(b))
}

// IsWS reports JSON whitespace: space, tab, LF, CR.
func IsWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// SkipWS returns the index of the first non-whitespace byte of b at or after i.
func SkipWS(b []byte, i int) int {
	for i < len(b) && IsWS(b[i]) {
		i++
	}
	return i
}

// SkipValue validates the JSON value starting at b[i] (no leading whitespace)
// and returns the index just past it.
func SkipValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return i, syntaxErr(b, i, "unexpected end")
	}
	switch c := b[i]; {
	case c == '"':
		return skipString(b, i)
	case c == '{':
		if depth >= maxDepth {
			return i, syntaxErr(b, i, "nesting too deep")
		}
		i = SkipWS(b, i+1)
		if i < len(b) && b[i] == '}' {
			return i + 1, nil
		}
		for {
			if i >= len(b) || b[i] != '"' {
				return i, syntaxErr(b, i, "expected object key")
			}
			var err error
			if i, err = skipString(b, i); err != nil {
				return i, err
			}
			i = SkipWS(b, i)
			if i >= len(b) || b[i] != ':' {
				return i, syntaxErr(b, i, "expected ':'")
			}
			i = SkipWS(b, i+1)
			if i, err = SkipValue(b, i, depth+1); err != nil {
				return i, err
			}
			i = SkipWS(b, i)
			if i < len(b) && b[i] == ',' {
				i = SkipWS(b, i+1)
				continue
			}
			if i < len(b) && b[i] == '}' {
				return i + 1, nil
			}
			return i, syntaxErr(b, i, "expected ',' or '}'")
		}
	case c == '[':
		if depth >= maxDepth {
			return i, syntaxErr(b, i, "nesting too deep")
		}
		i = SkipWS(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1, nil
		}
		for {
			var err error
			if i, err = SkipValue(b, i, depth+1); err != nil {
				return i, err
			}
			i = SkipWS(b, i)
			if i < len(b) && b[i] == ',' {
				i = SkipWS(b, i+1)
				continue
			}
			if i < len(b) && b[i] == ']' {
				return i + 1, nil
			}
			return i, syntaxErr(b, i, "expected ',' or ']'")
		}
	case c == '-' || (c >= '0' && c <= '9'):
		return skipNumber(b, i)
	case c == 't':
		return skipLit(b, i, "true")
	case c == 'f':
		return skipLit(b, i, "false")
	case c == 'n':
		return skipLit(b, i, "null")
	}
	return i, syntaxErr(b, i, "unexpected character")
}

// WalkObject reads the object at b[i] as SkipValue does, handing each member to member: its
// key as written between the quotes (escapes not decoded) and the index of its value, which
// member reads or skips (SkipValue at depth+1), returning the index just past it. An error
// from member ends the walk and is returned. WalkObject returns the index just past the
// object; depth is the object's own nesting level, 0 at the top. A caller that wants to look
// inside one member's value walks it in the same pass instead of skipping it and reading it
// again.
func WalkObject(b []byte, i, depth int, member func(key []byte, v int) (int, error)) (int, error) {
	i, empty, err := enter(b, i, depth, '{', '}', "object")
	if empty || err != nil {
		return i, err
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return i, syntaxErr(b, i, "expected object key")
		}
		ks := i
		if i, err = skipString(b, i); err != nil {
			return i, err
		}
		key := b[ks+1 : i-1]
		i = SkipWS(b, i)
		if i >= len(b) || b[i] != ':' {
			return i, syntaxErr(b, i, "expected ':'")
		}
		if i, err = member(key, SkipWS(b, i+1)); err != nil {
			return i, err
		}
		var end bool
		if i, end, err = next(b, i, '}'); end || err != nil {
			return i, err
		}
	}
}

// WalkArray is WalkObject for the array at b[i]: elem reads or skips the element at v.
func WalkArray(b []byte, i, depth int, elem func(v int) (int, error)) (int, error) {
	i, empty, err := enter(b, i, depth, '[', ']', "array")
	if empty || err != nil {
		return i, err
	}
	for {
		if i, err = elem(i); err != nil {
			return i, err
		}
		var end bool
		if i, end, err = next(b, i, ']'); end || err != nil {
			return i, err
		}
	}
}

// enter checks the container that open starts at b[i] (what names it in the error) and
// returns where its first item starts, or, with empty, the index just past close.
func enter(b []byte, i, depth int, open, close byte, what string) (int, bool, error) {
	if i >= len(b) || b[i] != open {
		return i, false, syntaxErr(b, i, "expected "+what)
	}
	if depth >= maxDepth {
		return i, false, syntaxErr(b, i, "nesting too deep")
	}
	i = SkipWS(b, i+1)
	if i < len(b) && b[i] == close {
		return i + 1, true, nil
	}
	return i, false, nil
}

// next reads what follows an item of a container that closes with close: after a comma it
// returns where the next item starts; after close, the index just past it and end.
func next(b []byte, i int, close byte) (int, bool, error) {
	i = SkipWS(b, i)
	switch {
	case i < len(b) && b[i] == ',':
		return SkipWS(b, i+1), false, nil
	case i < len(b) && b[i] == close:
		return i + 1, true, nil
	}
	return i, false, syntaxErr(b, i, "expected ',' or '"+string(close)+"'")
}

func skipLit(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, syntaxErr(b, i, "bad literal")
	}
	return i + len(lit), nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func skipNumber(b []byte, i int) (int, error) {
	start := i
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return start, syntaxErr(b, i, "bad number")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return start, syntaxErr(b, i, "bad number fraction")
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return start, syntaxErr(b, i, "bad number exponent")
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	return i, nil
}

func isHex(c byte) bool {
	return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// skipString validates the string literal at b[i] == '"' and returns the index
// past its closing quote. Like encoding/json it does not reject invalid UTF-8.
func skipString(b []byte, i int) (int, error) {
	i++
	for {
		i = StringRun(b, i)
		if i >= len(b) {
			return i, syntaxErr(b, i, "unterminated string")
		}
		switch b[i] {
		case '"':
			return i + 1, nil
		case '\\':
			i++
			if i >= len(b) {
				return i, syntaxErr(b, i, "unterminated escape")
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if len(b)-i < 5 || !isHex(b[i+1]) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) {
					return i, syntaxErr(b, i, "bad \\u escape")
				}
				i += 5
			default:
				return i, syntaxErr(b, i, "bad escape")
			}
		default:
			return i, syntaxErr(b, i, "control character in string")
		}
	}
}

// CheckValue reports whether b is exactly one JSON value with optional
// surrounding whitespace, and returns that value trimmed.
func CheckValue(b []byte) ([]byte, error) {
	i := SkipWS(b, 0)
	end, err := SkipValue(b, i, 0)
	if err != nil {
		return nil, err
	}
	if j := SkipWS(b, end); j != len(b) {
		return nil, syntaxErr(b, j, "trailing data")
	}
	return b[i:end], nil
}

// seq is what Members and Elems share: the position in a raw object or array, the separators
// between its items, and how the iteration ended.
type seq struct {
	b       []byte
	i       int
	started bool
	done    bool
	err     error
}

// newSeq starts at the item after open, v[0]; what names the container in the error when v
// does not start with open.
func newSeq(v []byte, open byte, what string) seq {
	s := seq{b: v, i: 1}
	if len(v) == 0 || v[0] != open {
		s.fail(syntaxErr(v, 0, "expected "+what))
	}
	return s
}

// item moves past the comma before the next item and returns where that item starts; ok is
// false at close (which must end the input) or on error.
func (s *seq) item(close byte) (int, bool) {
	if s.done {
		return 0, false
	}
	b := s.b
	i := SkipWS(b, s.i)
	switch {
	case i < len(b) && b[i] == close:
		s.done = true
		if i != len(b)-1 {
			s.fail(syntaxErr(b, i, "trailing data"))
		}
		return 0, false
	case s.started && (i >= len(b) || b[i] != ','):
		s.fail(syntaxErr(b, i, "expected ',' or '"+string(close)+"'"))
		return 0, false
	case s.started:
		i = SkipWS(b, i+1)
	}
	s.started = true
	return i, true
}

func (s *seq) fail(err error) { s.err, s.done = err, true }

// Err is the syntax error that ended the iteration, nil at a clean end.
func (s *seq) Err() error { return s.err }

// Members iterates over the members of a raw object. Keys are the contents between the quotes,
// escapes decoded and minimally re-escaped (plain keys alias the input).
type Members struct{ seq }

// NewMembers iterates over the raw object v (already trimmed, v[0] == '{').
func NewMembers(v []byte) Members { return Members{newSeq(v, '{', "object")} }

// Next returns the next key and value; ok is false at the end or on error (see Err).
func (m *Members) Next() (key, val []byte, ok bool) {
	i, ok := m.item('}')
	if !ok {
		return nil, nil, false
	}
	b := m.b
	if i >= len(b) || b[i] != '"' {
		m.fail(syntaxErr(b, i, "expected object key"))
		return nil, nil, false
	}
	ks := i
	ke, err := skipString(b, i)
	if err != nil {
		m.fail(err)
		return nil, nil, false
	}
	i = SkipWS(b, ke)
	if i >= len(b) || b[i] != ':' {
		m.fail(syntaxErr(b, i, "expected ':'"))
		return nil, nil, false
	}
	i = SkipWS(b, i+1)
	vs := i
	ve, err := SkipValue(b, i, 1)
	if err != nil {
		m.fail(err)
		return nil, nil, false
	}
	m.i = ve
	return unescapeKey(b[ks+1 : ke-1]), b[vs:ve], true
}

// Elems iterates over the elements of a raw array.
type Elems struct{ seq }

// NewElems iterates over the raw array v (trimmed, v[0] == '[').
func NewElems(v []byte) Elems { return Elems{newSeq(v, '[', "array")} }

// Next returns the next element; ok is false at the end or on error (see Err).
func (e *Elems) Next() ([]byte, bool) {
	i, ok := e.item(']')
	if !ok {
		return nil, false
	}
	end, err := SkipValue(e.b, i, 1)
	if err != nil {
		e.fail(err)
		return nil, false
	}
	e.i = end
	return e.b[i:end], true
}

// unescapeKey returns k unchanged unless it holds escapes (rare in keys), in
// which case it decodes them so "\u0063ontent" still matches "content".
func unescapeKey(k []byte) []byte {
	for _, c := range k {
		if c == '\\' {
			var s string
			q := make([]byte, 0, len(k)+2)
			q = append(append(append(q, '"'), k...), '"')
			if json.Unmarshal(q, &s) == nil {
				return appendEscaped(nil, s)
			}
			return k
		}
	}
	return k
}

const hexDigits = "0123456789abcdef"

// appendEscaped appends the JSON escaped form of s (without quotes). It does
// not escape <, > and & (unlike encoding/json), which OpenAI does not either.
func appendEscaped(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
