package verify

import "strings"

// Anchors and keys let a cache skip, without reading them, the stored prompts that Same would
// refuse because they lack a word the query cannot do without. The embedder knows nothing of
// words outside its vocabulary (names, identifiers, product codes), so prompts that differ only
// in such a word embed to one vector, and a cosine search cannot tell them apart.
//
// A word missing from the lexicon (or a symbol run) aligns with another word only if the two
// are equal, equal but for a plural s, one a clipped form of the other (at least 3 letters), or,
// when both are at least MinFuzzyLen long, one edit apart. Each of these keeps the first 3
// bytes the same, except an edit within them, which keeps the last 3 bytes the same once both
// words are at least 7 long. So a stored prompt is keyed by the first 3 bytes of each content
// word (a shorter word whole) and the last 3 of each word of at least 7, and a query's unknown
// word is anchored to its own two such keys: some word of any prompt Same accepts has one.

// Key kinds, hashed in with the bytes so that a prefix never equals a suffix or a whole word.
const (
	keyHead  = 'h' // the first 3 bytes of a word
	keyTail  = 't' // the last 3 bytes of a word at least 7 long
	keyWhole = 'w' // a word shorter than 3 bytes
	keyExact = 'e' // a word the lexicon does not know, but for a plural s
)

// anchorFuzzyMin is the shortest fuzzy length for which head and tail keys cover every match
// one edit away (an adjacent transposition at bytes 1–2 of a 6-byte word changes both).
const anchorFuzzyMin = 7

// Anchor reads query once, as Prepare does. same reports Same(query, stored). anchors lists
// one group of keys per word the query cannot do without, {head, tail, exact} (a zero tail is
// unused): if Same(query, stored), Keys(stored) holds the head or the tail of every group. The
// exact key, which stored prompts with the same word (or its plural) have, only says where the
// likeliest matches are. may is the exact
// form of that test, on the words Keys returns: may(words of stored) is false only when a
// word the query cannot do without has no counterpart there, so Same(query, stored) is false.
// keys and words are Keys(query), for storing the query's own answer. anchors and may are nil
// when the verifier cannot anchor (MinFuzzyLen between 1 and 6) or the query has no such word.
func (v *Verifier) Anchor(query string) (same func(stored string) bool, anchors [][3]uint64, may func(words string) bool, keys []uint64, words string) {
	return v.anchor(v.prepare(query))
}

// Read reads query once for Signature and Anchor: sig is Signature(query), and anchor returns
// what Anchor(query) does, from the tokens the signature needed. anchor is nil when the
// signature needed none (no number in query): Anchor(query) then reads it the one time.
func (v *Verifier) Read(query string) (sig string, anchor func() (same func(stored string) bool, anchors [][3]uint64, may func(words string) bool, keys []uint64, words string)) {
	if !mayHaveNumber(query) {
		return "", nil
	}
	raw, toks := v.read(query)
	return numbers(toks), func() (func(string) bool, [][3]uint64, func(string) bool, []uint64, string) {
		return v.anchor(v.prepareRead(raw, toks))
	}
}

// anchor is Anchor of the prepared query pa.
func (v *Verifier) anchor(pa prompt) (same func(stored string) bool, anchors [][3]uint64, may func(words string) bool, keys []uint64, words string) {
	same = func(stored string) bool {
		pb := v.prepare(stored)
		return v.judge(&pa, &pb) == ""
	}
	anchors = v.anchors(&pa)
	if anchors != nil {
		may = func(words string) bool { return v.may(&pa, words) }
	}
	keys, words = v.keys(&pa)
	return same, anchors, may, keys, words
}

// Keys returns the keys of prompt as a stored prompt (see Anchor), in no particular order and
// possibly repeated, and its content words in the form Anchor's may reads. keys is nil when
// the prompt cannot be filed: the verifier cannot anchor, or the prompt has over 64 content
// words (Same then compares token by token).
func (v *Verifier) Keys(prompt string) (keys []uint64, words string) {
	p := v.prepare(prompt)
	return v.keys(&p)
}

