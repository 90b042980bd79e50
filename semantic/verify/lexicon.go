package verify

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"sync"
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

// lexEntry is one lemma. syn holds synset ids shifted left 8 bits with the
// sense rank (capped at 255) in the low byte.
type lexEntry struct {
	pos uint8
	syn []uint32
	rel []int32
	ant []int32
}

// lexicon is the decoded table: lemma ids, entries and exception forms.
type lexicon struct {
	ids     map[string]int32
	names   []string
	entries []lexEntry
	exc     map[string][]int32
}

func parseLexicon(gz []byte) (*lexicon, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("verify: lexicon: %w", err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	lx := &lexicon{ids: make(map[string]int32, 1<<16), exc: make(map[string][]int32, 4096)}
	type pending struct {
		id       int32
		rel, ant string
	}
	var later []pending
	var excs [][2]string
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, "\t")
		switch {
		case f[0] == "L" && len(f) == 6:
			id := int32(len(lx.names))
			lx.ids[f[1]] = id
			lx.names = append(lx.names, f[1])
			e := lexEntry{pos: posMask(f[2])}
			for _, s := range strings.Fields(f[3]) {
				rank, sid, ok := strings.Cut(s[1:], ":")
				r, err1 := strconv.Atoi(rank)
				n, err2 := strconv.ParseUint(sid, 36, 24)
				if !ok || err1 != nil || err2 != nil {
					return nil, fmt.Errorf("verify: lexicon: bad synset %q for %q", s, f[1])
				}
				e.syn = append(e.syn, uint32(n)<<8|uint32(min(r, 255)))
			}
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
	for _, p := range later {
		lx.entries[p.id].rel = lx.lookupAll(p.rel)
		lx.entries[p.id].ant = lx.lookupAll(p.ant)
	}
	for _, x := range excs {
		if id, ok := lx.ids[x[1]]; ok {
			lx.exc[x[0]] = append(lx.exc[x[0]], id)
		}
	}
	return lx, nil
}

func (lx *lexicon) lookupAll(s string) []int32 {
	var out []int32
	for _, w := range strings.Fields(s) {
		if id, ok := lx.ids[w]; ok {
			out = append(out, id)
		}
	}
	return out
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

// lemmas returns the lemma ids of word (already lowercase): the word itself,
// its exception-list lemmas and every detachment-rule base form, as WordNet's
// morphy does. It appends to dst and returns nil for an unknown word.
func (lx *lexicon) lemmas(dst []int32, word string) []int32 {
	start := len(dst)
	add := func(id int32) {
		for _, d := range dst[start:] {
			if d == id {
				return
			}
		}
		dst = append(dst, id)
	}
	if id, ok := lx.ids[word]; ok {
		add(id)
	}
	for _, id := range lx.exc[word] {
		add(id)
	}
	var buf [64]byte
	for _, r := range morphRules {
		if len(word) <= len(r.suffix)+1 || len(word) > len(buf) || !strings.HasSuffix(word, r.suffix) {
			continue
		}
		b := append(buf[:0], word[:len(word)-len(r.suffix)]...)
		b = append(b, r.repl...)
		if id, ok := lx.ids[string(b)]; ok && lx.entries[id].pos&r.pos != 0 {
			add(id)
		}
	}
	if len(dst) == start {
		return dst[:start]
	}
	return dst
}

// exact appends the lemma id of word itself, without inflection: an acronym
// such as "HTTPS" is not the plural of "HTTP".
func (lx *lexicon) exact(dst []int32, word string) []int32 {
	if id, ok := lx.ids[word]; ok {
		return append(dst, id)
	}
	return dst
}
