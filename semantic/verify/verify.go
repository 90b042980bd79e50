// Package verify decides whether two prompts ask the same thing, as the
// guard rail behind zest's semantic cache: the embedding only retrieves
// candidates, and a cached answer is served only when Same says yes.
//
// It is deliberately strict (a wrong answer served is far worse than a miss).
// Two prompts are the same only when all of these hold:
//
//   - numbers: the digit tokens are identical as multisets (number words are
//     read as digits: "two" = "2"; "one" is read as an article and ignored);
//   - quotes: every quoted span of one prompt appears verbatim in the other;
//   - negation: both carry the same number of negation cues (not, n't, no,
//     never, without, non-...), politeness formulas like "if you don't mind"
//     excepted;
//   - question type: the same who/when/where/why questions ("what year" is when);
//   - direction: no opposite pair split between them (particles counted per
//     prompt: on/off, in/out, to/from; WordNet antonyms such as
//     import/export), no two close words of one sentence that swap order
//     across a relation word (Word to PDF / PDF to Word, X divided by Y, A of
//     B, X than Y, a shared verb: X beat Y, a copula between two numbers), no
//     number bound to a different unit (150 pounds / 150 kilograms, 20 square
//     feet / 20 square meters); coordination (X or Y) may swap;
//   - time: the same time and sequence classes (before/during/after,
//     first/last/next/previous...), and not future against past;
//   - question frame: "what command/method/process ..." names the same frame
//     in both prompts when both name one;
//   - alignment: every content word of each prompt aligns with one of the
//     other: same word, same lemma (went = go), or WordNet synonyms,
//     derivations or pertainyms (regular = regularly). Words missing from the
//     lexicon must match exactly, or within one edit when at least
//     Options.MinFuzzyLen long. Function words, chat filler, copulas ("serves
//     as") and frame nouns ("What command shows X" = "How do I show X") are
//     ignored; leading request verbs ("explain", "tell me", "how do I see")
//     need no counterpart. The task of a how-question ("how do I delete
//     files") never aligns with a state ("files that were deleted").
//
// Chat shorthand and common abbreviations are expanded first ("js" =
// "javascript", "tbsp" = "tablespoon", "cant" = "can not", "how 2" = "how to"),
// and social wrapping is dropped: greetings, thanks and sentences in which the
// user describes themselves around a question that stands on its own.
//
// In Guards mode only the guards above (numbers, quotes, negation, question
// type, direction, time, and words the lexicon does not know or names without
// a counterpart) are checked; the embedding's similarity decides the rest.
//
// The lexicon is a WordNet 3.0 extract embedded in the binary; no network.
package verify

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
)

// Mode selects how much of the decision the verifier takes.
type Mode string

// The verifier modes.
const (
	// Strict decides: every content word of each prompt must align with the other's, on top
	// of the hard guards. The default, and the right mode for the local embedder, whose cosine
	// cannot tell a paraphrase from a near-miss.
	Strict Mode = "strict"
	// Guards leaves the decision to the embedding's similarity and only refuses on the hard
	// guards: numbers, quotes, negation, question type, opposites, time and sequence words,
	// swapped relation arguments, numbers bound to other units, and words the lexicon does not
	// know or names (capitalised words) without a counterpart. Meant for a strong embedding
	// model (embedder = "upstream").
	Guards Mode = "guards"
)

// ParseMode maps a config value to a Mode: "" and "strict" are Strict, "guards" is Guards.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case "", Strict:
		return Strict, nil
	case Guards:
		return Guards, nil
	}
	return "", fmt.Errorf("verify: unknown mode %q: want strict or guards", s)
}

// Options configures a Verifier. The zero value is the tuned default.
type Options struct {
	// Mode is Strict (the default, also for "") or Guards.
	Mode Mode
	// MaxSenseRank limits synonymy to the most common senses: two words are
	// synonyms only through a synset that is among the first MaxSenseRank
	// senses (per part of speech) of both. Default 0 means 5; rare senses
	// make false synonyms (java = coffee, job = line).
	MaxSenseRank int
	// MinFuzzyLen is the shortest word not in the lexicon that may match
	// another word one edit away (typos: permanantly = permanently).
	// Default 0 means 7; negative disables fuzzy matching.
	MinFuzzyLen int
	// Logger receives debug records of rejections. Nil discards.
	Logger *slog.Logger
}

// Verifier applies the rules. It is immutable after New and safe for
// concurrent use.
type Verifier struct {
	guards   bool // Mode == Guards
	lx       *lexicon
	maxRank  uint32
	fuzzyLen int
	log      *slog.Logger
}

