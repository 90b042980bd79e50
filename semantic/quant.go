package semantic

import "math"

// Quantised pre-scan of the flat index.
//
// Every vector v is also kept as 7-bit integers: v ≈ s·ṽ with ṽ_j in
// [-qMax, qMax] and s = max|v_j|/qMax. A query is quantised the same way, and
// the integer dot product ṽ·q̃ is computed four lanes per 64-bit multiply
// (SWAR, see dotQ). From it, rigorous bounds on the quantisation error and on
// dotF32's float32 rounding give an upper bound on the similarity dotF32
// would return; a vector whose bound cannot reach the current cut-off is
// skipped, every other one is scored exactly with dotF32. The scan therefore
// returns exactly what a plain float32 scan returns, bit for bit and in the
// same order, while reading a quarter of the bytes and doing about a third
// of the arithmetic for the vectors it skips.
//
// Bound. With v̂ = s_v·ṽ, e_v = v − v̂ (and likewise for q),
//
//	q·v = q̂·v̂ + q·e_v + e_q·v̂,  so  |q·v − s_q·s_v·(q̃·ṽ)| ≤ ‖q‖·‖e_v‖ + ‖e_q‖·‖v̂‖,
//
// and dotF32 differs from the real q·v by at most γ·‖q‖·‖v‖ with
// γ = n·u/(1−n·u), u = 2⁻²⁴, n = dim+8 (a generous count of the roundings on
// any path of its accumulator tree, the fused multiply-add one's included: see
// dotF32), ‖v‖ ≤ ‖v̂‖ + ‖e_v‖. The bound is
// evaluated in float64 and padded by a relative 1e-7 and an absolute 1e-30
// (float64 evaluation error, float32 underflow). Vectors or queries that are
// not finite or whose norm exceeds qNormMax (where float32 could overflow)
// are never skipped.

const (
	// qMax is the largest quantised magnitude: lanes hold ṽ+qMax in 0..2·qMax,
	// and four products of those must fit a 16-bit lane (4·126² < 2¹⁶).
	qMax = 63
	// laneMask selects the even bytes of a word as four 16-bit lanes.
	laneMask = 0x00FF00FF00FF00FF
	// qNormMax is the largest vector norm the bound is trusted for; beyond
	// it (never for unit vectors) products could overflow float32.
	qNormMax = 1e15
)

// qmeta is the per-vector data of the bound. A vector with rv = +Inf is
// never skipped.
type qmeta struct {
	scale    float64 // s_v
	rv       float64 // ≥ ‖e_v‖
	nv       float64 // ≥ ‖v̂‖
	tailNorm float64 // ≥ ‖ṽ‖ over the tail words (see headWords)
	sum      int64   // Σ ṽ_j
	headSum  int64   // Σ ṽ_j over the head words
}

// qwords is the number of 64-bit words holding one quantised vector of
// dimension dim: eight bytes a word, padded with zeros.
func qwords(dim int) int { return (dim + 7) / 8 }

// headWords is how many leading words of a quantised vector the scan scores
// before a first bound, which bounds the tail by Cauchy–Schwarz.
func headWords(nw int) int { return nw / 4 }

// quantize writes v's quantised form to words (qwords(len(v)) long, packed
// bytes ṽ_j+qMax, byte j%8 of word j/8, padding ṽ=0) and returns its meta.
func quantize(v []float32, words []uint64) qmeta {
	var m float64
	var ss float64
	for _, x := range v {
		f := float64(x)
		ss += f * f
		m = max(m, math.Abs(f))
	}
	if math.IsNaN(ss) || math.IsInf(ss, 0) || math.Sqrt(ss) > qNormMax {
		for j := range words {
			words[j] = qMax * 0x0101010101010101
		}
		return qmeta{rv: math.Inf(1), nv: math.Inf(1), tailNorm: math.Inf(1)}
	}
	var meta qmeta
	var inv float64 // 1/scale: any rounding of v_j·inv keeps the bound, which reads the ṽ_j chosen
	if m > 0 {
		meta.scale = m / qMax
		inv = qMax / m
	}
	h := headWords(len(words))
	var se, sn float64
	var tail int64
	for j := range words {
		var w uint64
		for b := range 8 {
			var t int64
			if i := j*8 + b; i < len(v) && m > 0 {
				f := float64(v[i])
				t = max(-qMax, min(qMax, int64(math.RoundToEven(f*inv))))
				r := float64(t) * meta.scale
				se += (f - r) * (f - r)
				sn += r * r
			}
			meta.sum += t
			if j < h {
				meta.headSum += t
			} else {
				tail += t * t
			}
			w |= uint64(t+qMax) << (8 * b)
		}
		words[j] = w
	}
	meta.rv = math.Sqrt(se) * (1 + 1e-9)
	meta.nv = math.Sqrt(sn) * (1 + 1e-9)
	meta.tailNorm = math.Sqrt(float64(tail)) * (1 + 1e-9)
	return meta
}

