package semantic_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zest-proxy/zest/semantic"
	"github.com/zest-proxy/zest/semantic/verify"
)

// sharedData is where the labelled prompt pairs live: ../shared/data beside the repository
// (DESIGN.md §5), seen from this package's directory.
const sharedData = "../../shared/data"

// labelledPair is one line of a semantic-pairs-*.jsonl file.
type labelledPair struct {
	A, B string
	Same bool
	Kind string
}

// qualitySet is one labelled set and what the tests demand of it.
type qualitySet struct {
	file string
	// tuned marks the set the verifier's rules were developed on: every wrong answer there is a
	// bug to fix, so its precision must be 1.
	tuned bool
	// minPrecision and minRecall are floors for the default (strict) verifier, set a little
	// below what was measured so that a change that loses ground fails, while the measurement
	// itself is deterministic (no sampling, no timing).
	minPrecision, minRecall float64
}

// qualitySets are the two shared sets. The rules were tuned on semantic-pairs-dev.jsonl; the
// README reports how they carry over to semantic-pairs-dev2.jsonl and back.
var qualitySets = []qualitySet{
	{file: "semantic-pairs-dev.jsonl", tuned: true, minPrecision: 1, minRecall: 0.58},
	{file: "semantic-pairs-dev2.jsonl", minPrecision: 0.99, minRecall: 0.55},
}

func loadPairs(t *testing.T, file string) []labelledPair {
	t.Helper()
	path := filepath.Join(sharedData, file)
	f, err := os.Open(path)
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
		if len(strings.TrimSpace(sc.Text())) == 0 {
			continue
		}
		var p labelledPair
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatalf("%s line %d: %v", path, len(out)+1, err)
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no pairs", path)
	}
	return out
}

