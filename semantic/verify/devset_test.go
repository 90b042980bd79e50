package verify

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// pair is one labelled line of semantic-pairs-*.jsonl.
type pair struct {
	A    string `json:"a"`
	B    string `json:"b"`
	Same bool   `json:"same"`
	Kind string `json:"kind"`
}

// devSetPath walks up from the package directory looking for
// shared/data/semantic-pairs-dev.jsonl beside (or inside) an ancestor, so it
// finds /work/shared/data when the repo is /work/main, and CI's copy of
// shared/ beside its clone.
func devSetPath(t testing.TB) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		p := filepath.Join(dir, "shared", "data", "semantic-pairs-dev.jsonl")
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

func loadPairs(t testing.TB) []pair { return loadSet(t, "semantic-pairs-dev.jsonl") }

// loadSet reads one labelled set from the directory that holds the dev set.
func loadSet(t testing.TB, file string) []pair {
	path := devSetPath(t)
	if path == "" {
		t.Skip("shared/data/semantic-pairs-dev.jsonl not found beside the repo; skipping the dev-set quality check")
	}
	path = filepath.Join(filepath.Dir(path), file)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var pairs []pair
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var p pair
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		pairs = append(pairs, p)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(pairs) == 0 {
		t.Fatalf("%s: no pairs", path)
	}
	return pairs
}

// score is a confusion count.
type score struct{ tp, fp, tn, fn int }

func (s score) precision() float64 {
	if s.tp+s.fp == 0 {
		return 1
	}
	return float64(s.tp) / float64(s.tp+s.fp)
}

func (s score) recall() float64 {
	if s.tp+s.fn == 0 {
		return 0
	}
	return float64(s.tp) / float64(s.tp+s.fn)
}

func (s *score) add(same, got bool) {
	switch {
	case same && got:
		s.tp++
	case same:
		s.fn++
	case got:
		s.fp++
	default:
		s.tn++
	}
}

// TestDevSetQuality measures the verifier on the labelled dev pairs: a wrong
// answer served (a false accept) is what users notice, so precision must be
// at least 0.98.
func TestDevSetQuality(t *testing.T) {
	pairs := loadPairs(t)
	v, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	var all score
	perKind := map[string]*score{}
	for _, p := range pairs {
		got, why := v.Explain(p.A, p.B)
		all.add(p.Same, got)
		if perKind[p.Kind] == nil {
			perKind[p.Kind] = &score{}
		}
		perKind[p.Kind].add(p.Same, got)
		if got != p.Same && testing.Verbose() {
			t.Logf("%-22s same=%-5v got=%-5v %s\n    a: %s\n    b: %s", p.Kind, p.Same, got, why, p.A, p.B)
		}
	}
	kinds := make([]string, 0, len(perKind))
	for k := range perKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		s := perKind[k]
		t.Logf("kind %-24s accepted %2d/%-2d same, %2d/%-2d different", k, s.tp, s.tp+s.fn, s.fp, s.fp+s.tn)
	}
	t.Logf("dev set: %d pairs, precision %.3f, recall %.3f (tp=%d fp=%d fn=%d tn=%d)",
		len(pairs), all.precision(), all.recall(), all.tp, all.fp, all.fn, all.tn)
	if all.precision() < 0.98 {
		t.Errorf("precision %.3f < 0.98: the cache would serve wrong answers", all.precision())
	}
	if all.recall() < 0.30 {
		t.Errorf("recall %.3f < 0.30: the verifier rejects nearly every paraphrase", all.recall())
	}
}

// TestDevSetCrossValidation is a held-out sanity check. The verifier's only
// tuned number is Options.MaxSenseRank; the word lists are general English.
// In each of 5 folds the rank is chosen on the other 4 folds (most true
// accepts with no false accept, smallest rank on ties) and scored on the
// held-out fold, so a choice that only works because of particular pairs
// shows up as held-out false accepts.
func TestDevSetCrossValidation(t *testing.T) {
	pairs := loadPairs(t)
	ranks := []int{1, 2, 3, 5, 8, 255}
	verifiers := make([]*Verifier, len(ranks))
	// decided[r][i]: verifier r accepts pair i.
	decided := make([][]bool, len(ranks))
	for r, rank := range ranks {
		v, err := New(Options{MaxSenseRank: rank})
		if err != nil {
			t.Fatal(err)
		}
		verifiers[r] = v
		decided[r] = make([]bool, len(pairs))
		for i, p := range pairs {
			decided[r][i] = v.Same(p.A, p.B)
		}
	}
	const folds = 5
	var held score
	for k := 0; k < folds; k++ {
		best, bestTP := -1, -1
		for r := range ranks {
			var train score
			for i, p := range pairs {
				if i%folds != k {
					train.add(p.Same, decided[r][i])
				}
			}
			if train.fp == 0 && train.tp > bestTP {
				best, bestTP = r, train.tp
			}
		}
		if best < 0 {
			t.Fatalf("fold %d: every rank serves a wrong answer on the training folds", k)
		}
		var test score
		for i, p := range pairs {
			if i%folds == k {
				test.add(p.Same, decided[best][i])
			}
		}
		held.tp, held.fp, held.fn, held.tn = held.tp+test.tp, held.fp+test.fp, held.fn+test.fn, held.tn+test.tn
		t.Logf("fold %d: chose MaxSenseRank=%d, held-out precision %.3f recall %.3f (tp=%d fp=%d)",
			k, ranks[best], test.precision(), test.recall(), test.tp, test.fp)
	}
	t.Logf("held-out total: precision %.3f recall %.3f", held.precision(), held.recall())
	if held.precision() < 0.98 {
		t.Errorf("held-out precision %.3f < 0.98", held.precision())
	}
}

// TestSenseRankTransfer tunes the verifier's one numeric knob, Options.MaxSenseRank, on one
// shared set (most paraphrases served with no wrong answer, the smaller rank on ties) and
// scores the choice on the other, in both directions, so the README can say how a tuned choice
// carries over.
func TestSenseRankTransfer(t *testing.T) {
	sets := []string{"semantic-pairs-dev.jsonl", "semantic-pairs-dev2.jsonl"}
	pairs := [][]pair{loadSet(t, sets[0]), loadSet(t, sets[1])}
	ranks := []int{1, 2, 3, 5, 8, 255}
	scores := make([][2]score, len(ranks)) // per rank, per set
	for r, rank := range ranks {
		v, err := New(Options{MaxSenseRank: rank})
		if err != nil {
			t.Fatal(err)
		}
		for s := range sets {
			for _, p := range pairs[s] {
				scores[r][s].add(p.Same, v.Same(p.A, p.B))
			}
		}
	}
	for tune := range sets {
		test := 1 - tune
		best := -1
		for r := range ranks {
			if sc := scores[r][tune]; sc.fp == 0 && (best < 0 || sc.tp > scores[best][tune].tp) {
				best = r
			}
		}
		if best < 0 {
			t.Errorf("tuned on %s: every rank serves a wrong answer", sets[tune])
			continue
		}
		in, out := scores[best][tune], scores[best][test]
		t.Logf("tuned on %s: MaxSenseRank=%d, in-sample precision %.3f recall %.3f; on %s precision %.3f recall %.3f (%d wrong)",
			sets[tune], ranks[best], in.precision(), in.recall(), sets[test], out.precision(), out.recall(), out.fp)
		if out.precision() < 0.99 {
			t.Errorf("tuned on %s, precision on %s is %.3f < 0.99", sets[tune], sets[test], out.precision())
		}
	}
}
