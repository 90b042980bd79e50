package verify

import (
	"fmt"
	"strings"
)

func sameMultiset(a, b []string) bool { // both sorted
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// quotesMatch checks that every quoted span of a occurs, token for token, in
// b. Both are read before filler phrases were dropped: "say 'thank you'"
// quotes what "say thank you" says.
func quotesMatch(a, b *prompt) string {
	for i := 0; i < len(a.raw); {
		q := a.raw[i].quote
		if q == 0 {
			i++
			continue
		}
		j := i
		for j < len(a.raw) && a.raw[j].quote == q {
			j++
		}
		span := a.raw[i:j]
		for len(span) > 1 && articles[span[0].text] {
			span = span[1:] // 'The Starry Night' is quoted by "starry night"
		}
		if !containsSeq(b.raw, span) {
			return fmt.Sprintf("quoted text differs: %q", joinTokens(a.raw[i:j]))
		}
		i = j
	}
	return ""
}

var articles = set(`a an the`)

func containsSeq(hay, needle []token) bool {
outer:
	for i := 0; i+len(needle) <= len(hay); i++ {
		for k := range needle {
			if hay[i+k].text != needle[k].text {
				continue outer
			}
		}
		return true
	}
	return false
}

func joinTokens(ts []token) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = t.text
	}
	return strings.Join(parts, " ")
}

// count is how many times word occurs in p.
func (p *prompt) count(word string) int {
	n := 0
	for _, t := range p.toks {
		if t.text == word {
			n++
		}
	}
	return n
}

// opposed finds an opposite pair split between the prompts: a function-word
// pair (up/down, on/off) whose one side one prompt has more often and whose
// other side the other prompt has more often ("turn on X on my phone" vs
// "turn off X on my phone"), or a WordNet antonym pair, where one prompt has
// only one side and the other only the other side.
func (v *Verifier) opposed(a, b *prompt) string {
	for _, op := range opposites {
		x, y := op[0], op[1]
		ax, ay, bx, by := a.count(x), a.count(y), b.count(x), b.count(y)
		if (ax > bx && by > ay) || (ay > by && bx > ax) {
			return fmt.Sprintf("opposite cues: %s vs %s", x, y)
		}
	}
	for _, x := range a.content {
		for _, y := range b.content {
			if v.antonyms(x.lemmas, y.lemmas) && !(v.hasLemmaOf(b, x) && v.hasLemmaOf(a, y)) {
				return fmt.Sprintf("antonyms: %s vs %s", x.text, y.text)
			}
		}
	}
	return ""
}

func (v *Verifier) antonyms(la, lb []int32) bool {
	for _, x := range la {
		for _, ant := range v.lx.ant(x) {
			for _, y := range lb {
				if ant == y {
					return true
				}
			}
		}
	}
	return false
}

func (v *Verifier) hasLemmaOf(p *prompt, w cword) bool {
	for _, c := range p.content {
		if c.text == w.text || shareLemma(c.lemmas, w.lemmas) {
			return true
		}
	}
	return false
}

func shareLemma(a, b []int32) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

// align checks that every content word of a matches a content word of b and
// returns, per content word of a, the smallest and largest token index in b
// it matches (for the swap check).
func (v *Verifier) align(a, b *prompt) ([][2]int, string) {
	spans := make([][2]int, len(a.content))
	for i, x := range a.content {
		lo, hi, elo, ehi := -1, -1, -1, -1
		for _, y := range b.content {
			if x.role|y.role != roleTask|roleState && v.match(x, y) {
				if lo < 0 {
					lo = y.tok
				}
				hi = y.tok
				if x.text == y.text {
					if elo < 0 {
						elo = y.tok
					}
					ehi = y.tok
				}
			}
		}
		if elo >= 0 { // the same word beats a related one: "http to https"
			lo, hi = elo, ehi
		}
		if lo < 0 {
			spans[i] = [2]int{-1, -1}
			if x.optional || v.guards && x.lemmas != nil && !x.name || b.recommends && evaluative[x.text] {
				continue // in guards mode only unknown words and names need a counterpart
			}
			if x.lemmas == nil {
				return nil, fmt.Sprintf("unknown word without counterpart: %q", x.text)
			}
			if x.name {
				return nil, fmt.Sprintf("name without counterpart: %q", x.text)
			}
			return nil, fmt.Sprintf("word without counterpart: %q", x.text)
		}
		spans[i] = [2]int{lo, hi}
	}
	return spans, ""
}