// newQualityCache is the semantic cache as zest builds it with the local embedder: the shipped
// embedder, the WordNet verifier in the given mode, at the given threshold (0 = LocalThreshold).
func newQualityCache(t *testing.T, mode verify.Mode, threshold float32) *semantic.Cache {
	t.Helper()
	emb, err := sharedLocal()
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(verify.Options{Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	if threshold == 0 {
		threshold = semantic.LocalThreshold
	}
	c, err := semantic.New(semantic.Options{Embedder: emb, Verifier: v, Threshold: threshold,
		EmbedTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sharedLocal is one local embedder for every quality cache (it is safe for concurrent use, and
// decoding its table once saves the suite seconds).
var sharedLocal = sync.OnceValues(semantic.NewLocal)

// score is a confusion count; a "positive" is an answer served.
type score struct{ tp, fp, fn, tn int }

func (s *score) add(same, served bool) {
	switch {
	case served && same:
		s.tp++
	case served:
		s.fp++
	case same:
		s.fn++
	default:
		s.tn++
	}
}

func (s score) precision() float64 {
	if s.tp+s.fp == 0 {
		return 1
	}
	return float64(s.tp) / float64(s.tp+s.fp)
}

func (s score) recall() float64 { return float64(s.tp) / float64(max(s.tp+s.fn, 1)) }

// quality is what one pass over a set measured.
type quality struct {
	all    score
	byKind map[string]*score
	wrong  []string // every wrong answer served, described
}

// measure stores each pair's first prompt (one tenant per pair) and asks with the second: a hit
// on a pair labelled different is a wrong answer served.
func measure(t *testing.T, c *semantic.Cache, pairs []labelledPair) quality {
	t.Helper()
	ctx := context.Background()
	q := quality{byKind: map[string]*score{}}
	for i, p := range pairs {
		query := semantic.Query{Namespace: fmt.Sprint("tenant", i), Partition: "p", Prompt: p.A}
		if err := c.Store(ctx, query, fmt.Sprint("id", i), []byte("answer"), time.Hour); err != nil {
			t.Fatal(err)
		}
		query.Prompt = p.B
		hit, served, err := c.Lookup(ctx, query)
		if err != nil {
			t.Fatal(err)
		}
		q.all.add(p.Same, served)
		if q.byKind[p.Kind] == nil {
			q.byKind[p.Kind] = &score{}
		}
		q.byKind[p.Kind].add(p.Same, served)
		if served && !p.Same {
			q.wrong = append(q.wrong, fmt.Sprintf("[%s] similarity %.4f: stored %q, asked %q", p.Kind, hit.Similarity, p.A, p.B))
		}
	}
	return q
}

// report logs the by-kind table and every wrong answer served.
func (q quality) report(t *testing.T, label string) {
	t.Helper()
	kinds := make([]string, 0, len(q.byKind))
	for k := range q.byKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var b strings.Builder
	fmt.Fprintf(&b, "%s: precision %.3f, recall %.3f (served %d of %d same, %d of %d different)\n",
		label, q.all.precision(), q.all.recall(), q.all.tp, q.all.tp+q.all.fn, q.all.fp, q.all.fp+q.all.tn)
	for _, k := range kinds {
		s := q.byKind[k]
		if s.tp+s.fn > 0 {
			fmt.Fprintf(&b, "  %-24s same      served %3d of %3d (recall %.3f)\n", k, s.tp, s.tp+s.fn, s.recall())
		} else {
			fmt.Fprintf(&b, "  %-24s different served %3d of %3d (wrong answers)\n", k, s.fp, s.fp+s.tn)
		}
	}
	for _, w := range q.wrong {
		fmt.Fprintf(&b, "  WRONG ANSWER SERVED %s\n", w)
	}
	t.Log(b.String())
}

// TestQualityOnSharedSets measures the default semantic cache (local embedder, strict verifier,
// default threshold) on both shared sets: precision, recall, the table by kind and every wrong
// answer served. Precision on the tuned set must be 1; on the other set it must stay above the
// floor measured when the rules were written.
func TestQualityOnSharedSets(t *testing.T) {
	for _, set := range qualitySets {
		t.Run(set.file, func(t *testing.T) {
			pairs := loadPairs(t, set.file)
			q := measure(t, newQualityCache(t, verify.Strict, 0), pairs)
			q.report(t, "strict "+set.file)
			if !set.tuned {
				// The second tuning round looked at the even lines of this set only; the odd
				// lines have never been inspected, so they are the out-of-sample figure.
				var halves [2][]labelledPair
				for i, p := range pairs {
					halves[i%2] = append(halves[i%2], p)
				}
				for k, name := range []string{"even lines (inspected in round 2)", "odd lines (never inspected)"} {
					h := measure(t, newQualityCache(t, verify.Strict, 0), halves[k])
					t.Logf("%s %s: precision %.3f, recall %.3f (served %d of %d same, %d of %d different)", set.file, name,
						h.all.precision(), h.all.recall(), h.all.tp, h.all.tp+h.all.fn, h.all.fp, h.all.fp+h.all.tn)
				}
			}
			if set.tuned && q.all.fp > 0 {
				t.Errorf("%d wrong answers served on the set the rules were tuned on", q.all.fp)
			}
			if p := q.all.precision(); p < set.minPrecision {
				t.Errorf("precision %.3f < floor %.3f", p, set.minPrecision)
			}
			if r := q.all.recall(); r < set.minRecall {
				t.Errorf("recall %.3f < floor %.3f", r, set.minRecall)
			}
		})
	}
}

// TestQualityInACrowd stores every pair's first prompt of a set in ONE partition and asks with
// each second prompt: a hit on any prompt but the pair's own same-meaning one is a wrong answer.
func TestQualityInACrowd(t *testing.T) {
	for _, set := range qualitySets {
		t.Run(set.file, func(t *testing.T) {
			pairs := loadPairs(t, set.file)
			c := newQualityCache(t, verify.Strict, 0)
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
				if hit.Prompt == p.B {
					right++ // the set repeats this prompt elsewhere: its own answer
					continue
				}
				wrong++
				t.Logf("WRONG ANSWER SERVED in a crowd: stored %q, asked %q", hit.Prompt, p.B)
			}
			t.Logf("crowd of %d: %d right hits, %d wrong", len(pairs), right, wrong)
			if served := right + wrong; served > 0 {
				if p := float64(right) / float64(served); p < set.minPrecision {
					t.Errorf("precision in a crowd %.3f < floor %.3f", p, set.minPrecision)
				}
			}
		})
	}
}

// TestQualityGuardsMode measures the guards verifier mode (the cosine decides, the hard guards
// may only refuse) with the local embedder at several thresholds. The local embedder is the wrong
// partner for it (its cosine ranks near-misses above paraphrases), so this only documents what
// the guards alone hold back; the mode is meant for embedder = "upstream". Guards accept a
// superset of what strict accepts, so their recall can never be lower.
func TestQualityGuardsMode(t *testing.T) {
	for _, set := range qualitySets {
		t.Run(set.file, func(t *testing.T) {
			pairs := loadPairs(t, set.file)
			strict := measure(t, newQualityCache(t, verify.Strict, 0), pairs)
			for _, th := range []float32{semantic.LocalThreshold, 0.92} {
				q := measure(t, newQualityCache(t, verify.Guards, th), pairs)
				q.report(t, fmt.Sprintf("guards at threshold %.2f %s", th, set.file))
				if th == semantic.LocalThreshold && q.all.tp < strict.all.tp {
					t.Errorf("guards served %d paraphrases, strict %d: guards must accept all strict accepts", q.all.tp, strict.all.tp)
				}
			}
		})
	}
}
