package verify

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
	"unsafe"
)

// tokKind says what a token is.
type tokKind uint8

const (
	tWord tokKind = iota // letters (possibly with inner dots: node.js)
	tNum                 // digits, normalised: "1,000" -> "1000", "007" -> "7", "2.50" stays
	tSym                 // a run of symbols such as "==", "+", "#"
	tNeg                 // a negation cue: not, n't, no, never, without, non-...
)

// token is one normalised unit of a prompt.
//
// Its fields are ordered so that it takes 24 bytes, not 32: a prompt's tokens are the largest
// allocation of a semantic lookup.
type token struct {
	text string
	kind tokKind
	// name marks a word written with a capital that does not open its sentence
	// ("in Go", "from HTTP"): a name or an acronym.
	name bool
	// acronym marks a word written all in capitals ("HTTPS", "API"): its final
	// S is a letter of the name, not a plural ending.
	acronym bool
	// ask marks the tokens of a sentence that ends with a question mark.
	ask   bool
	quote int16 // 1-based id of the quoted span holding it, 0 outside quotes
	sent  int16 // sentence number (split at . ? ! ; :)
}

// tokenizer holds the scan state of one prompt.
type tokenizer struct {
	s      string
	orig   string // s before lowercasing, "" when lowercasing changed its length
	toks   []token
	quote  int16 // open span id, 0 = none
	nQuote int16
	dquote bool // the open span was opened by a double quote
	sent   int16
}

// tokenize lowercases s and splits it into tokens. Contractions are expanded
// (can't -> can + not), number words become digits ("two" -> "2"; "one" is
// dropped like an article), %, $, °F and friends become words, quoted spans
// are marked. It never fails: any input gives some (possibly empty) slice.
func tokenize(s string) []token {
	t := tokenizer{s: toLower(s), toks: make([]token, 0, 8+len(s)/5)} // about a token per five bytes
	if len(t.s) == len(s) {
		t.orig = s
	}
	t.scan()
	// Chat "how 2 <word>" (and "how2") is "how to": "how 2 say hello". A 2
	// anywhere else stays a number.
	for i := 1; i+1 < len(t.toks); i++ {
		if k := t.toks[i]; k.kind == tNum && k.text == "2" && t.toks[i-1].text == "how" &&
			t.toks[i+1].kind == tWord && t.toks[i+1].sent == k.sent {
			t.toks[i].text, t.toks[i].kind = "to", tWord
		}
	}
	t.joinSlashes()
	t.splitClauses()
	if t.quote != 0 { // unbalanced quote: forget the span
		for i := range t.toks {
			if t.toks[i].quote == t.quote {
				t.toks[i].quote = 0
			}
		}
	}
	return t.toks
}

// toLower is strings.ToLower, with ASCII text (most prompts) lowered in one tight loop: s itself
// when it has no capital, else one new string.
func toLower(s string) string {
	i := 0
	for ; i < len(s) && s[i]-'A' > 'Z'-'A'; i++ {
		if s[i] >= utf8.RuneSelf {
			return strings.ToLower(s) // Unicode casing (no copy either when nothing changes)
		}
	}
	if i == len(s) {
		return s
	}
	b := make([]byte, len(s))
	copy(b, s[:i])
	for ; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return strings.ToLower(s) // Unicode casing
		}
		if c-'A' <= 'Z'-'A' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return unsafe.String(unsafe.SliceData(b), len(b)) // b is never written again
}

// isAlnum reports a letter or a digit; small enough to inline, with a table for ASCII.
func isAlnum(r rune) bool {
	if r < utf8.RuneSelf {
		return asciiAlnum[r]
	}
	return isAlnumWide(r)
}

