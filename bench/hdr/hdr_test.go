package hdr

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// exactQuantile is the nearest-rank quantile of sorted values.
func exactQuantile(sorted []int64, q float64) int64 {
	r := int(math.Ceil(q * float64(len(sorted))))
	return sorted[max(r, 1)-1]
}

func TestQuantilesWithinOnePercent(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name string
		gen  func() int64
	}{
		{"uniform 50us-5ms", func() int64 { return 50_000 + rng.Int64N(4_950_000) }},
		{"exponential mean 300us", func() int64 { return int64(rng.ExpFloat64() * 300_000) }},
		{"lognormal around 1ms", func() int64 { return int64(math.Exp(rng.NormFloat64()*1.2) * 1e6) }},
		{"bimodal hits and misses", func() int64 {
			if rng.IntN(10) < 7 {
				return 40_000 + rng.Int64N(20_000)
			}
			return 20_000_000 + rng.Int64N(5_000_000)
		}},
		{"small exact values", func() int64 { return rng.Int64N(200) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h Histogram
			vals := make([]int64, 100_000)
			for i := range vals {
				vals[i] = tc.gen()
				h.Record(time.Duration(vals[i]))
			}
			slices.Sort(vals)
			for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
				want := exactQuantile(vals, q)
				got := int64(h.Quantile(q))
				if diff := math.Abs(float64(got - want)); diff > 0.01*float64(want) && diff > 1 {
					t.Errorf("q%.3f = %d, exact %d (off by %.2f%%)", q, got, want, 100*diff/float64(want))
				}
			}
			if h.Min() != time.Duration(vals[0]) || h.Max() != time.Duration(vals[len(vals)-1]) {
				t.Errorf("min/max %v/%v, want %v/%v", h.Min(), h.Max(), vals[0], vals[len(vals)-1])
			}
			if h.Count() != uint64(len(vals)) {
				t.Errorf("count %d", h.Count())
			}
		})
	}
}

func TestBucketsAreContiguous(t *testing.T) {
	// Every value maps into a bucket whose bounds contain it, and bucket
	// indexes never go backwards.
	prev := -1
	for v := int64(0); v < 1<<20; v += 1 + v/977 {
		i := index(v)
		lo, w := bounds(i)
		if v < lo || v >= lo+w {
			t.Fatalf("value %d in bucket %d [%d,%d)", v, i, lo, lo+w)
		}
		if i < prev {
			t.Fatalf("index went backwards at %d", v)
		}
		if w > 1 && float64(w)/float64(lo) > 1.0/sub+1e-9 {
			t.Fatalf("bucket %d too wide: %d at %d", i, w, lo)
		}
		prev = i
	}
	if index(maxVal) >= nBucket {
		t.Fatalf("max value overflows: %d >= %d", index(maxVal), nBucket)
	}
}

func TestMergeAndClamp(t *testing.T) {
	var a, b, all Histogram
	for i := range 1000 {
		d := time.Duration(i) * time.Microsecond
		all.Record(d)
		if i%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(&b)
	for _, q := range []float64{0.1, 0.5, 0.99} {
		if a.Quantile(q) != all.Quantile(q) {
			t.Errorf("merged q%.2f %v != %v", q, a.Quantile(q), all.Quantile(q))
		}
	}
	if a.Mean() != all.Mean() {
		t.Errorf("mean %v != %v", a.Mean(), all.Mean())
	}
	var h Histogram
	h.Record(-5)
	h.Record(1000 * time.Hour)
	if h.Min() != 0 || h.Max() != time.Duration(maxVal) {
		t.Errorf("clamp: min %v max %v", h.Min(), h.Max())
	}
	var empty Histogram
	if empty.Quantile(0.99) != 0 || empty.Mean() != 0 {
		t.Error("empty histogram reports values")
	}
}

func BenchmarkRecord(b *testing.B) {
	var h Histogram
	b.ReportAllocs()
	d := time.Duration(0)
	for b.Loop() {
		d += 997
		h.Record(d % (10 * time.Millisecond))
	}
}
