package semantic

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestDotF32Error: dotF32 (with FMA where the processor has it) and dotGeneric are each within
// the rounding error the quantised pre-scan's bound assumes, γ(len+8)·Σ|a_i·b_i|, of the exact
// dot product, at every length around the unrolled blocks' edges.
func TestDotF32Error(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	const u = 1.0 / (1 << 24)
	for n := 0; n <= 300; n++ {
		for trial := 0; trial < 20; trial++ {
			a, b := make([]float32, n), make([]float32, n)
			for i := range a {
				// Mixed signs and magnitudes: cancellation is where rounding shows.
				a[i] = float32(rng.NormFloat64() * math.Pow(2, float64(rng.IntN(9)-4)))
				b[i] = float32(rng.NormFloat64() * math.Pow(2, float64(rng.IntN(9)-4)))
			}
			var exact, abs float64
			for i := range a {
				p := float64(a[i]) * float64(b[i]) // exact in float64
				exact += p
				abs += math.Abs(p)
			}
			k := float64(n + 8)
			limit := k*u/(1-k*u)*abs + 1e-30
			for name, dot := range map[string]func(a, b []float32) float32{"dotF32": dotF32, "dotGeneric": dotGeneric} {
				if got := float64(dot(a, b)); math.Abs(got-exact) > limit {
					t.Fatalf("%s, length %d: %v, exact %v, error %g over the bound %g", name, n, got, exact, math.Abs(got-exact), limit)
				}
			}
		}
	}
}

// TestDotBlockMatchesDotF32: a block's scores are dotF32's, bit for bit, so a scan that scores a
// block at a time returns what one scoring vector by vector does.
func TestDotBlockMatchesDotF32(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for _, dim := range []int{1, 7, 8, 9, 31, 32, 33, 100, 384} {
		for _, count := range []int{0, 1, 2, 63, 64} {
			q, vecs := make([]float32, dim), make([]float32, dim*count)
			for i := range q {
				q[i] = float32(rng.NormFloat64())
			}
			for i := range vecs {
				vecs[i] = float32(rng.NormFloat64())
			}
			out := make([]float32, count)
			dotBlock(q, vecs, out)
			for i, got := range out {
				if want := dotF32(q, vecs[i*dim:(i+1)*dim]); got != want {
					t.Fatalf("dim %d, vector %d of %d: dotBlock %v, dotF32 %v", dim, i, count, got, want)
				}
			}
		}
	}
}

// TestDotF32Edges: what the vectors can hold that arithmetic treats specially.
func TestDotF32Edges(t *testing.T) {
	inf := float32(math.Inf(1))
	for _, tc := range []struct {
		a, b []float32
		want func(float32) bool
	}{
		{nil, nil, func(s float32) bool { return s == 0 }},
		{[]float32{1, 2, 3, 4, 5, 6, 7, 8, 9}, []float32{1, 1, 1, 1, 1, 1, 1, 1, 1}, func(s float32) bool { return s == 45 }},
		{append(make([]float32, 40), inf), append(make([]float32, 40), 1), func(s float32) bool { return math.IsInf(float64(s), 1) }},
		{append(make([]float32, 8), inf), append(make([]float32, 8), 0), func(s float32) bool { return math.IsNaN(float64(s)) }},
		{[]float32{float32(math.NaN()), 0, 0, 0, 0, 0, 0, 0}, make([]float32, 8), func(s float32) bool { return math.IsNaN(float64(s)) }},
	} {
		if got := dotF32(tc.a, tc.b); !tc.want(got) {
			t.Errorf("dotF32(%v, %v) = %v", tc.a, tc.b, got)
		}
	}
}

// BenchmarkDotF32 is one score of the flat scan at the local embedder's dimension.
func BenchmarkDotF32(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	x, y := make([]float32, LocalDim), make([]float32, LocalDim)
	for i := range x {
		x[i], y[i] = rng.Float32(), rng.Float32()
	}
	var s float32
	for b.Loop() {
		s += dotF32(x, y)
	}
	_ = s
}

// TestAddScaledMatchesGeneric: the local embedder's row sum gives the scalar loop's floats, bit
// for bit, at every length around the eight-lane blocks' edges, so a vector (and every cached
// prompt's similarity) does not depend on the processor.
func TestAddScaledMatchesGeneric(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 17))
	for _, n := range []int{0, 1, 7, 8, 9, 15, 16, 17, 31, 100, 101} {
		for trial := 0; trial < 50; trial++ {
			q := make([]int8, n)
			for i := range q {
				q[i] = int8(rng.IntN(256) - 128)
			}
			s := float32(rng.NormFloat64() * math.Pow(2, float64(rng.IntN(21)-10)))
			v := make([]float32, n+3) // longer than q: only q's length is touched
			for i := range v {
				v[i] = float32(rng.NormFloat64())
			}
			want := append([]float32(nil), v...)
			addScaledGeneric(want, q, s)
			addScaled(v, q, s)
			for i := range v {
				if math.Float32bits(v[i]) != math.Float32bits(want[i]) {
					t.Fatalf("length %d, scale %v: v[%d] = %v, the scalar loop gives %v", n, s, i, v[i], want[i])
				}
			}
		}
	}
}
