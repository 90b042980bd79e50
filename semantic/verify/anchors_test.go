package verify

import (
	"slices"
	"strings"
	"testing"
)

// admitted reports whether a cache reads a stored prompt with these keys and words for a query
// with these anchors and may: always when the prompt is unfiled (nil keys), else when its keys
// meet every group and may accepts its words.
func admitted(anchors [][3]uint64, may func(string) bool, keys []uint64, words string) bool {
	return keys == nil || meetsAll(anchors, keys) && (may == nil || may(words))
}

// meetsAll reports whether keys hold a non-zero key of every group, as a cache checks it.
func meetsAll(anchors [][3]uint64, keys []uint64) bool {
	for _, g := range anchors {
		if !slices.Contains(keys, g[0]) && (g[1] == 0 || !slices.Contains(keys, g[1])) {
			return false
		}
	}
	return true
}

// anchorPairs are accepted pairs in which words the lexicon does not know align each way the
// rules allow: the same word, a plural, a clipped form, a typo one edit away (at the start and
// at the end of the word), a symbol run, and a prompt too long to align word by word.
var anchorPairs = [][2]string{
	{"Write a poem about Zorblax", "Please write a poem about zorblax"},
	{"How do I list the zorbs in python", "how do i list the zorb in python"},
	{"How do I change the nginx config", "How do I change the nginx configuration"},
	{"show the kubectl config", "Show the kubectl configuration"},
	{"how to permanantly delete files", "How to permanently delete files?"},
	{"how to prmanently delete files", "How to permanently delete files?"},
	{"how to ermanently delete files", "How to permanently delete files?"},
	{"how to eprmanently delete files", "How to permanently delete files?"},
	{"What does the quintorax function return", "what does the qiuntorax function return"},
	{"What does the quintorax function return", "what does the xuintorax function return"},
	{"What is a pointer in c++", "Explain what a pointer in C++ is"},
	{"Tell me about the vorpal blade zxq", "tell me about the vorpal blade zxq"},
	{strings.Repeat("alpha beta gamma delta zorblax quintorax ", 12), strings.Repeat("alpha beta gamma delta zorblax quintorax ", 12)},
}

// TestAnchorsFollowSame checks the invariants a cache relies on to read only the entries filed
// under a query's anchors: when Same(a, b), b's keys meet every anchor of a and a's may admits
// b's words, in both modes.
func TestAnchorsFollowSame(t *testing.T) {
	cases := slices.Clone(anchorPairs)
	if devSetPath(t) != "" {
		for _, name := range []string{"semantic-pairs-dev.jsonl", "semantic-pairs-dev2.jsonl"} {
			for _, p := range loadSet(t, name) {
				cases = append(cases, [2]string{p.A, p.B})
			}
		}
	}
	for _, mode := range []Mode{Strict, Guards} {
		v, err := New(Options{Mode: mode})
		if err != nil {
			t.Fatal(err)
		}
		anchored := 0 // accepted inline pairs (one way) with anchors
		for i, c := range cases {
			for _, ab := range [][2]string{c, {c[1], c[0]}} {
				same, anchors, may, keys, words := v.Anchor(ab[0])
				if k, w := v.Keys(ab[0]); !slices.Equal(keys, k) || words != w {
					t.Errorf("%s: Anchor(%q) keys and words differ from Keys", mode, ab[0])
				}
				checkRead(t, v, ab[0], ab[1])
				if (anchors == nil) != (may == nil) {
					t.Errorf("%s: Anchor(%q): anchors %v but may %v", mode, ab[0], anchors != nil, may != nil)
				}
				if !same(ab[1]) {
					continue
				}
				if len(anchors) > 0 && i < len(anchorPairs) {
					anchored++
				}
				if k, w := v.Keys(ab[1]); !admitted(anchors, may, k, w) {
					t.Errorf("%s: Same(%q, %q) but the second's keys %v or words %q refuse it", mode, ab[0], ab[1], k, w)
				}
			}
		}
		// Not anchored: a long prompt (both ways), and "permanently", a word of the lexicon,
		// against its four misspellings.
		if want := 2*len(anchorPairs) - 6; anchored < want {
			t.Errorf("%s: only %d of the inline pairs had anchors, want %d: the invariant was barely checked", mode, anchored, want)
		}
	}
}

