package verify

import "strings"

// The word classes below are general English: function words, chat filler,
// requests for information, negation and direction cues. None is drawn from
// the entities of any evaluation set.

func set(s string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(s) {
		m[w] = true
	}
	return m
}

// stopWords are function words: articles, pronouns, auxiliaries, modals,
// prepositions, conjunctions, question words and degree adverbs. They are
// ignored by the alignment; the rules that need some of them (negation,
// question type, direction) look at them separately.
var stopWords = set(`
a an the this that these those some any each every all both either another such same other others
i me my mine myself you your yours yourself yourselves we us our ours ourselves he him his himself
she her hers herself it its itself they them their theirs themselves one ones someone something
anyone anything everyone everybody everything somebody
what which who whom whose when where why how whatever whichever whoever however
be am is are was were been being do does did doing done have has had having get got
can could will would shall should may might must ought
about above across after against along among around as at before behind below beneath beside
besides between beyond by down during except for from in inside into like near of off on onto
out outside over per since than through throughout till to toward towards under until up upon
via with within versus vs
and or but nor so yet if because while whereas although though unless whether then also too else
just really very quite actually basically simply even still again ever maybe perhaps probably
here there now currently much many more most less least lot lots bit
thing things stuff way ways kind step steps exactly specifically possible
able there's let using become becomes became seem seems seemed appear appears
typical typically usual usually normal normally generally general
`)

// fillerWords are chat politeness and hedges; always ignored.
var fillerWords = set(`
hi hello hey greetings dear thanks thank thx cheers please pls plz kindly sorry apologies apology
apologize apologise excuse favour favor help helping helped appreciate appreciated grateful
wondering wonder curious hope hoping hoped quick question questions lol haha ok okay yes yeah
well so um uh oh btw fyi anyway trouble bother mind moment
earlier beginner newbie new dumb silly stupid basic
know need want wanted like idea
`)

// requestVerbs ask for information rather than name a task. They are ignored
// when no content word precedes them in their sentence ("Explain X",
// "Could you tell me X", "Show me how to X"), so "Explain X" matches "What is X".
var requestVerbs = set(`
tell explain explains explained describe describes show give list name state define
clarify outline summarise elaborate calculate compute determine figure find provide share
recommend suggest let convert translate
shows tells gives lists displays display see view
`)

// checkObjects are the words after which a leading "check" asks for
// information ("check whether X", "check which version"); "check out a
// branch" and "check the oil" keep their verb.
var checkObjects = set(`if whether which what who when where why how`)

// frameNouns name the kind of answer a "what/which" question wants when
// they come before any content word of the sentence: "What command shows
// the running containers?" asks what "How do I show the running containers?"
// asks. Two prompts that both name a frame must name the same one.
// The frame noun must be followed by one of frameLinks or a request verb:
// "What process is listening on port 80?" asks for a process.
var frameNouns = set(`command commands method methods function functions process procedure technique approach`)

var frameLinks = set(`to for`)

// howDegree after "how" asks for a degree, not a manner: "how many", "how long".
var howDegree = set(`many much long far old often big large small tall high fast soon`)

// beForms and stateAdverbs are what stateAt looks back over.
var (
	beForms      = set(`be am is are was were been being`)
	stateAdverbs = set(`currently already still just really also now always ever yet`)
)

// negationWords flip the meaning of what follows.
var negationWords = set(`not no never without none nothing nobody nowhere neither nor cannot non`)

// numberWords become digits. "one" maps to "" (dropped): it is used as an
// article far more often than as a count ("in one cup" = "in a cup").
// Fractions and ordinals become number tokens too ("a third of a cup" is not
// "a quarter cup").
var numberWords = map[string]string{
	"zero": "0", "one": "", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
	"seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
	"thirteen": "13", "fourteen": "14", "fifteen": "15", "sixteen": "16", "seventeen": "17",
	"eighteen": "18", "nineteen": "19", "twenty": "20", "thirty": "30", "forty": "40",
	"fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
	"hundred": "100", "thousand": "1000", "million": "1000000", "billion": "1000000000",
	// fractions and ordinals from third on ("first" and "second" are sequence and time words)
	"half": "1/2", "halves": "1/2", "quarter": "1/4", "quarters": "1/4",
	"third": "3rd", "thirds": "3rd", "fourth": "4th", "fifth": "5th", "sixth": "6th",
	"seventh": "7th", "eighth": "8th", "ninth": "9th", "tenth": "10th",
}

