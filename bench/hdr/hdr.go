// Package hdr is a small log-linear latency histogram in the spirit of
// HdrHistogram: every power-of-two range of nanoseconds is split into 128
// equal buckets, so a recorded value is known to within 1/128 (0.8%) of
// itself and a quantile is reported to within ~0.4%, from 1 ns to ~73 minutes
// in about 4,600 counters (37 KB). Values above the range are clamped to it.
//
// A Histogram is not safe for concurrent use: give each goroutine its own and
// Merge them.
package hdr

import (
	"math"
	"math/bits"
	"time"
)

const (
	subBits = 7
	sub     = 1 << subBits // buckets per power of two
	maxBits = 42           // 2^42 ns ≈ 73 min
	nBucket = (maxBits - subBits + 1) * sub
	maxVal  = int64(1)<<maxBits - 1
)

// Histogram counts durations in log-linear buckets. The zero value is empty
// and ready to use.
type Histogram struct {
	counts   []uint64
	total    uint64
	sum      float64
	min, max int64
}

// index returns the bucket of v (0 <= v <= maxVal).
func index(v int64) int {
	u := uint64(v)
	if u < 2*sub {
		return int(u)
	}
	shift := bits.Len64(u) - (subBits + 1)
	return (shift+1)*sub + int(u>>shift) - sub
}

// bounds returns the lowest value of bucket i and its width.
func bounds(i int) (lo, width int64) {
	if i < 2*sub {
		return int64(i), 1
	}
	shift := i/sub - 1
	return int64(i%sub+sub) << shift, int64(1) << shift
}

// Record adds one observation of d. Negative durations count as zero.
func (h *Histogram) Record(d time.Duration) { h.RecordN(d, 1) }

// RecordN adds n observations of d.
func (h *Histogram) RecordN(d time.Duration, n uint64) {
	if n == 0 {
		return
	}
	v := int64(d)
	v = max(0, min(v, maxVal))
	if h.counts == nil {
		h.counts = make([]uint64, nBucket)
	}
	h.counts[index(v)] += n
	if h.total == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.total += n
	h.sum += float64(v) * float64(n)
}

// Merge adds every observation of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil || o.total == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make([]uint64, nBucket)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.total == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.total += o.total
	h.sum += o.sum
}

// Reset empties h, keeping its memory.
func (h *Histogram) Reset() {
	clear(h.counts)
	h.total, h.sum, h.min, h.max = 0, 0, 0, 0
}

// Count returns the number of observations.
func (h *Histogram) Count() uint64 { return h.total }

// Min returns the smallest observation exactly, or 0 when empty.
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Max returns the largest observation exactly, or 0 when empty.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean returns the mean observation, or 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.total))
}

// Quantile returns the value below which a fraction q (0..1) of the
// observations fall: the midpoint of the bucket holding the ceil(q·n)-th
// observation, clamped to [Min, Max]. It returns 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	q = max(0, min(q, 1))
	rank := uint64(math.Ceil(q * float64(h.total)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, w := bounds(i)
			v := lo + (w-1)/2
			return time.Duration(max(h.min, min(v, h.max)))
		}
	}
	return time.Duration(h.max)
}

// Point is one step of a percentile spectrum.
type Point struct {
	Quantile float64       `json:"q"`
	Value    time.Duration `json:"ns"`
}

// Spectrum returns the values at the standard quantiles 0.5, 0.75, 0.9, 0.99,
// 0.999, 0.9999 and 1, for charts and JSON.
func (h *Histogram) Spectrum() []Point {
	qs := []float64{0.5, 0.75, 0.9, 0.99, 0.999, 0.9999, 1}
	out := make([]Point, len(qs))
	for i, q := range qs {
		out[i] = Point{q, h.Quantile(q)}
	}
	return out
}