func isAlnumWide(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

var asciiAlnum = func() (t [utf8.RuneSelf]bool) {
	for c := range t {
		t[c] = isLetter(byte(c)) || isDigit(byte(c))
	}
	return t
}()

// isLetter reports an ASCII letter.
func isLetter(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }

// runeAt decodes the rune at s[i], ASCII without a call.
func runeAt(s string, i int) (r rune, n int) {
	if r, n = rune(s[i]), 1; r >= utf8.RuneSelf {
		r, n = utf8.DecodeRuneInString(s[i:])
	}
	return r, n
}

func (t *tokenizer) at(i int) rune {
	if i < 0 || i >= len(t.s) {
		return ' '
	}
	r, _ := runeAt(t.s, i)
	return r
}

func (t *tokenizer) before(i int) rune {
	if i <= 0 {
		return ' '
	}
	if c := t.s[i-1]; c < utf8.RuneSelf {
		return rune(c)
	}
	r, _ := utf8.DecodeLastRuneInString(t.s[:i])
	return r
}

func (t *tokenizer) scan() {
	s := t.s
	for i := 0; i < len(s); {
		r, n := runeAt(s, i)
		switch {
		case isAlnum(r) || r == '_':
			i = t.word(i)
			continue
		case r == '\'' || r == '‘' || r == '’':
			t.single(i, n)
		case r == '"' || r == '“' || r == '”':
			t.double()
		case r == '.' && isAlnum(t.at(i+1)) && !isAlnum(t.before(i)):
			i = t.word(i) // .gitignore
			continue
		case r == '.' || r == '?' || r == '!' || r == ';' || r == ':':
			if r == '?' {
				for k := len(t.toks) - 1; k >= 0 && t.toks[k].sent == t.sent; k-- {
					t.toks[k].ask = true
				}
			}
			t.sent++
		case r == '%':
			t.emit("percent", tWord)
		case r == '$':
			t.emit("dollar", tWord)
		case r == '€':
			t.emit("euro", tWord)
		case r == '£':
			t.emit("pound", tWord)
		case r == '&':
			t.emit("and", tWord)
		case r == '°':
			t.emit("degree", tWord)
			if c := t.at(i + n); (c == 'f' || c == 'c') && !isAlnum(t.at(i+n+1)) {
				t.emit(map[rune]string{'f': "fahrenheit", 'c': "celsius"}[c], tWord)
				n++
			}
		case unicode.IsSpace(r) || r == ',' || r == '-' || r == '(' || r == ')' ||
			r == '[' || r == ']' || r == '{' || r == '}':
		default:
			j := i + n
			for j < len(s) {
				r2, n2 := utf8.DecodeRuneInString(s[j:])
				if isAlnum(r2) || unicode.IsSpace(r2) || strings.ContainsRune("'\"‘’“”.,?!;:-()[]{}%$&", r2) {
					break
				}
				j += n2
			}
			t.emit(s[i:j], tSym)
			i = j
			continue
		}
		i += n
	}
}

// single handles an apostrophe that is not inside a word: it opens or closes
// a single-quoted span.
func (t *tokenizer) single(i, n int) {
	prev, next := t.before(i), t.at(i+n)
	switch {
	case t.quote == 0 && !isAlnum(prev) && !unicode.IsSpace(next):
		t.nQuote++
		t.quote, t.dquote = t.nQuote, false
	case t.quote != 0 && !t.dquote && !isAlnum(next) && !unicode.IsSpace(prev):
		t.quote = 0
	}
}

func (t *tokenizer) double() {
	if t.quote != 0 && t.dquote {
		t.quote = 0
		return
	}
	if t.quote == 0 {
		t.nQuote++
		t.quote, t.dquote = t.nQuote, true
	}
}

// word reads a run of letters, digits, underscores, inner apostrophes, inner
// dots and digit-group commas starting at i, emits its tokens and returns the
// index after it.
func (t *tokenizer) word(i int) int {
	s := t.s
	j := i
	if s[j] == '.' {
		j++ // leading dot of .gitignore
	}
	for j < len(s) {
		if c := s[j]; c < utf8.RuneSelf && (asciiAlnum[c] || c == '_') {
			j++ // the common case, without the switch
			continue
		}
		r, n := runeAt(s, j)
		switch {
		case isAlnum(r) || r == '_':
		case (r == '.' || r == '\'' || r == '’') && j > i && isAlnum(t.before(j)) && isAlnum(t.at(j+n)):
			if r != '.' && !unicode.IsLetter(t.at(j+n)) {
				return t.finish(i, j)
			}
		case r == ',' && j > i && unicode.IsDigit(t.before(j)) && digits3(s[j+1:]):
		default:
			return t.finish(i, j)
		}
		j += n
	}
	return t.finish(i, j)
}

// digits3 reports whether s starts with exactly three digits (a thousands group).
func digits3(s string) bool {
	return len(s) >= 3 && isDigit(s[0]) && isDigit(s[1]) && isDigit(s[2]) && (len(s) == 3 || !isDigit(s[3]))
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

func (t *tokenizer) finish(i, j int) int {
	w := t.s[i:j]
	plain := isLetters(w) // most words: no apostrophe, dot, digit or wide rune to look for
	if !plain && strings.IndexByte(w, "’"[0]) >= 0 {
		w = strings.ReplaceAll(w, "’", "'")
	}
	first := len(t.toks)
	name := t.orig != "" && first > 0 && t.toks[first-1].sent == t.sent && unicode.IsUpper(t.at0(i)) &&
		w != "i" && !strings.HasPrefix(w, "i'") // the pronoun I is no name
	var acronym bool
	switch {
	case t.orig == "":
	case plain:
		acronym = len(w) >= 2 && upperLetters(t.orig[i:j])
	default:
		acronym = isAcronym(t.orig[i:j])
	}
	if acronym && name {
		if n := roman(t.orig[i:j]); n > 0 { // "World War II", "Henry VIII"
			t.emit(strconv.Itoa(n), tNum)
			return j
		}
	}
	if plain {
		t.wordToken(w) // what splitWord does with a word of letters alone
	} else {
		t.splitWord(w)
	}
	for k := first; k < len(t.toks); k++ {
		t.toks[k].name = name
		t.toks[k].acronym = acronym
	}
	return j
}

// upperLetters reports whether w is ASCII capital letters alone.
func upperLetters(w string) bool {
	for i := 0; i < len(w); i++ {
		if w[i]-'A' > 'Z'-'A' {
			return false
		}
	}
	return true
}

// isAcronym reports whether w has at least two letters, all capitals.
func isAcronym(w string) bool {
	letters := 0
	for _, r := range w {
		if unicode.IsLower(r) {
			return false
		}
		if unicode.IsLetter(r) {
			letters++
		}
	}
	return letters >= 2
}

// at0 is the rune of the original (not lowercased) text at i.
func (t *tokenizer) at0(i int) rune {
	r, _ := utf8.DecodeRuneInString(t.orig[i:])
	return r
}

// splitWord turns one raw run into tokens.
func (t *tokenizer) splitWord(w string) {
	if w == "" {
		return // the stem of a bare "n't"
	}
	if isNumber(w) {
		t.emit(normNumber(w), tNum)
		return
	}
	if k := strings.IndexByte(w, '\''); k > 0 {
		base, suf := w[:k], w[k:]
		switch {
		case suf == "'t" && strings.HasSuffix(base, "n"):
			t.splitWord(negBase(base[:len(base)-1]))
			t.emit("not", tNeg)
			return
		case suf == "'m":
			t.splitWord(base)
			t.emit("am", tWord) // "I'm vegan": the copula tells a trait from a story
			return
		case suf == "'s" || suf == "'re" || suf == "'ve" || suf == "'ll" || suf == "'d":
			t.splitWord(base)
			return
		}
		w = strings.ReplaceAll(w, "'", "")
	}
	if strings.IndexByte(w, '.') >= 0 {
		t.emit(w, tWord) // node.js, arr.length: an identifier, kept whole
		return
	}
	n, ok := wordNorms[w]
	if ok && n.short || !hasDigit(w) {
		t.normToken(w, n, ok) // k8s: not a number
		return
	}
	// Split letter runs from digit runs: ww2 -> ww 2, 3pm -> 3 pm, 1st -> 1st.
	start := 0
	for k := 1; k <= len(w); k++ {
		if k < len(w) && isDigit(w[k]) == isDigit(w[k-1]) {
			continue
		}
		part := w[start:k]
		if isDigit(part[0]) {
			if rest := w[k:]; len(rest) >= 2 && isOrdinal(rest[:2]) && (len(rest) == 2 || isDigit(rest[2])) {
				t.emit(normNumber(part)+rest[:2], tNum)
				k += 2
				start = k
				continue
			}
			t.emit(normNumber(part), tNum)
		} else {
			t.wordToken(part)
		}
		start = k
	}
}

// hasDigit reports whether w has an ASCII digit.
func hasDigit(w string) bool {
	for i := 0; i < len(w); i++ {
		if isDigit(w[i]) {
			return true
		}
	}
	return false
}

func isOrdinal(s string) bool { return s == "st" || s == "nd" || s == "rd" || s == "th" }

// negBase maps the stem before n't to its verb: won -> will, ca -> can.
func negBase(b string) string {
	switch b {
	case "wo":
		return "will"
	case "ca":
		return "can"
	case "sha":
		return "shall"
	}
	return b
}

// wordToken emits one plain word after spelling normalisation.
func (t *tokenizer) wordToken(w string) {
	if !mayNorm(w) {
		t.emit(w, tWord)
		return
	}
	n, ok := wordNorms[w]
	t.normToken(w, n, ok)
}

// normToken emits w as its wordNorms entry n (ok: w has one) says.
func (t *tokenizer) normToken(w string, n wordNorm, ok bool) {
	switch {
	case !ok:
		t.emit(w, tWord)
	case n.expand:
		for _, x := range strings.Fields(n.repl) {
			if negationWords[x] {
				t.emit(x, tNeg)
			} else {
				t.emit(x, tWord)
			}
		}
	case n.num:
		if n.repl != "" {
			t.emit(n.repl, tNum)
		}
	case n.neg:
		t.emit(w, tNeg)
	default:
		t.emit(w, tWord)
	}
}

func (t *tokenizer) emit(text string, k tokKind) {
	t.toks = append(t.toks, token{text: text, kind: k, quote: t.quote, sent: t.sent})
}

func isNumber(w string) bool {
	digits := 0
	for k := 0; k < len(w); k++ {
		switch c := w[k]; {
		case isDigit(c):
			digits++
		case (c == '.' || c == ',') && k > 0 && k < len(w)-1:
		default:
			return false
		}
	}
	return digits > 0
}

// normNumber drops thousands commas and leading zeros: "1,000" -> "1000", "00" -> "0".
func normNumber(w string) string {
	if strings.IndexByte(w, ',') >= 0 {
		w = strings.ReplaceAll(w, ",", "")
	}
	k := 0
	for k < len(w)-1 && w[k] == '0' && isDigit(w[k+1]) {
		k++
	}
	return w[k:]
}

// splitClauses starts a new sentence at "but" before a question ("Sorry to
// bug you again, but how do I ...") and reads chat "y" opening a question
// as "why" ("y is my fan so loud").
func (t *tokenizer) splitClauses() {
	shift := int16(0)
	for i := range t.toks {
		k := &t.toks[i]
		if k.text == "but" && k.quote == 0 && i+1 < len(t.toks) && t.toks[i+1].sent == k.sent &&
			clauseOpeners[t.toks[i+1].text] && i > 0 && t.toks[i-1].sent == k.sent {
			for j := i - 1; j >= 0 && t.toks[j].sent == k.sent+shift; j-- {
				t.toks[j].ask = false // the question is what follows "but"
			}
			shift++
		}
		k.sent += shift
		if k.text == "y" && k.kind == tWord && (i == 0 || t.toks[i-1].sent != k.sent) &&
			i+1 < len(t.toks) && clauseOpeners[t.toks[i+1].text] {
			k.text = "why"
		}
	}
}

// clauseOpeners open a question: question words and the auxiliaries of a yes/no question.
var clauseOpeners = set(`what which who whom whose when where why how is are was were do does did
can could would will should`)

// roman reads a capitalised Roman numeral of two or more letters from II to
// XXXIX ("II", "VIII", "XIV"); 0 for anything else. Single letters ("I",
// "V", "X") are too often words or names to read as numbers.
func roman(w string) int {
	if len(w) < 2 {
		return 0
	}
	val := func(c byte) int {
		switch c {
		case 'I':
			return 1
		case 'V':
			return 5
		case 'X':
			return 10
		}
		return 0
	}
	n := 0
	for k := 0; k < len(w); k++ {
		v := val(w[k])
		if v == 0 {
			return 0
		}
		if k+1 < len(w) && val(w[k+1]) > v {
			n -= v
		} else {
			n += v
		}
	}
	if n <= 1 || n >= 40 || romanString(n) != w {
		return 0 // not canonical: "IIII", "VX"
	}
	return n
}

func romanString(n int) string {
	var b strings.Builder
	for _, p := range []struct {
		v int
		s string
	}{{10, "X"}, {9, "IX"}, {5, "V"}, {4, "IV"}, {1, "I"}} {
		for n >= p.v {
			b.WriteString(p.s)
			n -= p.v
		}
	}
	return b.String()
}

// joinSlashes reads the chat forms "w/" (with), "w/o" (without) and "b/c"
// (because), which the scan splits at the slash.
func (t *tokenizer) joinSlashes() {
	first := 0 // the token before the first slash: none before it changes
	for first+1 < len(t.toks) && (t.toks[first+1].kind != tSym || t.toks[first+1].text != "/") {
		first++
	}
	if first+1 >= len(t.toks) {
		return // no slash, as in most prompts
	}
	out := t.toks[:first]
	for i := first; i < len(t.toks); i++ {
		k := t.toks[i]
		slash := i+1 < len(t.toks) && t.toks[i+1].text == "/" && t.toks[i+1].kind == tSym
		next := ""
		if i+2 < len(t.toks) {
			next = t.toks[i+2].text
		}
		switch {
		case slash && k.text == "with" && next == "o":
			k.text, k.kind = "without", tNeg
			i += 2
		case slash && k.text == "b" && next == "c":
			k.text = "because"
			i += 2
		case slash && k.text == "with":
			i++
		}
		out = append(out, k)
	}
	t.toks = out
}