// chatSpelling rewrites common chat spellings and apostrophe-less
// contractions ("dont" = "do not").
var chatSpelling = map[string]string{
	"u": "you", "ur": "your", "r": "are", "ya": "you", "wat": "what", "wut": "what", "whats": "what", "wats": "what",
	"thats": "that", "hows": "how", "wheres": "where", "whos": "who", "whens": "when", "im": "i",
	"ive": "i", "youre": "you", "theyre": "they", "dont": "do not", "doesnt": "does not",
	"didnt": "did not", "cant": "can not", "wont": "will not", "isnt": "is not", "arent": "are not",
	"wasnt": "was not", "werent": "were not", "shouldnt": "should not", "wouldnt": "would not",
	"couldnt": "could not", "havent": "have not", "hasnt": "has not", "hadnt": "had not",
	"aint": "is not", "mustnt": "must not", "neednt": "need not", "cannot": "can not",
	"pic": "picture", "pics": "pictures", "info": "information", "pls": "please", "plz": "please",
	"thx": "thanks", "ty": "thanks", "tho": "though", "thru": "through", "w": "with", "wo": "without",
	"cuz": "because", "coz": "because", "abt": "about", "ppl": "people", "sth": "something",
	"smth": "something", "idk": "i do not know", "dunno": "do not know", "wanna": "want to",
	"gonna": "going to", "gotta": "have to", "lemme": "let me", "gimme": "give me",
	"tmrw": "tomorrow", "tmr": "tomorrow", "bday": "birthday", "ww": "world war",
	"wht": "what", "whr": "where", "q": "question", "qs": "questions", "rn": "right now",
	"bc": "because", "b4": "before", "pov": "point of view", "asap": "as soon as possible",
}

// shortForms expands common written abbreviations that the lexicon lacks or
// reads in another sense: programming languages and tech terms ("js"), units
// and kitchen measures ("tbsp", "oz"). Clipped forms that are a prefix of
// their word ("config", "repo") need no entry: abbreviates handles them.
// Whole alphanumeric words are looked up before the letter/digit split, so
// "k8s" is not read as the number 8.
var shortForms = map[string]string{
	"js": "javascript", "ts": "typescript", "py": "python", "k8s": "kubernetes",
	"db": "database", "dbs": "databases", "cmd": "command", "cmds": "commands",
	"msg": "message", "msgs": "messages", "img": "image", "imgs": "images",
	"btn": "button", "btns": "buttons", "pkg": "package", "pkgs": "packages",
	"arr": "array", "arrs": "arrays", "var": "variable", "vars": "variables",
	"app": "application", "apps": "applications", "pw": "password",
	"temp": "temperature", "temps": "temperatures", "max": "maximum",
	"tbsp": "tablespoon", "tbsps": "tablespoons", "tbs": "tablespoons",
	"tsp": "teaspoon", "tsps": "teaspoons", "oz": "ounce", "qt": "quart", "qts": "quarts",
	"mph": "miles per hour", "kph": "kilometers per hour", "sq": "square",
}

// whClass maps question words whose answer type matters: a "who" question
// is not a "when" question. what/which/how are light and absent here.
var whClass = map[string]byte{"who": 'p', "whom": 'p', "whose": 'p', "when": 't', "where": 'l', "why": 'c'}

// whVerbs after "what" ask for a cause: "what causes X" = "why X".
var whVerbs = map[string]byte{"cause": 'c', "causes": 'c', "caused": 'c'}

// whNouns turn "what/which <noun>" into a question type: "what year" = when,
// "which person" = who, "what place" = where, "what reason" = why.
var whNouns = map[string]byte{
	"year": 't', "date": 't', "day": 't', "century": 't', "decade": 't',
	"person": 'p', "man": 'p', "woman": 'p', "people": 'p',
	"place": 'l', "location": 'l', "reason": 'c',
}

// directionMarkers separate two roles: source and target (X to Y, from X,
// into Y), the two sides of a comparison (X than Y, X vs Y, X instead of Y)
// a main and a subordinate clause (X when Y), an operation and its operand
// (X divided by Y, X per Y, X over Y) or a whole and its part (A of B). Two
// content words that change order across such a marker have swapped roles.
var directionMarkers = set(`to into onto from than vs versus instead rather when while whereas unlike by of per over in`)

// opposites are function-word pairs with opposite direction. Content-word
// antonyms come from WordNet.
var opposites = [][2]string{
	{"before", "after"}, {"above", "below"}, {"over", "under"}, {"up", "down"}, {"on", "off"},
	{"inside", "outside"}, {"more", "less"}, {"most", "least"}, {"with", "without"},
	{"always", "never"}, {"to", "from"}, {"into", "from"}, {"in", "out"}, {"into", "out"},
}

// fillerPhrases are politeness formulas that contain a negation or content
// words without asking anything; removed before the rules run. Tokens are as
// tokenize produces them (contractions already split).
var fillerPhrases = [][]string{
	{"if", "you", "do", "not", "mind"},
	{"if", "it", "is", "not", "too", "much", "trouble"},
	{"if", "it", "not", "too", "much", "trouble"},
	{"if", "that", "is", "not", "too", "much", "trouble"},
	{"no", "worries"},
	{"no", "problem"},
	{"not", "sure", "if"},
	{"i", "do", "not", "know"},
	{"in", "advance"},
	{"the", "number", "of"},
	{"thank", "you"},
	{"good", "morning"},
	{"good", "afternoon"},
	{"good", "evening"},
	{"have", "a", "good", "day"},
	{"having", "a", "good", "day"},
	{"let", "me", "know"},
	{"have", "no", "idea"},
	{"hope", "you", "do", "not", "mind"},
}

