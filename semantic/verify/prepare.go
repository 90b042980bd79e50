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
	// optional marks a request verb in frame position ("Explain X", "How
	// do I list X"): it needs no counterpart but may be one.
	optional bool
	role     uint8 // roleTask, roleState or 0
	name     bool  // written capitalised inside its sentence: a name or acronym
}

// Roles of a content word. A task ("how do I delete files") never aligns
// with a state ("files that were deleted"): one asks how to do it, the other
// asks about things it was done to.
const (
	roleTask = 1 + iota
	roleState
)

// prompt is a tokenised prompt with what the rules look at.
type prompt struct {
	toks    []token
	raw     []token // toks before filler phrases were dropped; quotes are matched on it
	content []cword
	contOf  []int16  // token index -> content index, -1 for non-content
	nums    []string // sorted number tokens
	neg     int      // negation cues
	wh      uint8    // question types asked
	frame   string   // frame noun of "what command/which method ...", "" if none
	// recommends is set when the prompt asks for a recommendation ("Recommend
	// a book", "suggest a name"): then "a good book" asks the same.
	recommends bool
}

// prepare tokenises s and classifies its tokens.
func (v *Verifier) prepare(s string) prompt { return v.prepareRead(v.read(s)) }

// prepareRead is prepare of the tokens read returned.
func (v *Verifier) prepareRead(raw, toks []token) prompt {
	p := prompt{raw: raw, toks: toks}
	p.contOf = make([]int16, len(p.toks))
	p.content = make([]cword, 0, len(p.toks)) // at most one content word a token: no regrowing
	var cbuf [64]wordClass
	cls := classes(p.toks, cbuf[:0])
	// nextClass is the class of the token after i in its sentence, 0 if none.
	nextClass := func(i int) wordClass {
		if i+1 < len(p.toks) && p.toks[i+1].sent == p.toks[i].sent {
			return cls[i+1]
		}
		return 0
	}
	lemmaBuf := make([]int32, 0, 2*len(p.toks))
	sentHasContent := int16(-1) // last sentence that has a content word
	whatSent := int16(-1)       // last sentence opened by what/which
	taskSent := int16(-1)       // last sentence that asks how to do something
	passiveSent := int16(-1)    // last sentence that asks "how is X done"
	requestSent := int16(-1)    // last sentence with a request verb ("show me X")
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
		w, wc := t.text, cls[i]
		// A question word asks only in interrogative position, before any
		// content word of its sentence: "rows where x is null" asks no where.
		asking := sentHasContent != t.sent
		if wc&cWh != 0 && (asking || nextText(p.toks, i) == "") {
			// A question word asking, or closing a keyword query: "fan so loud, why".
			p.wh |= whBit(whClass[w])
		}
		if asking {
			switch w {
			case "what", "which":
				whatSent = t.sent
				if i+1 < len(p.toks) {
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
			case "how":
				switch next := nextClass(i); {
				case nextText(p.toks, i) == "come": // "how come X" asks why X
					p.wh |= whCause
					skip = i + 1
				case next&cBe != 0:
					passiveSent = t.sent
				case next&cHowDegree == 0:
					taskSent = t.sent
				}
			}
		}
		if wc&cRecommend != 0 {
			p.recommends = true
		}
		if (wc&(cStop|cFiller) != 0 || copula(p.toks, i)) && !letterName(p.toks, i) {
			continue
		}
		// "What command shows X", "What's the process for X": the frame noun
		// names the kind of answer, as "how do I" does.
		if asking && whatSent == t.sent && wc&cFrameNoun != 0 && i+1 < len(p.toks) &&
			cls[i+1]&(cFrameLink|cRequest) != 0 {
			p.frame = stemPlural(w)
			taskSent = t.sent
			continue
		}
		c := cword{tok: i, text: w, name: t.name,
			optional: asking && (wc&cRequest != 0 || w == "check" && nextClass(i)&cCheckObject != 0)}
		start := len(lemmaBuf)
		if t.acronym {
			lemmaBuf = v.lx.exact(lemmaBuf, w)
		} else {
			lemmaBuf = v.lx.lemmas(lemmaBuf, w)
		}
		if len(lemmaBuf) > start {
			c.lemmas = lemmaBuf[start:len(lemmaBuf):len(lemmaBuf)]
		}
		switch {
		case asking && !c.optional && taskSent == t.sent:
			c.role = roleTask
		case passiveSent == t.sent && v.participle(w, c.lemmas):
			c.role = roleTask // "how is X formed" asks how to form X
			passiveSent = -1
		case stateAt(p.toks, cls, i) || (!asking || requestSent == t.sent) && v.participle(w, c.lemmas):
			c.role = roleState
		}
		p.content = append(p.content, c)
		p.contOf[i] = int16(len(p.content) - 1)
		if c.optional {
			taskSent = -1 // "how do I list X": the task is the request
			requestSent = t.sent
		} else {
			sentHasContent = t.sent
		}
	}
	slices.Sort(p.nums)
	return p
}

