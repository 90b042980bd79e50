package cache

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/zest-proxy/zest/internal/jsonscan"
)

// str reads a string at c.pos, appends its canonical spelling, and returns the decoded text
// when wantText is set (object keys need it). The text aliases the input when the string has
// no escapes, else it is a copy.
func (c *canon) str(wantText bool) ([]byte, error) {
	c.pos++ // opening quote
	start := c.pos
	plain := true
	for {
		c.pos = jsonscan.StringRun(c.in, c.pos)
		if c.pos >= len(c.in) || c.in[c.pos] == '"' {
			break
		}
		if c.in[c.pos] != '\\' {
			return nil, c.errf("control character in string")
		}
		plain = false
		c.pos += 2
	}
	if c.pos >= len(c.in) {
		return nil, c.errf("unterminated string")
	}
	raw := c.in[start:c.pos]
	c.pos++ // closing quote
	if plain {
		c.out = append(c.out, '"')
		c.out = append(c.out, raw...)
		c.out = append(c.out, '"')
		if wantText {
			return raw, nil
		}
		return nil, nil
	}
	textStart := len(c.out) + 1
	c.out = append(c.out, '"')
	var err error
	c.out, err = unescape(c.out, raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v at offset %d", ErrSyntax, err, start)
	}
	var text []byte
	if wantText {
		text = bytes.Clone(c.out[textStart:])
	}
	// Re-encode the decoded text in place with the minimal escapes.
	c.tmp = append(c.tmp[:0], c.out[textStart:]...)
	c.out = appendEscaped(c.out[:textStart], c.tmp)
	c.out = append(c.out, '"')
	return text, nil
}

// unescape appends the decoded form of a JSON string body to dst.
func unescape(dst, raw []byte) ([]byte, error) {
	for i := 0; i < len(raw); {
		b := raw[i]
		if b != '\\' {
			dst = append(dst, b)
			i++
			continue
		}
		if i+1 >= len(raw) {
			return dst, errors.New("bad escape")
		}
		switch raw[i+1] {
		case '"', '\\', '/':
			dst = append(dst, raw[i+1])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, n, ok := readU(raw[i:])
			if !ok {
				return dst, errors.New("bad \\u escape")
			}
			if r >= 0xD800 && r < 0xE000 {
				// A lone surrogate: the upstream sees it as written, so it must not collapse
				// into U+FFFD. Keep it as its generalised UTF-8 form (never valid UTF-8), which
				// appendEscaped writes back as an escape.
				dst = append(dst, 0xED, 0x80|byte(r>>6&0x3F), 0x80|byte(r&0x3F))
			} else {
				dst = utf8.AppendRune(dst, r)
			}
			i += n
			continue
		default:
			return dst, errors.New("bad escape")
		}
		i += 2
	}
	return dst, nil
}

// readU decodes \uXXXX (and a following low surrogate) at the start of s.
func readU(s []byte) (rune, int, bool) {
	hex4 := func(s []byte) (rune, bool) {
		if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
			return 0, false
		}
		v, err := strconv.ParseUint(string(s[2:6]), 16, 32)
		return rune(v), err == nil
	}
	r, ok := hex4(s)
	if !ok {
		return 0, 0, false
	}
	if r >= 0xD800 && r < 0xDC00 {
		if lo, ok := hex4(s[6:]); ok && lo >= 0xDC00 && lo < 0xE000 {
			return (r-0xD800)<<10 + (lo - 0xDC00) + 0x10000, 12, true
		}
		return r, 6, true // lone high surrogate
	}
	return r, 6, true
}

const hexDigits = "0123456789abcdef"

