package verify

import "fmt"

// timeClass maps time and sequence words to the point in time they name.
// Two prompts that name different points ("during a race" / "before a
// race", "the next eclipse" / "the last eclipse") ask different things.
// Words of one class are interchangeable ("prior to" = "before",
// "upcoming" = "next"). These are general English function words and
// ordinal adjectives, not entries of any evaluation set.
var timeClass = map[string]string{
	// relations between an event and a time
	"before": "before", "prior": "before", "beforehand": "before",
	"after": "after", "afterwards": "after", "afterward": "after",
	"during": "during", "throughout": "during", "amid": "during", "while": "during",
	"until": "until", "till": "until", "since": "since",
	// positions in a sequence
	"first": "first", "initial": "first", "earliest": "first", "original": "first",
	"last": "last", "final": "last", "latest": "last", "newest": "last", "recent": "last",
	"current": "current",
	"next":    "next", "upcoming": "next", "following": "next", "coming": "next",
	"previous": "previous", "preceding": "previous", "former": "previous",
	// positions in time
	"past": "past", "future": "future", "present": "present",
	"yesterday": "yesterday", "today": "today", "tomorrow": "tomorrow", "tonight": "today",
	"morning": "morning", "afternoon": "afternoon", "evening": "evening", "night": "night",
	"daily": "daily", "weekly": "weekly", "monthly": "monthly", "yearly": "yearly", "annually": "yearly",
}

// futureCues and pastCues mark the tense of a question.
var (
	futureCues = set(`will shall`)
	pastCues   = set(`did was were had`)
)

// timeDiffers refuses prompts that place the question at different times:
// one names a time or sequence class the other lacks while the other names
// one the first lacks, or one asks about the future and the other about the
// past ("Who will host X" / "Who hosted X").
func (v *Verifier) timeDiffers(a, b *prompt) string {
	ca, cb := timeClasses(a), timeClasses(b)
	for x, wx := range ca {
		if _, ok := cb[x]; ok {
			continue
		}
		for y, wy := range cb {
			if _, ok := ca[y]; !ok {
				return fmt.Sprintf("time words differ: %s vs %s", wx, wy)
			}
		}
	}
	fa, pa := v.tense(a)
	fb, pb := v.tense(b)
	if fa && !pa && pb && !fb || fb && !pb && pa && !fa {
		return "tense differs: future vs past"
	}
	return ""
}

// timeClasses returns the time classes p names, each with a word that names it.
func timeClasses(p *prompt) map[string]string {
	var m map[string]string
	for _, t := range p.toks {
		if c, ok := timeClass[t.text]; ok && t.kind == tWord {
			if m == nil {
				m = map[string]string{}
			}
			m[c] = t.text
		}
	}
	return m
}

// tense reports whether p asks about the future (will, shall) and whether
// about the past (did, was, were, had, or a past verb right after a question
// word: "who hosted", "when invented").
func (v *Verifier) tense(p *prompt) (future, past bool) {
	for i, t := range p.toks {
		switch {
		case futureCues[t.text]:
			future = true
		case pastCues[t.text]:
			past = true
		case i > 0 && whWords[p.toks[i-1].text] && p.toks[i-1].sent == t.sent && v.pastForm(t.text):
			past = true
		}
	}
	return future, past
}

// whWords open a question.
var whWords = set(`who whom whose what which when where why how`)

// pastForm reports whether w is the past form of a verb: an irregular form
// from WordNet's exception list (went, wrote) or a regular -ed form.
func (v *Verifier) pastForm(w string) bool {
	for _, id := range v.lx.exc(w) {
		if v.lx.pos(id)&posV != 0 && v.lx.name(id) != w {
			return true
		}
	}
	if len(w) < 4 || w[len(w)-2:] != "ed" {
		return false
	}
	var buf [4]int32
	for _, id := range v.lx.lemmas(buf[:0], w) {
		if v.lx.pos(id)&posV != 0 && v.lx.name(id) != w {
			return true
		}
	}
	return false
}

// causeOfStatement reports whether a asks only why, and b asks nothing: no
// question word at all, as a keyword query or a bare statement of a problem
// does ("printer wont connect to wifi??" asks why "Why won't my printer
// connect to Wi-Fi?").
func causeOfStatement(a, b *prompt) bool {
	if a.wh != whCause || b.wh != 0 {
		return false
	}
	for _, t := range b.toks {
		if whWords[t.text] {
			return false
		}
	}
	return true
}