// nextText is the text of the token after i in the same sentence, or "".
func nextText(toks []token, i int) string {
	if i+1 < len(toks) && toks[i+1].sent == toks[i].sent {
		return toks[i+1].text
	}
	return ""
}

// participle reports whether w is an -ed, -en or -ing form of a verb
// ("deleted", "hidden", "running"): after the first content word of a
// sentence it modifies or describes, as in "list running containers".
func (v *Verifier) participle(w string, lemmas []int32) bool {
	if !strings.HasSuffix(w, "ed") && !strings.HasSuffix(w, "en") && !strings.HasSuffix(w, "ing") {
		return false
	}
	for _, id := range lemmas {
		if v.lx.pos(id)&posV != 0 && v.lx.name(id) != w {
			return true
		}
	}
	return false
}

// stateAt reports whether toks[i] follows a form of "be" (adverbs and
// negation aside): "files that were deleted", "is the port open", "what
// process is listening". Such a word describes a state, not a task to do.
// cls holds the tokens' classes.
func stateAt(toks []token, cls []wordClass, i int) bool {
	for k := i - 1; k >= 0 && toks[k].sent == toks[i].sent; k-- {
		switch {
		case cls[k]&cBe != 0:
			return true
		case toks[k].kind == tNeg || cls[k]&cStateAdverb != 0:
		default:
			return false
		}
	}
	return false
}

// dropFillerPhrases returns toks without politeness formulas (see
// fillerPhrases). It returns toks itself when there are none and never
// modifies it.
func dropFillerPhrases(toks []token) []token {
	var out []token
	for i := 0; i < len(toks); {
		if n := fillerAt(toks, i); n > 0 {
			if out == nil {
				out = append(make([]token, 0, len(toks)), toks[:i]...)
			}
			i += n
			continue
		}
		if out != nil {
			out = append(out, toks[i])
		}
		i++
	}
	if out == nil {
		return toks
	}
	return out
}

func fillerAt(toks []token, i int) int {
	if toks[i].quote != 0 || !mayOpenFiller(toks[i].text) {
		return 0
	}
	for _, ph := range fillersByFirst[toks[i].text] {
		if i+len(ph) > len(toks) {
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

// copula reports whether toks[i] only links a subject to its complement,
// like "is": "serves as" and "acts as" ("Which city serves as the capital?"),
// or "equal to" before "how many/much" ("26.2 miles is equal to how many
// kilometers?").
func copula(toks []token, i int) bool {
	next := func(k int) string {
		if k < len(toks) && toks[k].sent == toks[i].sent {
			return toks[k].text
		}
		return ""
	}
	switch toks[i].text {
	case "serve", "serves", "served", "serving", "act", "acts", "acted", "acting":
		return next(i+1) == "as"
	case "equal", "equals", "equivalent":
		k := i + 1
		if next(k) == "to" {
			k++
		}
		return next(k) == "how" && (next(k+1) == "many" || next(k+1) == "much")
	}
	return false
}

// letterName reports whether toks[i] is a capital letter used as a name
// inside a sentence ("type A blood", "plan B"), not the article "a" or "I".
// In Title Case Text the letter is an article.
func letterName(toks []token, i int) bool {
	t := toks[i]
	if !t.name || len(t.text) != 1 || t.text == "i" {
		return false
	}
	return i+1 >= len(toks) || toks[i+1].sent != t.sent || !toks[i+1].name
}
