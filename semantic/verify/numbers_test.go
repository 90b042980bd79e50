package verify

import (
	"slices"
	"testing"
)

// numberFree reports whether tokenize(s) gives no number token: what mayHaveNumber's false
// must imply.
func numberFree(s string) bool {
	return !slices.ContainsFunc(tokenize(s), func(t token) bool { return t.kind == tNum })
}

func TestMayHaveNumber(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{"What is a reverse proxy?", false},
		{"Explain caching in two sentences.", true},
		{"TWO reasons, please", true},
		{"Give me 3 reasons", true},
		{"What happened in World War II?", true},
		{"Is Xi a letter?", false},
		{"It's two's turn", true},
		{"He twon't go", true}, // n't after the stem "two"
		{"x''two", true},       // two apostrophes end the word: "two" stands alone
		{"a'two", false},       // one word, atwo
		{"two_sides", true},    // not a number to the tokenizer, but not worth proving
		{"café culture", true}, // not ASCII: the tokenizer decides
		{"don't stop believing", false},
		{"", false},
	} {
		if got := mayHaveNumber(tc.s); got != tc.want {
			t.Errorf("mayHaveNumber(%q) = %v, want %v", tc.s, got, tc.want)
		}
		if !mayHaveNumber(tc.s) && !numberFree(tc.s) {
			t.Errorf("mayHaveNumber(%q) = false, but the tokenizer reads a number", tc.s)
		}
	}
}

// TestMayHaveNumberDevSets: on every prompt of both labelled sets, false is only said of a
// prompt without number tokens, and Signature is unchanged by the shortcut.
func TestMayHaveNumberDevSets(t *testing.T) {
	v := newVerifier(t)
	free := 0
	for _, set := range []string{"semantic-pairs-dev.jsonl", "semantic-pairs-dev2.jsonl"} {
		for _, p := range loadSet(t, set) {
			for _, s := range []string{p.A, p.B} {
				if mayHaveNumber(s) {
					continue
				}
				free++
				if !numberFree(s) {
					t.Errorf("mayHaveNumber(%q) = false, but the tokenizer reads a number", s)
				}
				if sig := v.tokenSignature(s); sig != "" {
					t.Errorf("Signature(%q) = %q without tokenizing, %q with", s, "", sig)
				}
			}
		}
	}
	if free == 0 {
		t.Fatal("no prompt took the shortcut")
	}
	t.Logf("%d prompts took the shortcut", free)
}

// FuzzMayHaveNumber: false is only said of a prompt the tokenizer reads no number in.
func FuzzMayHaveNumber(f *testing.F) {
	for _, s := range []string{"two", "x''two", "He twon't", "World War II", "it's", "a'b'c", "TwO's", "VX", "one two"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !mayHaveNumber(s) && !numberFree(s) {
			t.Fatalf("mayHaveNumber(%q) = false, but the tokenizer reads a number: %v", s, tokenize(s))
		}
	})
}
