package sse

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// This file holds a small strict JSON reader that walks raw bytes without
// allocating: it validates values as it skips them and hands out sub-slices.
// The assembler and replay use it instead of encoding/json so that string
// deltas are concatenated in their escaped form (a surrogate pair split across
// two chunks stays intact) and the hit path does no reflection.

// ErrMalformed is wrapped by every JSON syntax error this package reports.
var ErrMalformed = errors.New("sse: malformed JSON")

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 512

func syntaxErr(b []byte, i int, what string) error {
	return fmt.Errorf("%w: %s at offset %d of %d", ErrMalformed, what, i, len(b))
}

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipWS(b []byte, i int) int {
	for i < len(b) && isWS(b[i]) {
		i++
	}
	return i
}

// skipValue validates the JSON value starting at b[i] (no leading whitespace)
// and returns the index just past it.
func skipValue(b []byte, i, depth int) (int, error) {
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
		i = skipWS(b, i+1)
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
			i = skipWS(b, i)
			if i >= len(b) || b[i] != ':' {
				return i, syntaxErr(b, i, "expected ':'")
			}
			i = skipWS(b, i+1)
			if i, err = skipValue(b, i, depth+1); err != nil {
				return i, err
			}
			i = skipWS(b, i)
			if i < len(b) && b[i] == ',' {
				i = skipWS(b, i+1)
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
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1, nil
		}
		for {
			var err error
			if i, err = skipValue(b, i, depth+1); err != nil {
				return i, err
			}
			i = skipWS(b, i)
			if i < len(b) && b[i] == ',' {
				i = skipWS(b, i+1)
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
		for i < len(b) && b[i] >= 0x20 && b[i] != '"' && b[i] != '\\' {
			i++
		}
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

// checkValue reports whether b is exactly one JSON value with optional
// surrounding whitespace, and returns that value trimmed.
func checkValue(b []byte) ([]byte, error) {
	i := skipWS(b, 0)
	end, err := skipValue(b, i, 0)
	if err != nil {
		return nil, err
	}
	if j := skipWS(b, end); j != len(b) {
		return nil, syntaxErr(b, j, "trailing data")
	}
	return b[i:end], nil
}

// members iterates over the members of the raw object v (already trimmed,
// v[0] == '{'). Keys are the escaped contents between the quotes.
type members struct {
	b       []byte
	i       int
	started bool
	done    bool
	err     error
}

func newMembers(v []byte) members {
	m := members{b: v, i: 1}
	if len(v) == 0 || v[0] != '{' {
		m.err, m.done = syntaxErr(v, 0, "expected object"), true
	}
	return m
}

// next returns the next key and value; ok is false at the end or on error
// (check m.err).
func (m *members) next() (key, val []byte, ok bool) {
	b := m.b
	if m.done {
		return nil, nil, false
	}
	i := skipWS(b, m.i)
	switch {
	case i < len(b) && b[i] == '}':
		m.done = true
		if i != len(b)-1 {
			m.fail(syntaxErr(b, i, "trailing data"))
		}
		return nil, nil, false
	case m.started && (i >= len(b) || b[i] != ','):
		m.fail(syntaxErr(b, i, "expected ',' or '}'"))
		return nil, nil, false
	case m.started:
		i = skipWS(b, i+1)
	}
	m.started = true
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
	i = skipWS(b, ke)
	if i >= len(b) || b[i] != ':' {
		m.fail(syntaxErr(b, i, "expected ':'"))
		return nil, nil, false
	}
	i = skipWS(b, i+1)
	vs := i
	ve, err := skipValue(b, i, 1)
	if err != nil {
		m.fail(err)
		return nil, nil, false
	}
	m.i = ve
	return unescapeKey(b[ks+1 : ke-1]), b[vs:ve], true
}

func (m *members) fail(err error) { m.err, m.done = err, true }

// elems iterates over the elements of the raw array v (trimmed, v[0] == '[').
type elems struct {
	b       []byte
	i       int
	started bool
	done    bool
	err     error
}

func newElems(v []byte) elems {
	e := elems{b: v, i: 1}
	if len(v) == 0 || v[0] != '[' {
		e.err, e.done = syntaxErr(v, 0, "expected array"), true
	}
	return e
}

func (e *elems) next() ([]byte, bool) {
	b := e.b
	if e.done {
		return nil, false
	}
	i := skipWS(b, e.i)
	switch {
	case i < len(b) && b[i] == ']':
		e.done = true
		if i != len(b)-1 {
			e.fail(syntaxErr(b, i, "trailing data"))
		}
		return nil, false
	case e.started && (i >= len(b) || b[i] != ','):
		e.fail(syntaxErr(b, i, "expected ',' or ']'"))
		return nil, false
	case e.started:
		i = skipWS(b, i+1)
	}
	e.started = true
	end, err := skipValue(b, i, 1)
	if err != nil {
		e.fail(err)
		return nil, false
	}
	e.i = end
	return b[i:end], true
}

func (e *elems) fail(err error) { e.err, e.done = err, true }

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
	return skipWS(v, 1) == len(v)-1
}

// arrayInner returns the elements of the array v without its brackets and
// surrounding whitespace ("" for an empty array).
func arrayInner(v []byte) []byte {
	i := skipWS(v, 1)
	j := len(v) - 1
	for j > i && isWS(v[j-1]) {
		j--
	}
	return v[i:j]
}

// parseInt reads an integer JSON number; ok is false for anything else.
func parseInt(v []byte) (int, bool) {
	n, err := strconv.Atoi(string(v))
	return n, err == nil
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

// trimWS trims JSON whitespace (space, tab, CR, LF) from both ends of b.
func trimWS(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && isWS(b[i]) {
		i++
	}
	for j > i && isWS(b[j-1]) {
		j--
	}
	return b[i:j]
}

// kv is one object member as raw slices.
type kv struct{ k, v []byte }

// collect appends the members of the raw object v to dst (callers pass a
// stack array so that each object is scanned once).
func collect(dst []kv, v []byte) ([]kv, error) {
	m := newMembers(v)
	for {
		k, val, ok := m.next()
		if !ok {
			return dst, m.err
		}
		dst = append(dst, kv{k, val})
	}
}
