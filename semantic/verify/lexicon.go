package verify

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/zest-proxy/zest/internal/strtab"
)

//go:generate go run ./internal/gen -out lexicon.txt.gz

// lexiconGz is the generated WordNet 3.0 extract (see internal/gen and
// WORDNET-LICENSE). Text format, one record a line:
//
//	L<TAB>lemma<TAB>pos<TAB>synsets<TAB>related<TAB>antonyms
//	X<TAB>inflected form<TAB>lemma
//
// pos is a subset of "nvar"; synsets are "p<rank>:<base36 id>" (rank is the
// sense's WordNet order within that part of speech, 0 = most common), listed
// only for synsets shared by two kept lemmas; related (derivations,
// pertainyms, participles) and antonyms are space-separated lemmas.
//
//go:embed lexicon.txt.gz
var lexiconGz []byte

// loadLexicon decodes lexiconGz once, on first use. The result is immutable
// and shared by every Verifier.
var loadLexicon = sync.OnceValues(func() (*lexicon, error) { return parseLexicon(lexiconGz) })

const (
	posN = 1 << iota
	posV
	posA
	posR
)

// lexEntry is one lemma: its parts of speech and where its lists lie in the lexicon's arrays.
// syn lists synset ids shifted left 8 bits with the sense rank (capped at 255) in the low byte;
// rel (derivations, pertainyms, participles) and ant (antonyms) list lemma ids.
type lexEntry struct {
	pos           uint8
	syn, rel, ant span
}

// span is a list inside one of the lexicon's arrays.
type span struct{ off, n uint32 }

// lexicon is the decoded table: lemma ids, entries and exception forms. It holds no pointer per
// word (see strtab): it is live for the life of the process, and every collection cycle would
// mark its 65,000 lemmas and their lists otherwise.
type lexicon struct {
	words      *strtab.Table // lemma ↔ id
	entries    []lexEntry    // by lemma id
	syns       []uint32      // the entries' syn lists
	refs       []int32       // the entries' rel and ant lists, and the forms' lemmas
	forms      *strtab.Table // WordNet's exception forms (went, children)
	formLemmas []span        // by form id: its lemma ids, in refs
}

