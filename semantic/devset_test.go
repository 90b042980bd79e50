package semantic

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"sort"
	"testing"
)

// devSetPath is the labelled prompt-pair set kept beside the repository
// (DESIGN.md §5); tests that need it skip when it is absent.
const devSetPath = "../../shared/data/semantic-pairs-dev.jsonl"

type devPair struct {
	A, B string
	Same bool
	Kind string
}

func loadDevSet(t testing.TB) []devPair {
	t.Helper()
	f, err := os.Open(devSetPath)
	if err != nil {
		t.Skipf("dev set not available: %v", err)
	}
	defer f.Close()
	var pairs []devPair
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var p devPair
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatalf("dev set line %d: %v", len(pairs)+1, err)
		}
		pairs = append(pairs, p)
	}
	return pairs
}

func dot32(a, b []float32) float32 {
	var s float32
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// TestLocalRetrievesParaphrases checks what the local embedder is for: a
// paraphrase of a stored prompt must be among the few nearest stored prompts
// (the verifier then decides), with every dev-set prompt stored as a
// distractor.
func TestLocalRetrievesParaphrases(t *testing.T) {
	pairs := loadDevSet(t)
	l := newTestLocal(t)
	var stored []string
	for _, p := range pairs {
		stored = append(stored, p.B)
	}
	vecs, err := l.Embed(context.Background(), stored)
	if err != nil {
		t.Fatal(err)
	}
	var same, at1, at4 int
	var pos, neg []float32
	for i, p := range pairs {
		q, err := l.Embed(context.Background(), []string{p.A})
		if err != nil {
			t.Fatal(err)
		}
		own := dot32(q[0], vecs[i])
		if p.Same {
			pos = append(pos, own)
		} else {
			neg = append(neg, own)
			continue
		}
		same++
		better := 0
		for j, v := range vecs {
			if j != i && stored[j] != p.B && dot32(q[0], v) > own {
				better++
			}
		}
		if better == 0 {
			at1++
		}
		if better < 4 {
			at4++
		}
	}
	// AUC: probability that a same pair scores above a different pair.
	sort.Slice(neg, func(i, j int) bool { return neg[i] < neg[j] })
	var auc float64
	for _, s := range pos {
		auc += float64(sort.Search(len(neg), func(i int) bool { return neg[i] >= s }))
	}
	auc /= float64(len(pos) * len(neg))
	r1, r4 := float64(at1)/float64(same), float64(at4)/float64(same)
	t.Logf("%d paraphrase pairs: recall@1 %.3f, recall@4 %.3f; pair AUC %.3f", same, r1, r4, auc)
	var tp, fp int
	for _, s := range pos {
		if s >= DefaultThreshold {
			tp++
		}
	}
	for _, s := range neg {
		if s >= DefaultThreshold {
			fp++
		}
	}
	t.Logf("cosine alone at %.2f: %d of %d same pairs and %d of %d different pairs pass (a Verifier must decide)",
		DefaultThreshold, tp, len(pos), fp, len(neg))
	for _, th := range []float32{0.5, 0.6, 0.7, 0.8} {
		n := 0
		for _, s := range pos {
			if s >= th {
				n++
			}
		}
		t.Logf("same pairs at cosine >= %.1f: %d of %d", th, n, len(pos))
	}
	if r4 < 0.9 {
		t.Errorf("recall@4 = %.3f, want >= 0.9", r4)
	}
}