// checkRead checks that Read(query) is Signature(query) and Anchor(query), read once: the same
// signature, anchors, keys and words, and the same verdicts of same and may on stored.
func checkRead(t *testing.T, v *Verifier, query, stored string) {
	t.Helper()
	sig, anchor := v.Read(query)
	if want := v.Signature(query); sig != want {
		t.Errorf("Read(%q) signature %q, Signature %q", query, sig, want)
	}
	if anchor == nil {
		if mayHaveNumber(query) {
			t.Errorf("Read(%q) kept no reading of a prompt with a number", query)
		}
		return // Lookup calls Anchor: nothing to compare
	}
	same, anchors, may, keys, words := v.Anchor(query)
	rsame, ranchors, rmay, rkeys, rwords := anchor()
	if !slices.Equal(anchors, ranchors) || !slices.Equal(keys, rkeys) || words != rwords || (may == nil) != (rmay == nil) {
		t.Errorf("Read(%q) anchors %v keys %v words %q; Anchor gives %v %v %q", query, ranchors, rkeys, rwords, anchors, keys, words)
		return
	}
	_, sw := v.Keys(stored)
	if same(stored) != rsame(stored) || may != nil && may(sw) != rmay(sw) {
		t.Errorf("Read(%q) and Anchor judge %q apart", query, stored)
	}
}

// TestAnchorsSeparate: prompts that differ in a word the lexicon does not know do not meet each
// other's anchors, so a cache never reads them; words of the lexicon anchor nothing.
func TestAnchorsSeparate(t *testing.T) {
	v := newVerifier(t)
	for _, c := range [][2]string{
		{"Write a poem about Zorblax", "Write a poem about Quintor"},
		{"What does the quintorax function return", "What does the mintoraq function return"},
		{"Explain the zq flag", "Explain the xq flag"},
	} {
		_, anchors, may, _, _ := v.Anchor(c[0])
		if len(anchors) == 0 {
			t.Fatalf("Anchor(%q): no anchors", c[0])
		}
		k, w := v.Keys(c[1])
		if meetsAll(anchors, k) {
			t.Errorf("%q meets the anchors of %q", c[1], c[0])
		}
		if may(w) {
			t.Errorf("may of %q admits the words of %q", c[0], c[1])
		}
	}
	// Keys shared by chance: the same first 3 letters, another name. may tells them apart.
	_, anchors, may, _, _ := v.Anchor("Write a poem about Zorblax")
	if k, w := v.Keys("Write a poem about zorquint"); !meetsAll(anchors, k) || may(w) {
		t.Errorf("zorquint: meets the anchors of zorblax %v (want true), may %v (want false)", meetsAll(anchors, k), may(w))
	}
	if _, anchors, may, _, _ := v.Anchor("Write a poem about autumn"); anchors != nil || may != nil {
		t.Errorf("known words anchored: %v", anchors)
	}
	long := strings.Repeat("alpha beta gamma delta zorblax quintorax ", 12)
	if _, anchors, may, keys, _ := v.Anchor(long); anchors != nil || may != nil || keys != nil {
		t.Error("a prompt of over 64 content words was anchored or keyed")
	}
	loose, err := New(Options{MinFuzzyLen: 4})
	if err != nil {
		t.Fatal(err)
	}
	if _, anchors, _, keys, _ := loose.Anchor("Write a poem about Zorblax"); anchors != nil || keys != nil {
		t.Error("a verifier with MinFuzzyLen 4, which head and tail keys cannot cover, anchored")
	}
}

// FuzzAnchorsFollowSame makes near-copies of a prompt (one byte changed, inserted, deleted or
// swapped with the next, a word clipped) and checks the anchor invariant on every pair Same
// accepts, and that Read reads each as Signature and Anchor do.
func FuzzAnchorsFollowSame(f *testing.F) {
	for _, c := range anchorPairs {
		f.Add(c[0], uint16(3), byte('x'), uint8(0))
		f.Add(c[1], uint16(17), byte('e'), uint8(3))
	}
	v, err := New(Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, a string, pos uint16, c byte, op uint8) {
		if len(a) == 0 || len(a) > 400 {
			return
		}
		i := int(pos) % len(a)
		var b string
		switch op % 5 {
		case 0:
			b = a[:i] + string(c) + a[i+1:]
		case 1:
			b = a[:i] + string(c) + a[i:]
		case 2:
			b = a[:i] + a[i+1:]
		case 3:
			if i+1 < len(a) {
				b = a[:i] + a[i+1:i+2] + a[i:i+1] + a[i+2:]
			}
		case 4: // clip the word at i to its first 3+ bytes
			j := i
			for j < len(a) && a[j] != ' ' {
				j++
			}
			b = a[:min(i+3, j)] + a[j:]
		}
		for _, ab := range [][2]string{{a, b}, {b, a}} {
			checkRead(t, v, ab[0], ab[1])
			same, anchors, may, _, _ := v.Anchor(ab[0])
			if !same(ab[1]) {
				continue
			}
			if k, w := v.Keys(ab[1]); !admitted(anchors, may, k, w) {
				t.Errorf("Same(%q, %q) but the second's keys %v or words %q refuse it", ab[0], ab[1], k, w)
			}
		}
	})
}
