package semantic

import (
	"context"
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

func TestFlatIndexMatchesBruteForce(t *testing.T) {
	tests := []struct {
		name      string
		n, dim, k int
		threshold float32
	}{
		{"small", 50, 8, 4, -1},
		{"threshold cuts", 500, 16, 10, 0.3},
		{"k above count", 3, 4, 8, -1},
		{"parallel scan", 3000, 384, 5, -1}, // n*dim above parallelWork
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, uint64(tt.n)))
			x := newIndex(IndexFlat, tt.dim)
			ref := map[string][]float32{}
			vecs := randomVecs(tt.n+1, tt.dim)
			for i, v := range vecs[:tt.n] {
				id := strconv.Itoa(i)
				if err := x.add(context.Background(), id, v); err != nil {
					t.Fatal(err)
				}
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
					v := make([]float32, tt.dim)
					for j := range v {
						v[j] = float32(r.NormFloat64())
					}
					normalize(v)
					x.add(context.Background(), id, v)
					ref[id] = v
				}
			}
			if x.count() != len(ref) {
				t.Fatalf("count = %d, want %d", x.count(), len(ref))
			}
			q := vecs[tt.n]
			got, err := x.query(context.Background(), q, tt.k, tt.threshold, nil)
			if err != nil {
				t.Fatal(err)
			}
			if want := bruteTop(ref, q, tt.k, tt.threshold); !slices.Equal(got, want) {
				t.Errorf("query = %v\nwant    %v", got, want)
			}
		})
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
