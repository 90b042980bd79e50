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
// freed slot, so the array stays dense. Once it holds more than smallIndex
// vectors, each is also kept quantised (see quant.go), its head words and
// tail words in two arrays so that the first pass reads only heads; the
// quantised bounds let the scan skip most vectors without changing its
// result. A small index (most partitions hold one entry) scores its few
// vectors exactly and keeps neither the quantised copies nor an id map.
type flatIndex struct {
	dim   int
	h, t  int       // head and tail words of a quantised vector
	vecs  []float32 // len(ids)*dim
	qhead []uint64  // len(ids)*h, once quantised
	qtail []uint64  // len(ids)*t, once quantised
	qm    []qmeta   // len(ids), once quantised; nil before
	ids   []string
	slot  map[string]int // id → position in ids; nil while ids has at most smallIndex entries
	split int            // vectors × dimension from which a query runs parallelQuery
}

// smallIndex is the size up to which a flatIndex finds an id by scanning ids rather than
// through a map, and scores every vector exactly rather than keeping quantised copies. Most
// partitions hold one or a few entries (a prompt's numbers are part of its partition), and
// the map and the copies were half of such a partition's memory.
const smallIndex = 16

func newFlatIndex(dim int) *flatIndex {
	nw := qwords(dim)
	h := headWords(nw)
	return &flatIndex{dim: dim, h: h, t: nw - h, split: parallelWork}
}

// find returns the position of id in ids.
func (x *flatIndex) find(id string) (int, bool) {
	if x.slot != nil {
		i, ok := x.slot[id]
		return i, ok
	}
	for i, s := range x.ids {
		if s == id {
			return i, true
		}
	}
	return 0, false
}

// setSlot records that id is at position i, building the map once ids outgrows smallIndex.
func (x *flatIndex) setSlot(id string, i int) {
	if x.slot == nil && len(x.ids) > smallIndex {
		x.slot = make(map[string]int, 2*len(x.ids))
		for j, s := range x.ids {
			x.slot[s] = j
		}
	}
	if x.slot != nil {
		x.slot[id] = i
	}
}

func (x *flatIndex) add(_ context.Context, id string, vec []float32) error {
	if len(vec) != x.dim {
		return fmt.Errorf("vector has dimension %d, index %d", len(vec), x.dim)
	}
	i, ok := x.find(id)
	if !ok {
		i = len(x.ids)
		x.ids = append(x.ids, id)
		x.setSlot(id, i)
		x.vecs = append(x.vecs, vec...)
		if x.qm != nil {
			x.qhead = append(x.qhead, make([]uint64, x.h)...)
			x.qtail = append(x.qtail, make([]uint64, x.t)...)
			x.qm = append(x.qm, qmeta{})
		} else if len(x.ids) > smallIndex {
			x.qhead = make([]uint64, len(x.ids)*x.h, 2*len(x.ids)*x.h)
			x.qtail = make([]uint64, len(x.ids)*x.t, 2*len(x.ids)*x.t)
			x.qm = make([]qmeta, len(x.ids), 2*len(x.ids))
			for j := range i {
				x.quantize(j, x.vecs[j*x.dim:(j+1)*x.dim])
			}
		}
	}
	copy(x.vecs[i*x.dim:], vec)
	if x.qm != nil {
		x.quantize(i, vec)
	}
	return nil
}

// quantize keeps vector i's quantised form, vec being that vector.
func (x *flatIndex) quantize(i int, vec []float32) {
	var buf [64]uint64 // 512 dimensions
	words := buf[:]
	if nw := x.h + x.t; nw <= len(buf) {
		words = buf[:nw]
	} else {
		words = make([]uint64, nw)
	}
	x.qm[i] = quantize(vec, words)
	copy(x.qhead[i*x.h:(i+1)*x.h], words[:x.h])
	copy(x.qtail[i*x.t:(i+1)*x.t], words[x.h:])
}

func (x *flatIndex) remove(id string) error {
	i, ok := x.find(id)
	if !ok {
		return nil
	}
	last := len(x.ids) - 1
	if i != last {
		x.ids[i] = x.ids[last]
		x.setSlot(x.ids[i], i)
		copy(x.vecs[i*x.dim:(i+1)*x.dim], x.vecs[last*x.dim:])
		if x.qm != nil {
			copy(x.qhead[i*x.h:(i+1)*x.h], x.qhead[last*x.h:])
			copy(x.qtail[i*x.t:(i+1)*x.t], x.qtail[last*x.t:])
			x.qm[i] = x.qm[last]
		}
	}
	x.ids[last] = ""
	x.ids = x.ids[:last]
	x.vecs = x.vecs[:last*x.dim]
	if x.qm != nil {
		x.qhead = x.qhead[:last*x.h]
		x.qtail = x.qtail[:last*x.t]
		x.qm = x.qm[:last]
	}
	if x.slot != nil {
		delete(x.slot, id)
	}
	if cap(x.ids) > 64 && len(x.ids) < cap(x.ids)/4 { // give memory back after mass deletion
		x.ids = append([]string(nil), x.ids...)
		x.vecs = append([]float32(nil), x.vecs...)
		x.qhead = append([]uint64(nil), x.qhead...)
		x.qtail = append([]uint64(nil), x.qtail...)
		x.qm = append([]qmeta{}, x.qm...) // not nil: it stays quantised
	}
	return nil
}

func (x *flatIndex) count() int { return len(x.ids) }

