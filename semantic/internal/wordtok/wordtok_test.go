package wordtok

import (
	"slices"
	"strings"
	"testing"
	"unicode"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"Hello, World!", []string{"hello", "world"}},
		{"What does the 'static' keyword mean?", []string{"what", "does", "the", "static", "keyword", "mean"}},
		{"I don't know; it's fine", []string{"i", "do", "n't", "know", "it", "'s", "fine"}},
		{"We’ll see, can't we?", []string{"we", "'ll", "see", "ca", "n't", "we"}},
		{"at 5 o'clock with O'Neill", []string{"at", "5", "o'clock", "with", "o'neill"}},
		{"the students' books", []string{"the", "students", "books"}},
		{"GPT-4o costs $3.50", []string{"gpt", "4o", "costs", "3", "50"}},
		{"Café naïve résumé", []string{"café", "naïve", "résumé"}},
		{"'''", nil},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := Split(tt.in); !slices.Equal(got, tt.want) {
				t.Errorf("Split(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestIsToken(t *testing.T) {
	tests := []struct {
		w    string
		want bool
	}{
		{"python", true},
		{"'s", true},
		{"n't", true},
		{"o'clock", true},
		{"it's", false}, // splits into two tokens
		{"Python", false},
		{"e-mail", false},
		{",", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := IsToken(tt.w); got != tt.want {
			t.Errorf("IsToken(%q) = %v, want %v", tt.w, got, tt.want)
		}
	}
}

func FuzzSplit(f *testing.F) {
	for _, s := range []string{"Hello, World!", "don't", "it's o'clock", "’tis", "a''b", "N'T", "x'S"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		toks := Split(s)
		for _, tok := range toks {
			if tok == "" {
				t.Fatalf("Split(%q) yields an empty token", s)
			}
			if !IsToken(tok) {
				t.Fatalf("Split(%q) yields %q, which IsToken rejects", s, tok)
			}
			for _, r := range tok {
				if r != '\'' && !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.Is(unicode.Mn, r) {
					t.Fatalf("Split(%q) yields %q containing %q", s, tok, r)
				}
			}
		}
		// Tokenising the tokens again changes nothing: the embedder and the
		// generator agree on every word.
		if again := Split(strings.Join(toks, " ")); !slices.Equal(again, toks) {
			t.Fatalf("Split(%q) = %q, but re-splitting gives %q", s, toks, again)
		}
	})
}

// TestASCIITable: the ASCII table says what the unicode classes say, byte by byte.
func TestASCIITable(t *testing.T) {
	for r := rune(0); r < 128; r++ {
		if isWordRune(r) != isWordRuneWide(r) {
			t.Errorf("isWordRune(%q) = %v, the unicode classes say %v", r, isWordRune(r), isWordRuneWide(r))
		}
	}
}
