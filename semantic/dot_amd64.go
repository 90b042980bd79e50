//go:build !purego

package semantic

import "golang.org/x/sys/cpu"

// hasFMA says dotF32 may use dotFMA: AVX2 and FMA3, as x86-64 processors since 2013 have.
var hasFMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// hasAVX2 says addScaled may use addScaledAVX2.
var hasAVX2 = cpu.X86.HasAVX2

// dotFMA writes to out[i] the dot product of the dim floats at q with vector i of the count
// laid end to end at v (see dot_amd64.s): four accumulators of eight lanes, one fused
// multiply-add per pair of floats.
//
//go:noescape
func dotFMA(q, v *float32, dim, count int, out *float32)

// dotF32 is the dot product of equally long a and b, with dotFMA where the processor has it.
// Every product reaches the result through at most len(a)/32 + 15 roundings (its
// accumulator's, the reduction's five, the last products' seven), never more than the
// len(a)+8 the quantised pre-scan's bound allows for (quant.go).
func dotF32(a, b []float32) float32 {
	if !hasFMA || len(a) == 0 {
		return dotGeneric(a, b)
	}
	b = b[:len(a)]
	var s float32
	dotFMA(&a[0], &b[0], len(a), 1, &s)
	return s
}

// dotBlock writes to out[i] dotF32(q, vecs[i*len(q):(i+1)*len(q)]), for the len(out)
// vectors vecs holds, in one call.
func dotBlock(q, vecs []float32, out []float32) {
	dim := len(q)
	vecs = vecs[:len(out)*dim]
	if !hasFMA || dim == 0 || len(out) == 0 {
		dotBlockGeneric(q, vecs, out)
		return
	}
	dotFMA(&q[0], &vecs[0], dim, len(out), &out[0])
}

// addScaledAVX2 adds s * float32(q[j]) to v[j] for j < n (see dot_amd64.s).
//
//go:noescape
func addScaledAVX2(v *float32, q *int8, n int, s float32)

// addScaled adds s * float32(q[j]) to v[j] for every j of q, which is no longer than v: the
// local embedder's sum of a word's quantised row. It gives addScaledGeneric's result, bit for
// bit, eight lanes at a time where the processor has AVX2.
func addScaled(v []float32, q []int8, s float32) {
	if !hasAVX2 || len(q) == 0 {
		addScaledGeneric(v, q, s)
		return
	}
	v = v[:len(q)]
	addScaledAVX2(&v[0], &q[0], len(q), s)
}