// match reports whether two content words can stand for each other.
func (v *Verifier) match(x, y cword) bool {
	if x.text == y.text {
		return true
	}
	if x.lemmas != nil && y.lemmas != nil {
		return v.related(x.lemmas, y.lemmas)
	}
	if stemPlural(x.text) == stemPlural(y.text) || abbreviates(x, y) || abbreviates(y, x) {
		return true
	}
	return v.fuzzyLen > 0 && min(len(x.text), len(y.text)) >= v.fuzzyLen && editDistance1(x.text, y.text)
}

// related: same lemma, a shared common sense (synonyms), or a derivation or
// pertainym link.
func (v *Verifier) related(la, lb []int32) bool {
	for _, x := range la {
		for _, y := range lb {
			if x == y {
				return true
			}
			for _, s := range v.lx.syn(x) {
				if s&0xff >= v.maxRank {
					continue
				}
				for _, t := range v.lx.syn(y) {
					if t>>8 == s>>8 && t&0xff < v.maxRank {
						return true
					}
				}
			}
			for _, r := range v.lx.rel(x) {
				if r == y {
					return true
				}
			}
		}
	}
	return false
}

// stemPlural strips a plural s from a word the lexicon does not know.
func stemPlural(w string) string {
	if len(w) > 3 && strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") {
		return w[:len(w)-1]
	}
	return w
}

// abbreviates reports whether x, a word the lexicon does not know, is a
// clipped form of y: "diff" for "difference", "config" for "configuration".
// A plural clipped form stands for the plural word: "dicts" for "dictionaries".
func abbreviates(x, y cword) bool {
	if x.lemmas != nil {
		return false
	}
	w := x.text
	if stemPlural(w) != w && stemPlural(y.text) != y.text {
		w = stemPlural(w)
	}
	return len(w) >= 3 && len(y.text) >= len(w)+3 && strings.HasPrefix(y.text, w) && isLetters(w)
}

func isLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return true
}

// editDistance1 reports whether a and b differ by exactly one insertion,
// deletion, substitution or adjacent transposition.
func editDistance1(a, b string) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	if len(b)-len(a) > 1 || a == b {
		return false
	}
	i := 0
	for i < len(a) && a[i] == b[i] {
		i++
	}
	if len(a) == len(b) {
		if a[i+1:] == b[i+1:] {
			return true
		}
		return i+1 < len(a) && a[i] == b[i+1] && a[i+1] == b[i] && a[i+2:] == b[i+2:]
	}
	return a[i:] == b[i+1:]
}

// swapped finds two content words (or numbers) whose order is reversed
// between the prompts across the same role marker (to, from, into, than,
// when...): "Word to PDF" vs "PDF to Word".
func (v *Verifier) swapped(a, b *prompt, spans [][2]int) string {
	type item struct {
		tok    int
		lo, hi int
		num    bool
	}
	items := make([]item, 0, len(a.content)+len(a.nums))
	for i, c := range a.content {
		if spans[i][0] >= 0 { // an optional word may have no counterpart
			items = append(items, item{c.tok, spans[i][0], spans[i][1], false})
		}
	}
	for i, t := range a.toks {
		if t.kind != tNum {
			continue
		}
		lo, hi := -1, -1
		for k, u := range b.toks {
			if u.kind == tNum && u.text == t.text {
				if lo < 0 {
					lo = k
				}
				hi = k
			}
		}
		items = append(items, item{i, lo, hi, true})
	}
	for _, x := range items {
		for _, y := range items {
			if x.tok >= y.tok || x.lo <= y.hi {
				continue
			}
			// Only words of one sentence hold a relation; sentences may come in any order.
			if a.toks[x.tok].sent != a.toks[y.tok].sent || b.toks[y.hi].sent != b.toks[x.lo].sent {
				continue
			}
			m := v.commonMarker(a, b, x.tok+1, y.tok, y.hi+1, x.lo)
			if m == "" && x.num && y.num {
				m = sharedLink(a.toks[x.tok+1:y.tok], b.toks[y.hi+1:x.lo])
			}
			if m != "" {
				return fmt.Sprintf("roles swapped around %q: %s, %s", m, a.toks[x.tok].text, a.toks[y.tok].text)
			}
		}
	}
	return ""
}

