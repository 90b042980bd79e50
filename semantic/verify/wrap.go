package verify

// Social wrapping: a sentence in which the user describes themselves or
// their situation ("I'm new to web development.", "I moved recently.")
// around a question that stands on its own does not change what is asked.

// firstPerson are the words of a sentence about the user.
var firstPerson = set(`i me my mine myself we us our ours ourselves`)

// anaphora in the question point back into the rest of the prompt ("store
// it"): then the other sentences are part of the question.
var anaphora = set(`it its them they their this that these those one he she him her`)

// dropBackstory returns toks without the sentences that only describe the
// user, when another sentence asks the question on its own. A sentence is
// such a description when it does not end with a question mark, does not
// open with the user as its subject ("I ...", "My ...") or with a greeting,
// thanks or apology, and holds no number, negation, quotation, name or time
// word (any of which may change the answer: "I'm on Windows 11", "I don't
// have eggs", "I fly tomorrow"). Nothing
// is dropped when the remaining question refers back with a pronoun
// ("What's the best way to store it?"). toks is never modified.
func (v *Verifier) dropBackstory(toks []token) []token {
	if len(toks) == 0 || toks[len(toks)-1].sent == toks[0].sent {
		return toks // one sentence
	}
	var drop []int16 // sentence ids to drop
	keptContent := false
	for i := 0; i < len(toks); {
		j := i
		for j < len(toks) && toks[j].sent == toks[i].sent {
			j++
		}
		if v.backstory(toks[i:j]) {
			drop = append(drop, toks[i].sent)
		} else if !keptContent {
			for _, t := range toks[i:j] {
				if t.kind != tWord || !stopWords[t.text] && !fillerWords[t.text] {
					keptContent = true
					break
				}
			}
		}
		i = j
	}
	if len(drop) == 0 || !keptContent {
		return toks
	}
	out := make([]token, 0, len(toks))
	for _, t := range toks {
		dropped := false
		for _, s := range drop {
			if t.sent == s {
				dropped = true
				break
			}
		}
		if dropped {
			continue
		}
		if anaphora[t.text] && t.quote == 0 {
			return toks
		}
		out = append(out, t)
	}
	return out
}

// backstory reports whether one sentence only describes the user.
func (v *Verifier) backstory(sent []token) bool {
	if sent[0].ask {
		return false
	}
	k := 0
	for k < len(sent) && (fillerWords[sent[k].text] || sent[k].text == "there") {
		k++ // "So I moved recently.", "Hi there, my router ..."
	}
	social := k > 0 && socialOpeners[sent[0].text]
	if k == len(sent) {
		return true // only filler: "Hi!", "Thanks so much!"
	}
	if !social && !firstPerson[sent[k].text] {
		return false // a description opens with its subject, the user: "I bought X", "My laptop is old"
	}
	for i, t := range sent {
		if t.kind != tWord || t.quote != 0 || t.name || timeClass[t.text] != "" {
			return false
		}
		if (t.text == "i" || t.text == "we") && v.trait(sent[i+1:]) {
			return false
		}
	}
	return true
}

// hedges are the adverbs skipped between a subject, its verb and what follows.
var hedges = set(`really very pretty quite so also just currently still totally completely complete
kind sort of bit little always usually both all`)

// trait reports whether the words after "I" or "we" state a trait or a
// possession of the user rather than tell a story: "I'm vegan", "I am
// pregnant", "I have a Mac", "we have two kids". A trait may change the
// answer, so its sentence is kept; "I'm building a tool", "I have been
// trying", "I'm new to this" tell a story or are small talk.
func (v *Verifier) trait(rest []token) bool {
	k := skipHedges(rest, 0)
	if k >= len(rest) {
		return false
	}
	switch w := rest[k].text; {
	case w == "am" || w == "are" || w == "was" || w == "were":
	case w == "have" || w == "has" || w == "had" || w == "got":
		k = skipHedges(rest, k+1)
		return k < len(rest) && rest[k].text != "been" && rest[k].text != "to" && !v.verbForm(rest[k].text)
	default:
		return false
	}
	k = skipHedges(rest, k+1)
	for k < len(rest) && articles[rest[k].text] {
		k = skipHedges(rest, k+1)
	}
	if k >= len(rest) {
		return false
	}
	w := rest[k].text
	return !fillerWords[w] && !v.verbForm(w) && !socialStates[w]
}

// socialStates describe a mood, not a need: "I'm nervous", "I'm embarrassed".
var socialStates = set(`nervous embarrassed confused stuck lost curious sorry glad happy excited worried
stressed frustrated tired afraid scared unsure bored`)

func skipHedges(ts []token, k int) int {
	for k < len(ts) && hedges[ts[k].text] {
		k++
	}
	return k
}

// verbForm reports whether w is an -ing or -ed form of a verb ("building", "moved").
func (v *Verifier) verbForm(w string) bool {
	var buf [4]int32
	return v.participle(w, v.lx.lemmas(buf[:0], w))
}

// socialOpeners open a sentence that greets, thanks or apologises ("Thanks
// for taking the time!", "Hope your day is going well.", "Sorry to bug you
// again").
var socialOpeners = set(`hi hello hey greetings thanks thank thx cheers sorry apologies hope hoping`)
