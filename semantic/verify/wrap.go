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
		} else {
			for _, t := range toks[i:j] {
				if t.kind != tWord || !stopWords[t.text] && !fillerWords[t.text] {
					keptContent = true
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
	for _, t := range sent {
		if t.kind != tWord || t.quote != 0 || t.name || timeClass[t.text] != "" {
			return false
		}
	}
	return true
}

// socialOpeners open a sentence that greets, thanks or apologises ("Thanks
// for taking the time!", "Hope your day is going well.", "Sorry to bug you
// again").
var socialOpeners = set(`hi hello hey greetings thanks thank thx cheers sorry apologies hope hoping`)
