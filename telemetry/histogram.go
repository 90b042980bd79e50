package telemetry

import (
	"math"
	"sync/atomic"
	"time"
)

// Histogram counts observations into buckets with fixed upper bounds (an
// observation v lands in the first bucket whose bound is >= v, or in the
// implied +Inf bucket). Observe is lock-free and does not allocate. A scrape
// reads the buckets one by one without stopping writers, so a scrape racing
// Observe may show _sum and the buckets one observation apart; _count is
// always the sum of the buckets.
type Histogram struct {
	upper  []float64       // strictly increasing, no +Inf
	bucket []atomic.Uint64 // len(upper)+1; the last one is +Inf
	sum    atomic.Uint64   // float64 bits
}

func newHistogram(upper []float64) *Histogram {
	return &Histogram{upper: upper, bucket: make([]atomic.Uint64, len(upper)+1)}
}

// Observe records v. NaN is ignored.
func (h *Histogram) Observe(v float64) {
	if math.IsNaN(v) {
		return
	}
	lo, hi := 0, len(h.upper)
	for lo < hi { // first bound >= v
		mid := int(uint(lo+hi) >> 1)
		if h.upper[mid] < v {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	h.bucket[lo].Add(1)
	addFloat(&h.sum, v)
}

// ObserveDuration records d in seconds.
func (h *Histogram) ObserveDuration(d time.Duration) { h.Observe(d.Seconds()) }

// counts appends the per-bucket (not cumulative) counts, +Inf last, to dst
// and returns them with the sum.
func (h *Histogram) counts(dst []uint64) ([]uint64, float64) {
	for i := range h.bucket {
		dst = append(dst, h.bucket[i].Load())
	}
	return dst, math.Float64frombits(h.sum.Load())
}

// snapshot returns the observation count and sum; dst is scratch space.
func (h *Histogram) snapshot(dst []uint64) (uint64, float64) {
	c, sum := h.counts(dst)
	var n uint64
	for _, x := range c {
		n += x
	}
	return n, sum
}

// HistogramVec is a histogram with labels; With selects one series.
type HistogramVec struct{ f *family }

// With returns the histogram for labelValues, like CounterVec.With.
func (v *HistogramVec) With(labelValues ...string) *Histogram {
	return v.f.get(labelValues).hist
}

// Histogram registers a histogram with the given bucket upper bounds
// (strictly increasing and finite; a trailing +Inf is optional, it is always
// added) and label names. "le" is not allowed as a label name.
func (r *Registry) Histogram(name, help string, buckets []float64, labelNames ...string) *HistogramVec {
	buckets = validBuckets(name, buckets)
	return &HistogramVec{r.register(name, help, kindHistogram, labelNames, buckets, nil)}
}

// ExponentialBuckets returns count bounds start, start*factor,
// start*factor², ... It panics unless start > 0, factor > 1 and count >= 1.
func ExponentialBuckets(start, factor float64, count int) []float64 {
	if !(start > 0) || !(factor > 1) || count < 1 {
		panic("telemetry: ExponentialBuckets needs start > 0, factor > 1, count >= 1")
	}
	b := make([]float64, count)
	for i := range b {
		b[i] = start
		start *= factor
	}
	return b
}
