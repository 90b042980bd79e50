package semantic_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/zest-proxy/zest/semantic"
	"github.com/zest-proxy/zest/semantic/verify"
)

type labelledPair struct {
	A, B string
	Same bool
	Kind string
}

func loadPairs(t *testing.T) []labelledPair {
	t.Helper()
	f, err := os.Open("../../shared/data/semantic-pairs-dev.jsonl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the labelled pairs must be beside the repository in CI: %v", err)
		}
		t.Skipf("labelled pairs not available: %v", err)
	}
	defer f.Close()
	var out []labelledPair
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var p labelledPair
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// newQualityCache is the semantic cache exactly as zest builds it by default: the shipped
// local embedder, the WordNet verifier, the tuned threshold.
func newQualityCache(t *testing.T) *semantic.Cache {
	t.Helper()
	emb, err := semantic.NewLocal()
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := semantic.New(semantic.Options{Embedder: emb, Verifier: v, Threshold: semantic.LocalThreshold,
		EmbedTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestQualityOnLabelledPairs stores each pair's first prompt and asks with the second, through
// the real local embedder and guard rails at the default threshold. A wrong answer served costs
// more than a miss: precision must be at least 0.98. Precision and recall are printed.
func TestQualityOnLabelledPairs(t *testing.T) {
	pairs := loadPairs(t)
	c := newQualityCache(t)
	ctx := context.Background()
	var tp, fp, fn, tn int
	byKind := map[string][2]int{} // kind → {served, total}
	for i, p := range pairs {
		q := semantic.Query{Namespace: "t", Partition: fmt.Sprint(i), Prompt: p.A}
		if err := c.Store(ctx, q, fmt.Sprint("id", i), []byte("answer"), time.Hour); err != nil {
			t.Fatal(err)
		}
		q.Prompt = p.B
		_, hit, err := c.Lookup(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		k := byKind[p.Kind]
		k[1]++
		if hit {
			k[0]++
		}
		byKind[p.Kind] = k
		switch {
		case hit && p.Same:
			tp++
		case hit && !p.Same:
			fp++
			t.Logf("WRONG ANSWER SERVED: %q for %q (%s)", p.A, p.B, p.Kind)
		case !hit && p.Same:
			fn++
		default:
			tn++
		}
	}
	precision := float64(tp) / float64(max(tp+fp, 1))
	recall := float64(tp) / float64(max(tp+fn, 1))
	t.Logf("threshold %.2f: precision %.3f, recall %.3f (tp %d, fp %d, fn %d, tn %d)",
		semantic.LocalThreshold, precision, recall, tp, fp, fn, tn)
	kinds := make([]string, 0, len(byKind))
	for k := range byKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		t.Logf("  %-24s served %d of %d", k, byKind[k][0], byKind[k][1])
	}
	if precision < 0.98 {
		t.Errorf("precision %.3f < 0.98: the semantic cache serves wrong answers", precision)
	}
	if tp == 0 {
		t.Error("no paraphrase was served: the semantic cache does nothing")
	}
}

// TestQualityInACrowd stores every pair's first prompt in ONE partition and asks with each
// second prompt: a hit on any prompt but the pair's own same-meaning one is a wrong answer.
func TestQualityInACrowd(t *testing.T) {
	pairs := loadPairs(t)
	c := newQualityCache(t)
	ctx := context.Background()
	q := semantic.Query{Namespace: "t", Partition: "all"}
	for i, p := range pairs {
		q.Prompt = p.A
		if err := c.Store(ctx, q, fmt.Sprint(i), []byte(fmt.Sprint(i)), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	var right, wrong int
	for i, p := range pairs {
		q.Prompt = p.B
		hit, ok, err := c.Lookup(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			continue
		}
		if string(hit.Value) == fmt.Sprint(i) && p.Same {
			right++
			continue
		}
		wrong++
		t.Logf("served %q for %q", hit.Prompt, p.B)
	}
	t.Logf("crowd of %d: %d right hits, %d wrong", len(pairs), right, wrong)
	if served := right + wrong; served > 0 && float64(right)/float64(served) < 0.98 {
		t.Errorf("precision in a crowd %.3f < 0.98", float64(right)/float64(served))
	}
}
