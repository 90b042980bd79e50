package semantic

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"testing"
)

// bruteTop is the reference: every vector's similarity, sorted.
func bruteTop(vecs map[string][]float32, q []float32, k int, threshold float32) []match {
	var all []match
	for id, v := range vecs {
		if s := dotF32(q, v); s >= threshold {
			all = append(all, match{id, s})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].sim > all[j].sim })
	return all[:min(k, len(all))]
}

// exactScan is the plain float32 scan the quantised one must reproduce
// exactly: every vector in index order, ties won by the earlier one.
func exactScan(x *flatIndex, q []float32, k int, threshold float32) []match {
	var out []match
	for i, id := range x.ids {
		sim := dotF32(q, x.vecs[i*x.dim:(i+1)*x.dim])
		if sim >= threshold {
			out = insertTop(out, 0, k, match{id, sim})
		}
	}
	return out
}

// clustered returns n unit vectors around centre c, each at a random noise
// level up to spread, so similarities to c fall on both sides of typical
// thresholds.
func clustered(r *rand.Rand, c []float32, n int, spread float64) [][]float32 {
	out := make([][]float32, n)
	for i := range out {
		s := spread * r.Float64()
		v := make([]float32, len(c))
		for j := range v {
			v[j] = c[j] + float32(s*r.NormFloat64()/math.Sqrt(float64(len(c))))
		}
		normalize(v)
		out[i] = v
	}
	return out
}

func TestFlatIndexMatchesBruteForce(t *testing.T) {
	tests := []struct {
		name      string
		n, dim, k int
		threshold float32
		spread    float64 // 0: uniform random vectors; else clustered around the query
		dups      int     // this many extra ids reuse earlier vectors (exact ties)
		parallel  bool    // force the split scan
	}{
		{name: "small", n: 50, dim: 8, k: 4, threshold: -1},
		{name: "threshold cuts", n: 500, dim: 16, k: 10, threshold: 0.3},
		{name: "k above count", n: 3, dim: 4, k: 8, threshold: -1},
		{name: "stays small (exact scores, no id map)", n: 12, dim: 100, k: 4, threshold: 0.5, spread: 2, dups: 3},
		{name: "small parallel", n: 10, dim: 16, k: 3, threshold: -1, parallel: true},
		{name: "dim not multiple of 8", n: 300, dim: 13, k: 5, threshold: 0.2},
		{name: "clustered 0.92", n: 2000, dim: 100, k: 4, threshold: 0.92, spread: 2},
		{name: "clustered 0.99 k1", n: 2000, dim: 100, k: 1, threshold: 0.99, spread: 0.5},
		{name: "clustered many above", n: 2000, dim: 384, k: 10, threshold: 0.5, spread: 3},
		{name: "clustered few above", n: 1000, dim: 384, k: 8, threshold: 0.999, spread: 3},
		{name: "ties", n: 200, dim: 100, k: 5, threshold: 0.8, spread: 2, dups: 300},
		{name: "ties k1", n: 100, dim: 24, k: 1, threshold: -1, spread: 2, dups: 200},
		{name: "parallel scan", n: 3000, dim: 384, k: 5, threshold: -1, parallel: true},
		{name: "parallel clustered ties", n: 3000, dim: 100, k: 4, threshold: 0.9, spread: 2, dups: 500, parallel: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			r := rand.New(rand.NewPCG(7, uint64(tt.n)))
			x := newFlatIndex(tt.dim)
			if tt.parallel {
				x.split = 1
			}
			ref := map[string][]float32{}
			vecs := randomVecs(tt.n+1, tt.dim)
			q := vecs[tt.n]
			if tt.spread > 0 {
				vecs = clustered(r, q, tt.n, tt.spread)
			}
			fresh := func() []float32 {
				if tt.spread > 0 {
					return clustered(r, q, 1, tt.spread)[0]
				}
				v := make([]float32, tt.dim)
				for j := range v {
					v[j] = float32(r.NormFloat64())
				}
				normalize(v)
				return v
			}
			for i, v := range vecs[:tt.n] {
				id := strconv.Itoa(i)
				if err := x.add(ctx, id, v); err != nil {
					t.Fatal(err)
				}
				ref[id] = v
			}
			for i := range tt.dups {
				id := "dup" + strconv.Itoa(i)
				v := vecs[r.IntN(tt.n)]
				x.add(ctx, id, v)
				ref[id] = v
			}
			// Remove a random third, re-add some with new vectors.
			for i := range tt.n {
				id := strconv.Itoa(i)
				switch r.IntN(3) {
				case 0:
					x.remove(id)
					delete(ref, id)
				case 1:
					v := fresh()
					x.add(ctx, id, v)
					ref[id] = v
				}
			}
			if x.count() != len(ref) {
				t.Fatalf("count = %d, want %d", x.count(), len(ref))
			}
			// Exact: same ids, similarities and order as the plain scan.
			thresholds := []float32{tt.threshold}
			if want := bruteTop(ref, q, tt.k, tt.threshold); len(want) > 0 {
				thresholds = append(thresholds, want[len(want)-1].sim) // a threshold equal to a similarity
			}
			for _, th := range thresholds {
				got, err := x.query(ctx, q, tt.k, th, nil)
				if err != nil {
					t.Fatal(err)
				}
				if want := exactScan(x, q, tt.k, th); !slices.Equal(got, want) {
					t.Errorf("threshold %v: query = %v\nexact scan %v", th, got, want)
				}
				// And the same similarities as brute force (ids may differ among ties).
				want := bruteTop(ref, q, tt.k, th)
				if len(got) != len(want) {
					t.Fatalf("threshold %v: %d matches, brute force %d", th, len(got), len(want))
				}
				for i := range got {
					if got[i].sim != want[i].sim || dotF32(q, ref[got[i].id]) != got[i].sim {
						t.Errorf("threshold %v: match %d = %v, brute force %v", th, i, got[i], want[i])
					}
				}
			}
		})
	}
}