// fillersByFirst lists fillerPhrases by their first word, in their order: fillerAt looks up a
// token once instead of comparing it with every phrase.
var fillersByFirst = func() map[string][][]string {
	m := map[string][][]string{}
	for _, ph := range fillerPhrases {
		m[ph[0]] = append(m[ph[0]], ph)
		fillerFirsts.add(ph[0])
	}
	return m
}()

// fillerFirsts filters the words a filler phrase can open with.
var fillerFirsts firstLen

// mayOpenFiller reports whether a filler phrase could open with w.
func mayOpenFiller(w string) bool { return w != "" && fillerFirsts.may(w[0], len(w)) }

// firstLen filters words by first byte and length: bit n of entry c is set once a word of n
// bytes (63: longer) that starts with c is added. It rules most words out of a table without
// a map lookup.
type firstLen [256]uint64

func (f *firstLen) add(w string) { f[w[0]] |= 1 << min(len(w), 63) }

// may reports whether an added word could start with c and have n bytes.
func (f *firstLen) may(c byte, n int) bool { return f[c]&(1<<min(n, 63)) != 0 }

// recommendVerbs ask for a recommendation; evaluative adjectives then need no
// counterpart: "Recommend a laptop for students" asks "What is a good laptop
// for students?".
var (
	recommendVerbs = set(`recommend recommends suggest suggests`)
	evaluative     = set(`good best great nice decent`)
)

// wordNorm is what the tokenizer does with one word, from the four tables above in their order
// of precedence (a chat spelling, a short form, a number word, a negation), found with one
// lookup instead of four.
type wordNorm struct {
	repl   string // the expansion (expand) or the digits (num; "" drops the word)
	expand bool   // a chat spelling or a short form: repl's words replace it
	short  bool   // a short form (k8s): kept whole, not split at its digits
	num    bool
	neg    bool
}

var wordNorms = func() map[string]wordNorm {
	m := map[string]wordNorm{}
	for w := range negationWords {
		m[w] = wordNorm{neg: true}
	}
	for w, d := range numberWords {
		m[w] = wordNorm{repl: d, num: true}
	}
	for w, v := range shortForms {
		m[w] = wordNorm{repl: v, expand: true, short: true}
	}
	for w, v := range chatSpelling {
		_, short := shortForms[w]
		m[w] = wordNorm{repl: v, expand: true, short: short}
	}
	return m
}()

// normEnds has, for each length up to 15, the first letters (bits 0-25) and last letters (bits
// 32-57) of the wordNorms keys of that length: a lower-case word it rules out is not a key,
// which spares most words the map lookup.
var normEnds = func() (t [16]uint64) {
	for w := range wordNorms {
		if len(w) < len(t) && isLower(w[0]) && isLower(w[len(w)-1]) {
			t[len(w)] |= 1<<(w[0]-'a') | 1<<(32+w[len(w)-1]-'a')
		}
	}
	return t
}()

func isLower(c byte) bool { return 'a' <= c && c <= 'z' }

// mayNorm reports whether w may be a wordNorms key: false only for a word of 1 to 15 bytes
// that starts and ends with lower-case ASCII letters no key of its length starts and ends with.
// (wordToken reads only lower-cased text.)
func mayNorm(w string) bool {
	if len(w) == 0 || len(w) >= len(normEnds) || !isLower(w[0]) || !isLower(w[len(w)-1]) {
		return true
	}
	m := normEnds[len(w)]
	return m&(1<<(w[0]-'a')) != 0 && m&(1<<(32+w[len(w)-1]-'a')) != 0
}

// wordClass is the set of the lists above that a word is on, so that prepare finds what it asks
// of a token with one lookup (wordClasses) instead of one per list.
type wordClass uint16

const (
	cStop        wordClass = 1 << iota // stopWords
	cFiller                            // fillerWords
	cRequest                           // requestVerbs
	cRecommend                         // recommendVerbs
	cFrameNoun                         // frameNouns
	cFrameLink                         // frameLinks
	cCheckObject                       // checkObjects
	cHowDegree                         // howDegree
	cBe                                // beForms
	cStateAdverb                       // stateAdverbs
	cWh                                // a key of whClass
)

// classLists are the lists wordClasses gathers, by class.
var classLists = []struct {
	class wordClass
	words map[string]bool
}{
	{cStop, stopWords}, {cFiller, fillerWords}, {cRequest, requestVerbs}, {cRecommend, recommendVerbs},
	{cFrameNoun, frameNouns}, {cFrameLink, frameLinks}, {cCheckObject, checkObjects},
	{cHowDegree, howDegree}, {cBe, beForms}, {cStateAdverb, stateAdverbs},
}

var wordClasses = func() map[string]wordClass {
	m := map[string]wordClass{}
	for _, l := range classLists {
		for w := range l.words {
			m[w] |= l.class
		}
	}
	for w := range whClass {
		m[w] |= cWh
	}
	return m
}()

// classes returns the class of each of toks (0 for a token that is not a word), in out.
func classes(toks []token, out []wordClass) []wordClass {
	for _, t := range toks {
		var c wordClass
		if t.kind == tWord {
			c = wordClasses[t.text]
		}
		out = append(out, c)
	}
	return out
}