// anchoring reports whether keys cover the fuzzy rule (see anchorFuzzyMin).
func (v *Verifier) anchoring() bool { return v.fuzzyLen <= 0 || v.fuzzyLen >= anchorFuzzyMin }

func (v *Verifier) keys(p *prompt) ([]uint64, string) {
	if !v.anchoring() {
		return nil, ""
	}
	if len(p.content) > maxContent {
		// Same then holds only for identical token texts, which need not make the same content
		// words (sentences and quotes may split differently): not filed, a cache reads it on
		// every lookup.
		return nil, ""
	}
	keys := make([]uint64, 0, 3*len(p.content))
	n := 0
	for _, c := range p.content {
		keys = append(keys, headKey(c.text))
		if len(c.text) >= anchorFuzzyMin {
			keys = append(keys, tailKey(c.text))
		}
		if c.lemmas == nil {
			keys = append(keys, exactKey(c.text))
		}
		n += len(c.text) + 2
	}
	// words: per content word, '+' if the lexicon knows it, '-' if not, the word, and a space
	// (a content word holds no space).
	var b strings.Builder
	b.Grow(n)
	for _, c := range p.content {
		if c.lemmas != nil {
			b.WriteByte('+')
		} else {
			b.WriteByte('-')
		}
		b.WriteString(c.text)
		b.WriteByte(' ')
	}
	return keys, b.String()
}

// known stands for the lemmas of a word read back from words: match only asks whether there
// are any (x, the query's word, has none, so related is never called).
var known = []int32{}

// may reports whether every word of p that anchors (see anchors) matches one of words, as
// align would match it.
func (v *Verifier) may(p *prompt, words string) bool {
	for _, x := range p.content {
		if !anchorWord(x) {
			continue
		}
		found := false
		for rest := words; rest != "" && !found; {
			i := strings.IndexByte(rest, ' ')
			if i < 1 {
				return true // not words Keys made: let Same decide
			}
			y := cword{text: rest[1:i]}
			if rest[0] == '+' {
				y.lemmas = known
			}
			found = v.match(x, y)
			rest = rest[i+1:]
		}
		if !found {
			return false
		}
	}
	return true
}

// anchorWord reports whether x must have a counterpart and can be anchored: a word the lexicon
// does not know, as align requires it (an optional word needs no counterpart, an evaluative one
// may not in a request for a recommendation).
func anchorWord(x cword) bool { return x.lemmas == nil && !x.optional && !evaluative[x.text] }

func (v *Verifier) anchors(p *prompt) [][3]uint64 {
	if !v.anchoring() {
		return nil
	}
	if len(p.content) > maxContent {
		return nil // see keys
	}
	var out [][3]uint64
	for _, c := range p.content {
		if !anchorWord(c) {
			continue
		}
		g := [3]uint64{headKey(c.text), 0, exactKey(c.text)}
		if v.fuzzyLen > 0 && len(c.text) >= anchorFuzzyMin {
			g[1] = tailKey(c.text)
		}
		out = append(out, g)
	}
	return out
}

// headKey is the key of a word's first 3 bytes, or of the whole word when shorter.
func headKey(w string) uint64 {
	if len(w) < 3 {
		return wordKey(keyWhole, w)
	}
	return wordKey(keyHead, w[:3])
}

// tailKey is the key of the last 3 bytes of w, at least anchorFuzzyMin long.
func tailKey(w string) uint64 { return wordKey(keyTail, w[len(w)-3:]) }

// exactKey is the key of w whole, but for a plural s.
func exactKey(w string) uint64 { return wordKey(keyExact, stemPlural(w)) }

// wordKey hashes kind and s (FNV-1a, 64 bits). It is never zero, so zero can mark an unused key.
func wordKey(kind byte, s string) uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	h = (h ^ uint64(kind)) * prime
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * prime
	}
	return h | 1
}