// New returns a Verifier. The embedded lexicon is decoded on the first call
// (about 0.2 s of CPU, ~15 MB live) and shared by all Verifiers afterwards.
func New(opts Options) (*Verifier, error) {
	mode, err := ParseMode(string(opts.Mode))
	if err != nil {
		return nil, err
	}
	lx, err := loadLexicon()
	if err != nil {
		return nil, err
	}
	v := &Verifier{guards: mode == Guards, lx: lx, maxRank: 5, fuzzyLen: 7, log: opts.Logger}
	if opts.MaxSenseRank > 0 {
		v.maxRank = uint32(min(opts.MaxSenseRank, 255))
	}
	if opts.MinFuzzyLen != 0 {
		v.fuzzyLen = opts.MinFuzzyLen
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	return v, nil
}

// Same reports whether a and b ask the same thing.
func (v *Verifier) Same(a, b string) bool {
	ok, _ := v.Explain(a, b)
	return ok
}

// Prepare reads query once for several comparisons: the function it returns reports
// Same(query, stored), as a cache's lookup asks of each candidate it found.
func (v *Verifier) Prepare(query string) func(stored string) bool {
	pa := v.prepare(query)
	return func(stored string) bool {
		pb := v.prepare(stored)
		return v.judge(&pa, &pb) == ""
	}
}

// judge is check, with a rejection logged at debug level.
func (v *Verifier) judge(a, b *prompt) string {
	reason := v.check(a, b)
	if reason != "" {
		v.log.Debug("verify: rejected", "rule", reason)
	}
	return reason
}

// Explain is Same plus, on rejection, the rule that rejected and the words
// involved, e.g. `numbers differ: [2.5] vs [3.5]`. On acceptance the reason is "".
func (v *Verifier) Explain(a, b string) (bool, string) {
	pa, pb := v.prepare(a), v.prepare(b)
	reason := v.judge(&pa, &pb)
	return reason == "", reason
}

// Signature is what two prompts must share to be the Same: their number tokens (number words
// read as digits), sorted. Same(a, b) implies Signature(a) == Signature(b), so a cache may keep
// prompts with different signatures apart and never compare them.
// It reads the tokens only (prepare's numbers are every number token it keeps), not the content
// words: a lookup pays for it on the request path.
func (v *Verifier) Signature(s string) string {
	if !mayHaveNumber(s) {
		return "" // most prompts: no tokenizing
	}
	return v.tokenSignature(s)
}

// tokenSignature is Signature read from the tokens.
func (v *Verifier) tokenSignature(s string) string {
	_, toks := v.read(s)
	return numbers(toks)
}

// numbers is the signature of the kept tokens toks: their number tokens, sorted.
func numbers(toks []token) string {
	var buf [8]string
	nums := buf[:0]
	for _, t := range toks {
		if t.kind == tNum {
			nums = append(nums, t.text)
		}
	}
	slices.Sort(nums)
	return strings.Join(nums, " ")
}

// read tokenizes s and drops its filler phrases and backstory: raw is every token, toks those
// kept, as Signature and prepare read them.
func (v *Verifier) read(s string) (raw, toks []token) {
	raw = tokenize(s)
	return raw, v.dropBackstory(dropFillerPhrases(raw))
}

// maxContent bounds the rule work (alignment and the swap check are
// quadratic in content words). Longer prompts are the same only when their
// token sequences are identical.
const maxContent = 64

func (v *Verifier) check(a, b *prompt) string {
	if len(a.content) > maxContent || len(b.content) > maxContent {
		if !containsSeq(a.toks, b.toks) || len(a.toks) != len(b.toks) {
			return fmt.Sprintf("long prompt (over %d content words) not identical", maxContent)
		}
		return ""
	}
	if !sameMultiset(a.nums, b.nums) {
		return fmt.Sprintf("numbers differ: %v vs %v", a.nums, b.nums)
	}
	if r := quotesMatch(a, b); r != "" {
		return r
	}
	if r := quotesMatch(b, a); r != "" {
		return r
	}
	if a.neg != b.neg {
		return fmt.Sprintf("negation differs: %d vs %d cues", a.neg, b.neg)
	}
	if a.wh != b.wh && !causeOfStatement(a, b) && !causeOfStatement(b, a) {
		return fmt.Sprintf("question type differs: %s vs %s", whString(a.wh), whString(b.wh))
	}
	if !v.guards && a.frame != "" && b.frame != "" && a.frame != b.frame {
		return fmt.Sprintf("question frame differs: %s vs %s", a.frame, b.frame)
	}
	if na, nb := a.count("than"), b.count("than"); na != nb {
		// "Is X faster than Y?" asks yes or no about one order; "Which is faster, X or Y?"
		// and "X vs Y" ask which.
		return fmt.Sprintf("comparison differs: %d vs %d \"than\"", na, nb)
	}
	if r := v.opposed(a, b); r != "" {
		return r
	}
	if r := v.timeDiffers(a, b); r != "" {
		return r
	}
	ma, r := v.align(a, b)
	if r != "" {
		return r
	}
	if _, r := v.align(b, a); r != "" {
		return r
	}
	if r := v.unitsDiffer(a, b); r != "" {
		return r
	}
	return v.swapped(a, b, ma)
}