// sharedLink returns a copula that stands between two numbers in both
// prompts: numbers that swap across "is" ("What percentage of 20 is 80")
// swap roles; across "and", or across a moved clause, they do not.
func sharedLink(xs, ys []token) string {
	for _, x := range xs {
		if !copulas[x.text] {
			continue
		}
		for _, y := range ys {
			if y.text == x.text {
				return x.text
			}
		}
	}
	return ""
}

// copulas link a subject to what it is said to be.
var copulas = set(`is are was were be equals equal makes`)

// commonMarker returns the relation word that stands between two words in
// both prompts, a.toks[i:j] and b.toks[k:l]: a role marker (to, from, by,
// of, than...) or a verb both share there, as in "X beat Y". Two words that swap order across it have
// swapped roles; across "and", "or" or a comma they are merely coordinated.
func (v *Verifier) commonMarker(a, b *prompt, i, j, k, l int) string {
	if contentIn(a, i, j) > maxRelationGap || contentIn(b, k, l) > maxRelationGap {
		return "" // too far apart to be the two arguments of one relation
	}
	if hasCoordinator(a.toks[i:j]) && hasCoordinator(b.toks[k:l]) {
		return "" // coordinated: "to fly or to drive" / "to drive or to fly"
	}
	for _, x := range a.toks[i:j] {
		if !directionMarkers[x.text] {
			continue
		}
		for _, y := range b.toks[k:l] {
			if y.text == x.text {
				return x.text
			}
		}
	}
	for p := i; p < j; p++ {
		if a.contOf[p] < 0 {
			continue
		}
		cx := a.content[a.contOf[p]]
		if !v.verb(cx.lemmas) {
			continue
		}
		for q := k; q < l; q++ {
			if b.contOf[q] >= 0 && v.match(cx, b.content[b.contOf[q]]) {
				return cx.text
			}
		}
	}
	return ""
}

// unitsDiffer finds a number followed by content words (its unit) in both
// prompts where the units do not match word for word, as far as the shorter
// unit goes: "150 pounds" vs "150 kilograms", "20 square feet" vs "20 square
// meters" ("5 cups" and "5 cups of flour" agree).
func (v *Verifier) unitsDiffer(a, b *prompt) string {
	for i, t := range a.toks {
		if t.kind != tNum || i+1 >= len(a.toks) || a.contOf[i+1] < 0 {
			continue
		}
		found, matched := false, false
		var ua, ub cword
		for k, u := range b.toks {
			if u.kind != tNum || u.text != t.text || k+1 >= len(b.toks) || b.contOf[k+1] < 0 {
				continue
			}
			found = true
			ok := true
			for d := 1; d <= maxUnitWords && i+d < len(a.toks) && k+d < len(b.toks); d++ {
				ca, cb := a.contOf[i+d], b.contOf[k+d]
				if ca < 0 || cb < 0 {
					break
				}
				if !v.match(a.content[ca], b.content[cb]) {
					ua, ub, ok = a.content[ca], b.content[cb], false
					break
				}
			}
			if ok {
				matched = true
				break
			}
		}
		if found && !matched {
			return fmt.Sprintf("number bound to a different unit: %s %s vs %s %s", t.text, ua.text, t.text, ub.text)
		}
	}
	return ""
}

// maxUnitWords is how many content words after a number unitsDiffer reads as its unit.
const maxUnitWords = 3

// verb reports whether a word can be a verb (any of its lemmas has a verb sense).
func (v *Verifier) verb(lemmas []int32) bool {
	for _, id := range lemmas {
		if v.lx.pos(id)&posV != 0 {
			return true
		}
	}
	return false
}

// maxRelationGap is how many content words may stand between the two
// arguments of a relation, besides the relation word itself ("copy a file
// from my laptop to a remote server").
const maxRelationGap = 4

// contentIn counts the content words among p.toks[i:j].
func contentIn(p *prompt, i, j int) int {
	n := 0
	for k := i; k < j; k++ {
		if p.contOf[k] >= 0 {
			n++
		}
	}
	return n
}

// coordinators join equals: what stands on either side may swap.
var coordinators = set(`and or nor`)

func hasCoordinator(ts []token) bool {
	for _, t := range ts {
		if coordinators[t.text] {
			return true
		}
	}
	return false
}
