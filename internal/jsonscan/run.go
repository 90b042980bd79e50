package jsonscan

import (
	"encoding/binary"
	"math/bits"
)

// StringRun returns the index of the first byte of b at or after i that ends a run of plain
// string content: a quote, a backslash or a control character (below 0x20); len(b) when
// there is none. It tests eight bytes at a time, so long answer texts cost about a third
// of a byte-by-byte loop.
func StringRun(b []byte, i int) int {
	const (
		ones = 0x0101010101010101
		high = 0x8080808080808080
	)
	for ; i >= 0 && i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		q, s := x^(ones*'"'), x^(ones*'\\')
		// A byte's high bit is set when it is below 0x20 or zero after the xor. A borrow
		// can flag bytes above a true match, never below one, so the lowest flag is exact.
		m := ((x-ones*0x20)&^x | (q-ones)&^q | (s-ones)&^s) & high
		if m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c < 0x20 || c == '"' || c == '\\' {
			return i
		}
	}
	return len(b)
}
