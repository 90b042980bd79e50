package semantic

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
)

// flatIndex keeps a partition's vectors in one contiguous array and answers
// a query with a single linear scan. Removal swaps the last vector into the
// freed slot, so the array stays dense.
type flatIndex struct {
	dim  int
	vecs []float32 // len(ids)*dim
	ids  []string
	slot map[string]int // id → position in ids
}

func (x *flatIndex) add(_ context.Context, id string, vec []float32) error {
	if len(vec) != x.dim {
		return fmt.Errorf("vector has dimension %d, index %d", len(vec), x.dim)
	}
	if i, ok := x.slot[id]; ok {
		copy(x.vecs[i*x.dim:], vec)
		return nil
	}
	x.slot[id] = len(x.ids)
	x.ids = append(x.ids, id)
	x.vecs = append(x.vecs, vec...)
	return nil
}

func (x *flatIndex) remove(id string) error {
	i, ok := x.slot[id]
	if !ok {
		return nil
	}
	last := len(x.ids) - 1
	if i != last {
		x.ids[i] = x.ids[last]
		x.slot[x.ids[i]] = i
		copy(x.vecs[i*x.dim:(i+1)*x.dim], x.vecs[last*x.dim:])
	}
	x.ids[last] = ""
	x.ids = x.ids[:last]
	x.vecs = x.vecs[:last*x.dim]
	delete(x.slot, id)
	if cap(x.ids) > 64 && len(x.ids) < cap(x.ids)/4 { // give memory back after mass deletion
		x.ids = append([]string(nil), x.ids...)
		x.vecs = append([]float32(nil), x.vecs...)
	}
	return nil
}

func (x *flatIndex) count() int { return len(x.ids) }

// scanChunk is how many vectors are scanned between checks of ctx.
const scanChunk = 4096

// parallelWork is the size (vectors × dimension) from which a query splits
// its scan over several goroutines: below it, starting them costs more than
// it saves.
const parallelWork = 1 << 20

func (x *flatIndex) query(ctx context.Context, vec []float32, k int, threshold float32, out []match) ([]match, error) {
	if len(vec) != x.dim {
		return out, fmt.Errorf("query has dimension %d, index %d", len(vec), x.dim)
	}
	if k <= 0 {
		return out, nil
	}
	n := len(x.ids)
	workers := min(runtime.GOMAXPROCS(0), 4, n*x.dim/parallelWork)
	if workers <= 1 {
		return x.scan(ctx, vec, 0, n, k, threshold, out)
	}
	parts := make([][]match, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			lo, hi := n*w/workers, n*(w+1)/workers
			parts[w], errs[w] = x.scan(ctx, vec, lo, hi, k, threshold, make([]match, 0, k))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return out, err
	}
	base := len(out)
	for _, p := range parts {
		for _, m := range p {
			out = insertTop(out, base, k, m)
		}
	}
	return out, nil
}

// scan appends to out the best k matches at or above threshold among
// vectors lo..hi-1, best first.
func (x *flatIndex) scan(ctx context.Context, vec []float32, lo, hi, k int, threshold float32, out []match) ([]match, error) {
	base := len(out)
	dim := x.dim
	for i := lo; i < hi; i++ {
		if (i-lo)%scanChunk == scanChunk-1 && ctx.Err() != nil {
			return out[:base], ctx.Err()
		}
		sim := dotF32(vec, x.vecs[i*dim:(i+1)*dim])
		if sim < threshold {
			continue
		}
		if top := out[base:]; len(top) == k && sim <= top[k-1].sim {
			continue
		}
		out = insertTop(out, base, k, match{x.ids[i], sim})
	}
	return out, nil
}

// insertTop inserts m into the list out[base:], kept sorted best first and
// at most k long, if m belongs there.
func insertTop(out []match, base, k int, m match) []match {
	top := out[base:]
	if len(top) == k {
		if m.sim <= top[k-1].sim {
			return out
		}
	} else {
		out = append(out, match{})
		top = out[base:]
	}
	j := len(top) - 1
	for j > 0 && top[j-1].sim < m.sim {
		top[j] = top[j-1]
		j--
	}
	top[j] = m
	return out
}

// dotF32 is the dot product of equally long a and b, unrolled by eight with
// independent accumulators.
func dotF32(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	i := 0
	for ; i+8 <= len(a); i += 8 {
		aa, bb := a[i:i+8:i+8], b[i:i+8:i+8]
		s0 += aa[0] * bb[0]
		s1 += aa[1] * bb[1]
		s2 += aa[2] * bb[2]
		s3 += aa[3] * bb[3]
		s4 += aa[4] * bb[4]
		s5 += aa[5] * bb[5]
		s6 += aa[6] * bb[6]
		s7 += aa[7] * bb[7]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3) + (s4 + s5) + (s6 + s7)
}
