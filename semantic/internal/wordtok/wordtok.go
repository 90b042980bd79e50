// Package wordtok splits English text into the word tokens used by the local
// word-vector embedder and by its generator, so both agree on what a word is.
//
// A token is a maximal run of letters, digits, combining marks and
// apostrophes, lowercased, with leading and trailing apostrophes trimmed.
// English clitics are split off the way GloVe's (Stanford/PTB) tokeniser
// splits them: "don't" → "do" "n't", "it's" → "it" "'s", "we'll" → "we" "'ll".
// Other inner apostrophes stay inside the word ("o'clock", "o'neill"). The
// typographic apostrophe U+2019 counts as an apostrophe.
package wordtok

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// clitics are the contracted endings split into their own token.
var clitics = [...]string{"'s", "'re", "'ve", "'ll", "'d", "'m"}

// Each calls fn with every token of text in order. The tokens are substrings
// of a lowercased copy of text; fn must not retain them beyond the call if
// the caller cares about memory (they share one backing string).
func Each(text string, fn func(tok string)) {
	if strings.ContainsRune(text, '\u2019') {
		text = strings.ReplaceAll(text, "\u2019", "'")
	}
	text = strings.ToLower(text)
	start := -1
	for i := 0; i < len(text); {
		r, size := rune(text[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(text[i:])
		}
		if isWordRune(r) {
			if start < 0 {
				start = i
			}
		} else if start >= 0 {
			emit(text[start:i], fn)
			start = -1
		}
		i += size
	}
	if start >= 0 {
		emit(text[start:], fn)
	}
}

// Split returns the tokens of text as a slice; see Each.
func Split(text string) []string {
	var out []string
	Each(text, func(tok string) { out = append(out, tok) })
	return out
}

// IsToken reports whether w is one token as Each can produce it (a clitic
// such as "'s" or "n't" included):
// the generator uses it to drop vocabulary entries the tokeniser can never
// look up (punctuation, hyphenated compounds, upper case).
func IsToken(w string) bool {
	toks := Split(w)
	return len(toks) == 1 && toks[0] == w
}

func isWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return asciiWord[r]
	}
	return isWordRuneWide(r)
}

func isWordRuneWide(r rune) bool {
	return r == '\'' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r)
}

// asciiWord is isWordRuneWide of each ASCII byte, looked up without the unicode tables.
var asciiWord = func() (t [utf8.RuneSelf]bool) {
	for c := range t {
		t[c] = isWordRuneWide(rune(c))
	}
	return t
}()

func isClitic(w string) bool {
	for _, c := range clitics {
		if w == c {
			return true
		}
	}
	return false
}

// emit trims apostrophes from w and splits off a clitic.
func emit(w string, fn func(string)) {
	if strings.IndexByte(w, '\'') < 0 {
		fn(w) // most words: nothing to trim or split
		return
	}
	w = strings.TrimRight(w, "'")
	if isClitic(w) { // a detached clitic, as in pre-tokenised "it 's"
		fn(w)
		return
	}
	w = strings.TrimLeft(w, "'")
	if w == "" {
		return
	}
	if !strings.Contains(w, "'") {
		fn(w)
		return
	}
	// A bare clitic ("'s" after trimming cannot occur, but "n't" can).
	if w == "n't" {
		fn(w)
		return
	}
	if len(w) > 3 && strings.HasSuffix(w, "n't") {
		emit(w[:len(w)-3], fn)
		fn(w[len(w)-3:])
		return
	}
	for _, c := range clitics {
		if len(w) > len(c) && strings.HasSuffix(w, c) {
			emit(w[:len(w)-len(c)], fn)
			fn(w[len(w)-len(c):])
			return
		}
	}
	fn(w)
}
