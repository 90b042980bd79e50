package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// sense is one meaning of a lemma: its synset key ("n01234567") and its rank
// among the lemma's senses of that part of speech (0 = most frequent).
type sense struct {
	synset string
	rank   int
}

// wordNet holds what the generator needs from the WordNet 3.0 dict files.
type wordNet struct {
	senses map[string][]sense         // lemma -> senses, POS order n v a r
	rel    map[string]map[string]bool // derivations, pertainyms, participles (symmetric)
	ant    map[string]map[string]bool // antonyms (symmetric)
	exc    map[string]map[string]bool // inflected form -> lemmas
	words  map[string][]string        // synset key -> member lemmas
}

var posFiles = []struct {
	name string
	pos  byte
}{{"noun", 'n'}, {"verb", 'v'}, {"adj", 'a'}, {"adv", 'r'}}

func loadWordNet(dir string) (*wordNet, error) {
	wn := &wordNet{
		senses: map[string][]sense{},
		rel:    map[string]map[string]bool{},
		ant:    map[string]map[string]bool{},
		exc:    map[string]map[string]bool{},
		words:  map[string][]string{},
	}
	type ptr struct{ sym, from, to string }
	var ptrs []ptr
	for _, pf := range posFiles {
		if err := eachLine(filepath.Join(dir, "data."+pf.name), func(line string) error {
			key, words, ps, err := parseData(line, pf.pos)
			if err != nil || key == "" {
				return err
			}
			wn.words[key] = words
			for _, p := range ps {
				ptrs = append(ptrs, ptr{p.sym, key + "#" + p.src, p.target + "#" + p.dst})
			}
			return nil
		}); err != nil {
			return nil, err
		}
		if err := eachLine(filepath.Join(dir, "index."+pf.name), func(line string) error {
			lemma, offs, err := parseIndex(line)
			if err != nil || lemma == "" {
				return err
			}
			for i, o := range offs {
				wn.senses[lemma] = append(wn.senses[lemma], sense{synset: string(pf.pos) + o, rank: i})
			}
			return nil
		}); err != nil {
			return nil, err
		}
		if err := eachLine(filepath.Join(dir, pf.name+".exc"), func(line string) error {
			f := strings.Fields(line)
			for _, l := range f[1:] {
				addPair(wn.exc, strings.ToLower(f[0]), strings.ToLower(l), false)
			}
			return nil
		}); err != nil {
			return nil, err
		}
	}
	for _, p := range ptrs {
		from, to := wn.member(p.from), wn.member(p.to)
		if from == "" || to == "" || from == to {
			continue
		}
		switch p.sym {
		case "+", "\\", "<":
			addPair(wn.rel, from, to, true)
		case "!":
			addPair(wn.ant, from, to, true)
		}
	}
	return wn, nil
}

// member resolves "synsetkey#n" (n is the 1-based word number, hex) to a lemma.
func (wn *wordNet) member(ref string) string {
	key, num, _ := strings.Cut(ref, "#")
	n, err := strconv.ParseInt(num, 16, 32)
	words := wn.words[key]
	if err != nil || n < 1 || int(n) > len(words) {
		return ""
	}
	return words[n-1]
}

func addPair(m map[string]map[string]bool, a, b string, both bool) {
	if m[a] == nil {
		m[a] = map[string]bool{}
	}
	m[a][b] = true
	if both {
		addPair(m, b, a, false)
	}
}

type dataPtr struct{ sym, target, src, dst string }

// parseData reads one data.* line. Only lexical pointers (source/target word
// numbers not 0000) of the kinds we keep are returned.
func parseData(line string, pos byte) (key string, words []string, ptrs []dataPtr, err error) {
	if strings.HasPrefix(line, "  ") {
		return "", nil, nil, nil // licence header
	}
	body, _, _ := strings.Cut(line, " | ")
	f := strings.Fields(body)
	if len(f) < 4 {
		return "", nil, nil, fmt.Errorf("short data line %q", line)
	}
	key = string(pos) + f[0]
	wc, err := strconv.ParseInt(f[3], 16, 32)
	if err != nil {
		return "", nil, nil, fmt.Errorf("word count in %q: %w", f[0], err)
	}
	i := 4
	for w := 0; w < int(wc); w++ {
		word := strings.ToLower(f[i])
		if j := strings.IndexByte(word, '('); j > 0 {
			word = word[:j] // adjective position marker like "big(a)"
		}
		words = append(words, word)
		i += 2
	}
	pc, err := strconv.Atoi(f[i])
	if err != nil {
		return "", nil, nil, fmt.Errorf("pointer count in %q: %w", f[0], err)
	}
	i++
	for p := 0; p < pc; p++ {
		sym, off, tpos, st := f[i], f[i+1], f[i+2], f[i+3]
		i += 4
		if st == "0000" || (sym != "+" && sym != "\\" && sym != "!" && sym != "<") {
			continue
		}
		if tpos == "s" {
			tpos = "a"
		}
		ptrs = append(ptrs, dataPtr{sym: sym, target: tpos + off, src: st[:2], dst: st[2:]})
	}
	return key, words, ptrs, nil
}

// parseIndex reads one index.* line: the lemma and its synset offsets in sense order.
func parseIndex(line string) (string, []string, error) {
	if strings.HasPrefix(line, "  ") {
		return "", nil, nil
	}
	f := strings.Fields(line)
	if len(f) < 4 {
		return "", nil, fmt.Errorf("short index line %q", line)
	}
	n, err := strconv.Atoi(f[2])
	if err != nil || n > len(f) {
		return "", nil, fmt.Errorf("synset count in %q", line)
	}
	return strings.ToLower(f[0]), f[len(f)-n:], nil
}

func eachLine(path string, fn func(string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open wordnet: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if err := fn(sc.Text()); err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(path), err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	return nil
}