// appendEscaped appends text as the inside of a JSON string with the fewest escapes. A lone
// surrogate kept by unescape (bytes ED A0..BF xx) is written as its \uXXXX escape.
func appendEscaped(dst, text []byte) []byte {
	for i := 0; i < len(text); i++ {
		b := text[i]
		if b == 0xED && i+2 < len(text) && text[i+1] >= 0xA0 && text[i+1] <= 0xBF {
			r := rune(0xD)<<12 | rune(text[i+1]&0x3F)<<6 | rune(text[i+2]&0x3F)
			dst = append(dst, '\\', 'u', hexDigits[r>>12], hexDigits[r>>8&0xF], hexDigits[r>>4&0xF], hexDigits[r&0xF])
			i += 2
			continue
		}
		switch {
		case b == '"' || b == '\\':
			dst = append(dst, '\\', b)
		case b == '\n':
			dst = append(dst, '\\', 'n')
		case b == '\r':
			dst = append(dst, '\\', 'r')
		case b == '\t':
			dst = append(dst, '\\', 't')
		case b < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
		default:
			dst = append(dst, b)
		}
	}
	return dst
}

// number reads a JSON number and appends it in one spelling: integers as written (-0 as 0),
// other numbers through float64 (1.0 → 1, 1.50 → 1.5, 1E2 → 100).
func (c *canon) number() error {
	start := c.pos
	if c.in[c.pos] == '-' {
		c.pos++
	}
	digits := func() int {
		n := 0
		for c.pos < len(c.in) && c.in[c.pos] >= '0' && c.in[c.pos] <= '9' {
			c.pos++
			n++
		}
		return n
	}
	intStart := c.pos
	if n := digits(); n == 0 || (n > 1 && c.in[intStart] == '0') {
		return c.errf("invalid number")
	}
	isInt := true
	if c.pos < len(c.in) && c.in[c.pos] == '.' {
		c.pos++
		isInt = false
		if digits() == 0 {
			return c.errf("invalid number")
		}
	}
	if c.pos < len(c.in) && (c.in[c.pos] == 'e' || c.in[c.pos] == 'E') {
		c.pos++
		isInt = false
		if c.pos < len(c.in) && (c.in[c.pos] == '+' || c.in[c.pos] == '-') {
			c.pos++
		}
		if digits() == 0 {
			return c.errf("invalid number")
		}
	}
	lit := c.in[start:c.pos]
	if isInt {
		if string(lit) == "-0" {
			lit = lit[1:]
		}
		c.out = append(c.out, lit...)
		return nil
	}
	if plainDecimal(lit) {
		c.out = append(c.out, lit...) // what the round trip below would write
		return nil
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return c.errf("invalid number")
	}
	if math.IsInf(f, 0) {
		c.out = append(c.out, lit...) // beyond float64: keep the spelling
		return nil
	}
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		if f == 0 {
			f = 0 // drop the sign of -0.0
		}
		c.out = strconv.AppendFloat(c.out, f, 'f', -1, 64)
		return nil
	}
	c.out = strconv.AppendFloat(c.out, f, 'g', -1, 64)
	return nil
}

// plainDecimal reports whether a valid JSON number lit is a decimal that number's round trip
// through float64 writes back as it is: no exponent; an integer part of at most six digits,
// or a zero one with at most three zeros after the point (strconv writes the rest with an
// exponent); a fraction not ending in zero; and at most 15 significant digits, which a
// float64 keeps exactly, so that the shortest spelling of its value is lit's own. 0.7 and
// 0.25 (a temperature, a top_p) are; 1.50, 1e2, 1234567.5 and 0.00001 are not.
func plainDecimal(lit []byte) bool {
	if len(lit) > 0 && lit[0] == '-' {
		lit = lit[1:]
	}
	point := bytes.IndexByte(lit, '.')
	if point < 1 || point > 6 || lit[len(lit)-1] == '0' {
		return false
	}
	digits, lead := 0, 0 // significant digits; zeros after "0."
	if lit[0] == '0' {
		for lead < len(lit)-2 && lit[2+lead] == '0' {
			lead++
		}
		if lead > 3 {
			return false
		}
		digits = len(lit) - 2 - lead
	} else {
		digits = len(lit) - 1
	}
	for _, b := range lit[point+1:] {
		if b < '0' || b > '9' {
			return false // an exponent
		}
	}
	return digits <= 15
}
