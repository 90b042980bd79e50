package verify

// numberWordSet holds the words the tokenizer turns into a number token: numberWords with
// digits, as wordNorms ranks them against the other tables.
var numberWordSet = func() map[string]bool {
	m := map[string]bool{}
	for w, n := range wordNorms {
		if n.num && n.repl != "" {
			m[w] = true
			numberFirsts.add(w)
		}
	}
	return m
}()

// numberFirsts filters the number words.
var numberFirsts firstLen

func isNumberWord(w []byte) bool {
	return len(w) > 0 && numberFirsts.may(w[0], len(w)) && numberWordSet[string(w)]
}

// mayHaveNumber reports whether tokenize(s) could give a number token. false proves that it
// gives none, so that s's signature is empty; the check reads s once, with no tokenizing, and
// answers true (let the tokenizer decide) for any prompt that is not plain ASCII, holds an
// ASCII digit, two adjacent capitals of a roman numeral (II, IV, XI), or a run of letters
// that is, or starts before an apostrophe with, a number word.
func mayHaveNumber(s string) bool {
	start := -1 // where the current run of letters and inner apostrophes began
	for i := 0; i <= len(s); i++ {
		c := byte(' ')
		if i < len(s) {
			c = s[i]
		}
		switch {
		case c >= 0x80 || isDigit(c):
			return true
		case romanCap(c) && i+1 < len(s) && romanCap(s[i+1]):
			return true
		case isLetter(c):
			if start < 0 {
				start = i
			}
			continue
		case c == '\'' && start >= 0 && i+1 < len(s) && isLetter(s[i+1]):
			continue // inside a word: it's, don't
		}
		if start >= 0 && runHasNumberWord(s[start:i]) {
			return true
		}
		start = -1
	}
	return false
}

func romanCap(c byte) bool { return c == 'I' || c == 'V' || c == 'X' }

// runHasNumberWord reports whether the tokenizer could read a number word from run (ASCII
// letters with single apostrophes between them): the run without its apostrophes, the part
// before its first apostrophe ("two's"), or that part without a final n ("twon't").
func runHasNumberWord(run string) bool {
	var buf [24]byte
	if len(run) > len(buf) {
		return true // longer than any number word, but not worth proving
	}
	all, pre := buf[:0], -1
	for i := 0; i < len(run); i++ {
		switch c := run[i]; {
		case c == '\'':
			if pre < 0 {
				pre = len(all)
			}
		default:
			all = append(all, c|0x20)
		}
	}
	if isNumberWord(all) {
		return true
	}
	if pre < 0 {
		return false
	}
	base := all[:pre]
	return isNumberWord(base) || len(base) > 1 && base[len(base)-1] == 'n' && isNumberWord(base[:len(base)-1])
}