func (x *flatIndex) similarity(_ context.Context, id string, vec []float32) (float32, bool) {
	i, ok := x.find(id)
	if !ok || len(vec) != x.dim {
		return 0, false
	}
	return dotF32(vec, x.vecs[i*x.dim:(i+1)*x.dim]), true
}

// scanChunk is how many vectors are scanned between checks of ctx; a
// multiple of qBlock.
const scanChunk = 4096

// qBlock is how many vectors the scan bounds at a time.
const qBlock = 64

// parallelWork is the size (vectors × dimension) from which a query splits
// its scan over two goroutines. With the quantised pre-scan, splitting
// 100k×384 over the 2 shared cores of the reference machine gained no
// measurable wall time (and cost a little CPU), so only larger partitions
// split.
const parallelWork = 1 << 26

func (x *flatIndex) query(ctx context.Context, vec []float32, k int, threshold float32, out []match) ([]match, error) {
	if len(vec) != x.dim {
		return out, fmt.Errorf("query has dimension %d, index %d", len(vec), x.dim)
	}
	if k <= 0 {
		return out, nil
	}
	n := len(x.ids)
	if workers := min(runtime.GOMAXPROCS(0), 2, n*x.dim/x.split); workers > 1 {
		return x.parallelQuery(ctx, vec, workers, k, threshold, out)
	}
	if x.qm == nil {
		return x.scan(ctx, vec, &qquery{exact: true}, 0, n, k, threshold, out)
	}
	var buf [3 * 64]uint64 // room for 512 dimensions
	qbuf := buf[:]
	if nw := 3 * qwords(x.dim); nw > len(qbuf) {
		qbuf = make([]uint64, nw)
	}
	q := newQQuery(vec, qbuf)
	return x.scan(ctx, vec, &q, 0, n, k, threshold, out)
}

// parallelQuery is query split over workers goroutines, merged in order (so
// ties resolve as in one scan).
func (x *flatIndex) parallelQuery(ctx context.Context, vec []float32, workers, k int, threshold float32, out []match) ([]match, error) {
	n := len(x.ids)
	q := qquery{exact: true}
	if x.qm != nil {
		q = newQQuery(vec, make([]uint64, 3*qwords(x.dim)))
	}
	parts := make([][]match, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			lo, hi := n*w/workers, n*(w+1)/workers
			parts[w], errs[w] = x.scan(ctx, vec, &q, lo, hi, k, threshold, make([]match, 0, k))
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

// Bounding a vector costs about three times what scoring it with dotF32 does (with FMA):
// the pre-scan pays only where it skips most vectors. Once at least preTrial vectors have
// been bounded and more than one in preKeep of them had to be scored anyway (a partition of
// near-identical prompts, all close to the query), a scan scores the rest without bounds.
const (
	preTrial = 256
	preKeep  = 4
)

// scan appends to out the best k matches at or above threshold among
// vectors lo..hi-1, best first. q is vec quantised. A vector is scored
// exactly (dotF32) only if its bounds reach the floor: the threshold, or
// once there are k matches the k-th best similarity (unless the bounds stop
// paying: see preTrial). Any vector skipped would have been rejected by the
// exact test too, so scan returns what an exact scan returns, ties included
// (the earlier vector wins).
func (x *flatIndex) scan(ctx context.Context, vec []float32, q *qquery, lo, hi, k int, threshold float32, out []match) ([]match, error) {
	base := len(out)
	floor := float64(threshold)
	h, t, dim := x.h, x.t, x.dim
	var sums [qBlock]uint64
	var sims [qBlock]float32 // without the pre-scan, a block's scores in one call
	bounded, scored := 0, 0  // by the pre-scan, while it runs
	pre := !q.exact
	for b := lo; b < hi; b += qBlock {
		if (b-lo)%scanChunk == scanChunk-qBlock && ctx.Err() != nil {
			return out[:base], ctx.Err()
		}
		end := min(b+qBlock, hi)
		if pre && bounded >= preTrial && scored*preKeep > bounded {
			pre = false
		}
		if pre {
			dotQBlock(x.qhead[b*h:end*h], h, q.even[:h], q.odd[:h], sums[:end-b])
			bounded += end - b
		} else {
			dotBlock(vec, x.vecs[b*dim:end*dim], sims[:end-b])
		}
		for i := b; i < end; i++ {
			var sim float32
			if !pre {
				sim = sims[i-b]
			} else {
				m := &x.qm[i]
				head := sums[i-b]
				if q.headBound(head, m) < floor {
					continue
				}
				if q.bound(head+dotQ(x.qtail[i*t:(i+1)*t], q.even[h:], q.odd[h:]), m) < floor {
					continue
				}
				scored++
				sim = dotF32(vec, x.vecs[i*dim:(i+1)*dim])
			}
			if sim < threshold {
				continue
			}
			if top := out[base:]; len(top) == k && sim <= top[k-1].sim {
				continue
			}
			out = insertTop(out, base, k, match{x.ids[i], sim})
			if top := out[base:]; len(top) == k {
				floor = max(float64(threshold), float64(top[k-1].sim)) // NaN: skip nothing
			}
		}
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

// dotBlockGeneric is dotBlock in plain Go.
func dotBlockGeneric(q, vecs []float32, out []float32) {
	dim := len(q)
	for i := range out {
		out[i] = dotGeneric(q, vecs[i*dim:(i+1)*dim])
	}
}

// dotGeneric is the dot product of equally long a and b, unrolled by eight with
// independent accumulators: dotF32 where the processor has no FMA (dot_amd64.go).
func dotGeneric(a, b []float32) float32 {
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