func parseLexicon(gz []byte) (*lexicon, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("verify: lexicon: %w", err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	lx := &lexicon{}
	type pending struct {
		id       int32
		rel, ant string
	}
	var (
		names []string
		later []pending
		excs  [][2]string
	)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, "\t")
		switch {
		case f[0] == "L" && len(f) == 6:
			id := int32(len(names))
			names = append(names, f[1])
			e := lexEntry{pos: posMask(f[2]), syn: span{off: uint32(len(lx.syns))}}
			for _, s := range strings.Fields(f[3]) {
				rank, sid, ok := strings.Cut(s[1:], ":")
				r, err1 := strconv.Atoi(rank)
				n, err2 := strconv.ParseUint(sid, 36, 24)
				if !ok || err1 != nil || err2 != nil {
					return nil, fmt.Errorf("verify: lexicon: bad synset %q for %q", s, f[1])
				}
				lx.syns = append(lx.syns, uint32(n)<<8|uint32(min(r, 255)))
			}
			e.syn.n = uint32(len(lx.syns)) - e.syn.off
			lx.entries = append(lx.entries, e)
			if f[4] != "" || f[5] != "" {
				later = append(later, pending{id, f[4], f[5]})
			}
		case f[0] == "X" && len(f) == 3:
			excs = append(excs, [2]string{f[1], f[2]})
		default:
			return nil, fmt.Errorf("verify: lexicon: bad line %q", line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("verify: lexicon: %w", err)
	}
	if lx.words, err = strtab.New(names); err != nil {
		return nil, fmt.Errorf("verify: lexicon: %w", err)
	}
	for _, p := range later {
		lx.entries[p.id].rel = lx.appendIDs(p.rel)
		lx.entries[p.id].ant = lx.appendIDs(p.ant)
	}
	return lx, lx.addForms(excs)
}

// appendIDs appends the ids of the known lemmas among the space-separated words of s to refs
// and returns where they lie.
func (lx *lexicon) appendIDs(s string) span {
	sp := span{off: uint32(len(lx.refs))}
	for _, w := range strings.Fields(s) {
		if id, ok := lx.words.ID(w); ok {
			lx.refs = append(lx.refs, id)
		}
	}
	sp.n = uint32(len(lx.refs)) - sp.off
	return sp
}

// addForms files the exception pairs (form, lemma) whose lemma is known, a form's lemmas in
// the order listed.
func (lx *lexicon) addForms(excs [][2]string) error {
	lemmas := map[string][]int32{}
	var forms []string
	for _, x := range excs {
		if id, ok := lx.words.ID(x[1]); ok {
			if lemmas[x[0]] == nil {
				forms = append(forms, x[0])
			}
			lemmas[x[0]] = append(lemmas[x[0]], id)
		}
	}
	var err error
	if lx.forms, err = strtab.New(forms); err != nil {
		return fmt.Errorf("verify: lexicon: %w", err)
	}
	lx.formLemmas = make([]span, len(forms))
	for i, f := range forms {
		lx.formLemmas[i] = span{off: uint32(len(lx.refs)), n: uint32(len(lemmas[f]))}
		lx.refs = append(lx.refs, lemmas[f]...)
	}
	return nil
}

// name is the lemma with this id.
func (lx *lexicon) name(id int32) string { return lx.words.Name(id) }

// pos is the parts of speech (posN...) of lemma id.
func (lx *lexicon) pos(id int32) uint8 { return lx.entries[id].pos }

// syn, rel and ant are the lists of lemma id (see lexEntry).
func (lx *lexicon) syn(id int32) []uint32 {
	sp := lx.entries[id].syn
	return lx.syns[sp.off : sp.off+sp.n]
}
func (lx *lexicon) rel(id int32) []int32 { return lx.list(lx.entries[id].rel) }
func (lx *lexicon) ant(id int32) []int32 { return lx.list(lx.entries[id].ant) }

func (lx *lexicon) list(sp span) []int32 { return lx.refs[sp.off : sp.off+sp.n : sp.off+sp.n] }

// exc is the lemma ids WordNet's exception list gives for form (nil for none).
func (lx *lexicon) exc(form string) []int32 {
	if i, ok := lx.forms.ID(form); ok {
		return lx.list(lx.formLemmas[i])
	}
	return nil
}

func posMask(s string) uint8 {
	var m uint8
	for _, c := range s {
		switch c {
		case 'n':
			m |= posN
		case 'v':
			m |= posV
		case 'a':
			m |= posA
		case 'r':
			m |= posR
		}
	}
	return m
}

// morphRule is one of WordNet's detachment rules: strip suffix, add repl,
// and accept the result if it is a lemma of part of speech pos.
type morphRule struct {
	suffix, repl string
	pos          uint8
}

var morphRules = [...]morphRule{
	{"s", "", posN}, {"ses", "s", posN}, {"xes", "x", posN}, {"zes", "z", posN},
	{"ches", "ch", posN}, {"shes", "sh", posN}, {"men", "man", posN}, {"ies", "y", posN},
	{"s", "", posV}, {"ies", "y", posV}, {"es", "e", posV}, {"es", "", posV},
	{"ed", "e", posV}, {"ed", "", posV}, {"ing", "e", posV}, {"ing", "", posV},
	{"er", "", posA}, {"est", "", posA}, {"er", "e", posA}, {"est", "e", posA},
}

// rulesByLast lists, for each byte, the morphRules whose suffix ends in it, in morphRules'
// order: a word is tried only against the rules its last byte allows (most words, none).
var rulesByLast = func() (t [256][]morphRule) {
	for _, r := range morphRules {
		c := r.suffix[len(r.suffix)-1]
		t[c] = append(t[c], r)
	}
	return t
}()

// lemmas returns the lemma ids of word (already lowercase): the word itself,
// its exception-list lemmas and every detachment-rule base form, as WordNet's
// morphy does, each once, in that order. It appends to dst and returns nil for an unknown word.
func (lx *lexicon) lemmas(dst []int32, word string) []int32 {
	start := len(dst)
	if id, ok := lx.words.ID(word); ok {
		dst = append(dst, id)
	}
	for _, id := range lx.exc(word) {
		dst = appendNew(dst, start, id)
	}
	if word != "" && len(word) <= 64 {
		var buf [64]byte
		for _, r := range rulesByLast[word[len(word)-1]] {
			if len(word) <= len(r.suffix)+1 || word[len(word)-len(r.suffix):] != r.suffix {
				continue
			}
			b := append(buf[:0], word[:len(word)-len(r.suffix)]...)
			b = append(b, r.repl...)
			if id, ok := lx.words.IDBytes(b); ok && lx.pos(id)&r.pos != 0 {
				dst = appendNew(dst, start, id)
			}
		}
	}
	if len(dst) == start {
		return dst[:start]
	}
	return dst
}

// appendNew appends id to dst unless dst[start:] holds it.
func appendNew(dst []int32, start int, id int32) []int32 {
	if slices.Contains(dst[start:], id) {
		return dst
	}
	return append(dst, id)
}

// exact appends the lemma id of word itself, without inflection: an acronym
// such as "HTTPS" is not the plural of "HTTP".
func (lx *lexicon) exact(dst []int32, word string) []int32 {
	if id, ok := lx.words.ID(word); ok {
		return append(dst, id)
	}
	return dst
}
