package verify

import (
	"slices"
	"strings"
)

// Question-type bits of prompt.wh.
const (
	whPerson = 1 << iota
	whTime
	whPlace
	whCause
)

func whBit(c byte) uint8 {
	switch c {
	case 'p':
		return whPerson
	case 't':
		return whTime
	case 'l':
		return whPlace
	case 'c':
		return whCause
	}
	return 0
}

func whString(m uint8) string {
	var parts []string
	for i, name := range []string{"who", "when", "where", "why"} {
		if m&(1<<i) != 0 {
			parts = append(parts, name)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "+")
}

// cword is one content word (or symbol run) of a prompt.
type cword struct {
	tok    int     // index in prompt.toks
	text   string  // normalised surface form
	lemmas []int32 // lexicon lemmas; nil when the word is not in the lexicon
}

// prompt is a tokenised prompt with what the rules look at.
type prompt struct {
	toks    []token
	content []cword
	contOf  []int16  // token index -> content index, -1 for non-content
	nums    []string // sorted number tokens
	neg     int      // negation cues
	wh      uint8    // question types asked
}

// prepare tokenises s and classifies its tokens.
func (v *Verifier) prepare(s string) prompt {
	p := prompt{toks: dropFillerPhrases(tokenize(s))}
	p.contOf = make([]int16, len(p.toks))
	lemmaBuf := make([]int32, 0, 2*len(p.toks))
	sentHasContent := int16(-1) // last sentence that has a content word
	skip := -1
	for i, t := range p.toks {
		p.contOf[i] = -1
		if i == skip {
			continue
		}
		switch t.kind {
		case tNum:
			p.nums = append(p.nums, t.text)
			continue
		case tNeg:
			p.neg++
			continue
		case tSym:
			p.content = append(p.content, cword{tok: i, text: t.text})
			p.contOf[i] = int16(len(p.content) - 1)
			sentHasContent = t.sent
			continue
		}
		w := t.text
		// A question word asks only in interrogative position, before any
		// content word of its sentence: "rows where x is null" asks no where.
		if asking := sentHasContent != t.sent; asking {
			if c, ok := whClass[w]; ok {
				p.wh |= whBit(c)
			}
			if (w == "what" || w == "which") && i+1 < len(p.toks) {
				next := p.toks[i+1].text
				c, ok := whNouns[next]
				if !ok && w == "what" {
					c, ok = whVerbs[next]
				}
				if ok {
					p.wh |= whBit(c)
					skip = i + 1
				}
			}
		}
		if stopWords[w] || fillerWords[w] {
			continue
		}
		if requestVerbs[w] && sentHasContent != t.sent {
			continue
		}
		start := len(lemmaBuf)
		lemmaBuf = v.lx.lemmas(lemmaBuf, w)
		var lem []int32
		if len(lemmaBuf) > start {
			lem = lemmaBuf[start:len(lemmaBuf):len(lemmaBuf)]
		}
		p.content = append(p.content, cword{tok: i, text: w, lemmas: lem})
		p.contOf[i] = int16(len(p.content) - 1)
		sentHasContent = t.sent
	}
	slices.Sort(p.nums)
	return p
}

// dropFillerPhrases removes politeness formulas (see fillerPhrases) in place.
func dropFillerPhrases(toks []token) []token {
	out := toks[:0]
	for i := 0; i < len(toks); {
		if n := fillerAt(toks, i); n > 0 {
			i += n
			continue
		}
		out = append(out, toks[i])
		i++
	}
	return out
}

func fillerAt(toks []token, i int) int {
	for _, ph := range fillerPhrases {
		if i+len(ph) > len(toks) || toks[i].text != ph[0] || toks[i].quote != 0 {
			continue
		}
		ok := true
		for k, w := range ph {
			if toks[i+k].text != w {
				ok = false
				break
			}
		}
		if ok {
			return len(ph)
		}
	}
	return 0
}