// qquery is a quantised query: the reversed lane words dotQ multiplies by,
// and the constants of the bound.
type qquery struct {
	even, odd []uint64 // per word: bytes 0,2,4,6 (resp. 1,3,5,7) as reversed 16-bit lanes
	h         int      // headWords
	scale     float64  // s_q
	base      int64    // qMax·Σq̃ + qMax²·8·words: the offsets' share of dotQ
	headBase  int64    // the same over the head words
	tailNorm  float64  // ≥ ‖q̃‖ over the tail words
	cRv, cNv  float64  // ub = scale·s_v·I + cRv·rv + cNv·nv + pad·(rv+nv)
	pad       float64  // relative padding
	exact     bool     // the query is not finite or too long: skip nothing
}

// newQQuery quantises vec, using buf (at least 3·qwords(len(vec)) long) as
// its storage.
func newQQuery(vec []float32, buf []uint64) qquery {
	nw := qwords(len(vec))
	words := buf[2*nw : 3*nw]
	meta := quantize(vec, words)
	if math.IsInf(meta.rv, 0) {
		return qquery{exact: true}
	}
	q := qquery{even: buf[:nw:nw], odd: buf[nw : 2*nw : 2*nw], h: headWords(nw)}
	for j, w := range words {
		var e, o uint64
		for l := range 4 { // lane l of the multiplier holds byte 2·(3−l) (+1)
			e |= (w >> (8 * 2 * (3 - l)) & 0xFF) << (16 * l)
			o |= (w >> (8 * (2*(3-l) + 1)) & 0xFF) << (16 * l)
		}
		q.even[j], q.odd[j] = e, o
	}
	var qn float64
	for _, x := range vec {
		qn += float64(x) * float64(x)
	}
	qn = math.Sqrt(qn)
	n := float64(len(vec) + 8)
	u := math.Ldexp(1, -24)
	gamma := n * u / (1 - n*u)
	q.scale = meta.scale
	q.base = qMax*meta.sum + qMax*qMax*8*int64(nw)
	q.headBase = qMax*meta.headSum + qMax*qMax*8*int64(q.h)
	q.tailNorm = meta.tailNorm
	q.cRv = qn * (1 + gamma)
	q.cNv = meta.rv + gamma*qn
	q.pad = 1e-7 * (qn + meta.rv)
	return q
}

// bound returns an upper bound on dotF32(query, v) given the dotQ of all of
// v's words and v's meta.
func (q *qquery) bound(sum uint64, m *qmeta) float64 {
	i := int64(sum) - q.base - qMax*m.sum
	return q.scale*m.scale*float64(i) + q.cRv*m.rv + q.cNv*m.nv + q.pad*(m.nv+m.rv) + 1e-30
}

// headBound returns an upper bound on dotF32(query, v) given the dotQ of v's
// head words only: the tail's share of q̃·ṽ is at most the product of the
// tails' norms.
func (q *qquery) headBound(sum uint64, m *qmeta) float64 {
	i := float64(int64(sum)-q.headBase-qMax*m.headSum) + q.tailNorm*m.tailNorm
	return q.scale*m.scale*i + q.cRv*m.rv + q.cNv*m.nv + q.pad*(m.nv+m.rv) + 1e-30
}

// dotQBlock sets sums[v] to dotQ of the first len(even) words of the v-th
// vector of words, len(sums) vectors of stride words each. Scoring a block
// in its own small loop keeps the accumulators in registers.
func dotQBlock(words []uint64, stride int, even, odd []uint64, sums []uint64) {
	h := len(even)
	odd = odd[:h]
	for v := range sums {
		sums[v] = dotQ(words[v*stride:v*stride+h], even, odd)
	}
}

// dotQ returns Σ (ṽ_j+qMax)·(q̃_j+qMax) over one quantised vector. Each word
// is split into its even and odd bytes as four 16-bit lanes; multiplying
// such a word by the query's lanes in reverse order puts the four-term dot
// product in the top lane (bits 48–63) of the low 64 bits of the product:
// every lane sum is at most 4·126² < 2¹⁶, so no lane carries into the next.
func dotQ(words, even, odd []uint64) uint64 {
	even = even[:len(words)]
	odd = odd[:len(words)]
	var s0, s1, s2, s3 uint64
	j := 0
	for ; j+2 <= len(words); j += 2 {
		w0, w1 := words[j], words[j+1]
		s0 += ((w0 & laneMask) * even[j]) >> 48
		s1 += ((w0 >> 8 & laneMask) * odd[j]) >> 48
		s2 += ((w1 & laneMask) * even[j+1]) >> 48
		s3 += ((w1 >> 8 & laneMask) * odd[j+1]) >> 48
	}
	if j < len(words) {
		w := words[j]
		s0 += ((w & laneMask) * even[j]) >> 48
		s1 += ((w >> 8 & laneMask) * odd[j]) >> 48
	}
	return (s0 + s1) + (s2 + s3)
}