func TestFlatIndexAppendsAfterExistingMatches(t *testing.T) {
	x := newFlatIndex(8)
	vecs := randomVecs(20, 8)
	for i, v := range vecs {
		x.add(context.Background(), strconv.Itoa(i), v)
	}
	prefix := []match{{"keep", 2}}
	got, err := x.query(context.Background(), vecs[3], 3, -1, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || got[0] != prefix[0] || got[1].id != "3" {
		t.Errorf("query = %v, want the prefix then 3 matches led by id 3", got)
	}
}

// TestQuantBoundHolds checks the bounds the scan skips by against dotF32 on
// vectors chosen to stress quantisation: spiky, tiny, long, zero, and not
// finite (which must never be skipped).
func TestQuantBoundHolds(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const dim = 100
	var vecs [][]float32
	vecs = append(vecs, randomVecs(200, dim)...)
	vecs = append(vecs, clustered(r, vecs[0], 200, 0.2)...)
	spiky := make([]float32, dim)
	spiky[5], spiky[50] = 1, 1e-3
	tiny := make([]float32, dim)
	long := make([]float32, dim)
	uneven := make([]float32, dim)
	for j := range dim {
		tiny[j] = float32(r.NormFloat64()) * 1e-30
		long[j] = float32(r.NormFloat64()) * 1e6
		uneven[j] = float32(math.Pow(r.Float64(), 8))
	}
	zero := make([]float32, dim)
	nan := slices.Clone(vecs[1])
	nan[7] = float32(math.NaN())
	inf := slices.Clone(vecs[2])
	inf[9] = float32(math.Inf(-1))
	huge := slices.Clone(vecs[3])
	huge[0] = 1e30
	vecs = append(vecs, spiky, tiny, long, uneven, zero, nan, inf, huge, vecs[0])
	notFinite := map[int]bool{len(vecs) - 4: true, len(vecs) - 3: true, len(vecs) - 2: true}

	x := newFlatIndex(dim)
	for i, v := range vecs {
		x.add(context.Background(), strconv.Itoa(i), v)
	}
	buf := make([]uint64, 3*qwords(dim))
	for qi, qv := range vecs {
		q := newQQuery(qv, buf)
		if q.exact != (notFinite[qi]) {
			t.Fatalf("query %d: exact = %v", qi, q.exact)
		}
		if q.exact {
			continue
		}
		for i, v := range vecs {
			sim := dotF32(qv, v)
			m := &x.qm[i]
			head := dotQ(x.qhead[i*x.h:(i+1)*x.h], q.even[:x.h], q.odd[:x.h])
			full := q.bound(head+dotQ(x.qtail[i*x.t:(i+1)*x.t], q.even[x.h:], q.odd[x.h:]), m)
			hb := q.headBound(head, m)
			if notFinite[i] {
				if full < 1e300 || hb < 1e300 { // +Inf or NaN: never below a floor
					t.Errorf("query %d, vector %d (not finite): bounds %v, %v can skip it", qi, i, hb, full)
				}
				continue
			}
			if !(full >= float64(sim)) || !(hb >= full-1e-9) {
				t.Errorf("query %d, vector %d: dotF32 %v, bound %v, head bound %v", qi, i, sim, full, hb)
			}
			if qi < 400 && i < 400 && full-float64(sim) > 0.1 { // unit vectors: the bound is useful
				t.Errorf("query %d, vector %d: bound %v is %v above %v", qi, i, full, full-float64(sim), sim)
			}
		}
	}
}

func TestFlatIndexNonFiniteQueryScansExactly(t *testing.T) {
	x := newFlatIndex(16)
	vecs := randomVecs(100, 16)
	for i, v := range vecs {
		x.add(context.Background(), strconv.Itoa(i), v)
	}
	q := slices.Clone(vecs[0])
	q[3] = float32(math.Inf(1))
	got, err := x.query(context.Background(), q, 4, 0.5, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := exactScan(x, q, 4, 0.5); !slices.Equal(got, want) {
		t.Errorf("query = %v, exact scan %v", got, want)
	}
}

// TestDotQ checks the SWAR integer dot product against a plain one,
// extreme lane values included.
func TestDotQ(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, dim := range []int{1, 8, 13, 100, 384} {
		for trial := range 20 {
			a, b := make([]float32, dim), make([]float32, dim)
			for j := range dim {
				switch trial {
				case 0: // every byte at its maximum
					a[j], b[j] = 1, 1
				case 1:
					a[j], b[j] = -1, -1
				default:
					a[j], b[j] = float32(r.NormFloat64()), float32(r.NormFloat64())
				}
			}
			nw := qwords(dim)
			wa := make([]uint64, nw)
			quantize(a, wa)
			q := newQQuery(b, make([]uint64, 3*nw))
			wb := make([]uint64, nw)
			quantize(b, wb)
			var want uint64
			for j := range 8 * nw {
				want += (wa[j/8] >> (8 * (j % 8)) & 0xFF) * (wb[j/8] >> (8 * (j % 8)) & 0xFF)
			}
			if got := dotQ(wa, q.even, q.odd); got != want {
				t.Errorf("dim %d trial %d: dotQ = %d, want %d", dim, trial, got, want)
			}
		}
	}
}

func TestFlatIndexRejectsWrongDimension(t *testing.T) {
	x := newIndex(IndexFlat, 3)
	if err := x.add(context.Background(), "a", []float32{1, 0}); err == nil {
		t.Error("add accepted a 2-d vector into a 3-d index")
	}
	if _, err := x.query(context.Background(), []float32{1, 0}, 1, 0, nil); err == nil {
		t.Error("query accepted a 2-d vector against a 3-d index")
	}
}

// TestFlatIndexIDsAcrossSmallSize: ids stay findable as an index grows past smallIndex (when
// it starts keeping a map) and shrinks back, with removals swapping the last vector in.
func TestFlatIndexIDsAcrossSmallSize(t *testing.T) {
	vecs := randomVecs(3*smallIndex, 8)
	x := newFlatIndex(8)
	live := map[string]int{}
	check := func(when string) {
		t.Helper()
		if x.count() != len(live) {
			t.Fatalf("%s: count %d, want %d", when, x.count(), len(live))
		}
		for id, v := range live {
			i, ok := x.find(id)
			if !ok || x.ids[i] != id {
				t.Fatalf("%s: %s not found", when, id)
			}
			if got := x.vecs[i*8 : (i+1)*8]; got[0] != vecs[v][0] {
				t.Fatalf("%s: %s holds another vector", when, id)
			}
		}
	}
	for i, v := range vecs {
		id := "id" + strconv.Itoa(i)
		if err := x.add(context.Background(), id, v); err != nil {
			t.Fatal(err)
		}
		live[id] = i
		check("after adding " + strconv.Itoa(i+1))
	}
	for i := 0; i < len(vecs); i += 2 {
		id := "id" + strconv.Itoa(i)
		x.remove(id)
		delete(live, id)
		check("after removing " + id)
	}
	x.add(context.Background(), "id1", vecs[0]) // replaces in place
	live["id1"] = 0
	check("after replacing id1")
}

// BenchmarkQuantize is the quantisation of one stored vector of the local embedder's
// dimension, which every store into a partition of more than smallIndex entries pays.
func BenchmarkQuantize(b *testing.B) {
	v := randomVecs(1, LocalDim)[0]
	w := make([]uint64, qwords(LocalDim))
	b.ReportAllocs()
	for b.Loop() {
		quantize(v, w)
	}
}
