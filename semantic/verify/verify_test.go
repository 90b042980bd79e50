package verify

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

func newVerifier(t testing.TB) *Verifier {
	t.Helper()
	v, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestRules checks each rule on prompts a user could send: what must be
// rejected (and by which rule) and what must still be served from cache.
func TestRules(t *testing.T) {
	v := newVerifier(t)
	tests := []struct {
		name string
		a, b string
		same bool
		rule string // substring of Explain's reason when rejected
	}{
		{"numbers differ", "Convert 14 miles to kilometers.", "Convert 40 miles to kilometers.", false, "numbers differ"},
		{"number word equals digit", "How many grams are in two eggs?", "How many grams are in 2 eggs?", true, ""},
		{"one is an article", "How many tablespoons are in one cup?", "How many tablespoons are in a cup?", true, ""},
		{"thousands comma", "What is 5% of $1,000?", "What is 5 percent of 1000 dollars?", true, ""},
		{"decimal differs", "Is Python 2.7 still supported?", "Is Python 3.12 still supported?", false, "numbers differ"},
		{"negation added", "Which EU countries use the euro?", "Which EU countries do not use the euro?", false, "negation"},
		{"contraction negation", "Which methods mutate the array?", "Which methods don't mutate the array?", false, "negation"},
		{"with vs without", "How do I make pancakes with eggs?", "How do I make pancakes without eggs?", false, "negation"},
		{"non- prefix", "How do I run a container as a non-root user?", "How do I run a container as a root user?", false, "negation"},
		{"polite negation is filler", "Please, if you don't mind, explain how to exit Vim.", "How do I exit Vim?", true, ""},
		{"direction swap", "How do I convert a Word document to a PDF?", "How do I convert a PDF to a Word document?", false, "swapped"},
		{"from/to swap", "How do I copy a file from my laptop to a server?", "How do I copy a file from a server to my laptop?", false, "swapped"},
		{"number roles swap", "Map port 8080 on the host to port 80 in the container.", "Map port 80 on the host to port 8080 in the container.", false, "swapped"},
		{"unit rebound", "How many kilograms is 150 pounds?", "How many pounds is 150 kilograms?", false, "unit"},
		{"to vs from", "How do I copy a file to the server?", "How do I copy a file from the server?", false, "opposite"},
		{"before vs after", "What happened right after the revolution?", "What happened right before the revolution?", false, "opposite"},
		{"antonym", "How do I export a table as CSV?", "How do I import a table as CSV?", false, "antonyms"},
		{"different entity", "What is the capital of Switzerland?", "What is the capital of Austria?", false, "counterpart"},
		{"unknown word differs", "How do I declare a constant in JavaScript?", "How do I declare a constant in TypeScript?", false, "unknown word"},
		{"extra qualifier", "How do I roast vegetables?", "How do I roast vegetables in an air fryer?", false, "counterpart"},
		{"who vs when", "Who painted the Mona Lisa?", "When was the Mona Lisa painted?", false, "question type"},
		{"what year is when", "What year did the French Revolution begin?", "When did the French Revolution begin?", true, ""},
		{"relative where is no question", "How do I select rows where a column is null?", "How do I select rows whose column is null?", true, ""},
		{"quoted text differs", "Translate 'I am hungry' into French.", "Translate 'you are hungry' into French.", false, "quoted"},
		{"synonyms", "When did the French Revolution start?", "When did the French Revolution begin?", true, ""},
		{"inflection and exception", "Who went to the moon first?", "Who goes to the moon first?", true, ""},
		{"pertainym", "Describe the health benefits of walking regularly.", "What are the health benefits of regular walking?", true, ""},
		{"request verb", "Explain closures in JavaScript.", "What is a closure in JavaScript?", true, ""},
		{"casual paraphrase", "whats the capital of norway", "What is the capital of Norway?", true, ""},
		{"casual contraction", "macbook wont turn on what do i do", "My MacBook won't turn on. What should I do?", true, ""},
		{"typo in long word", "how do i delete my account permanantly", "How can I permanently delete my account?", true, ""},
		{"chat filler", "Hey there, sorry if this is dumb, but how do I make a variable global in Python?", "How do I make a variable global in Python?", true, ""},
		{"degree sign", "Convert 72°F to Celsius.", "What is 72 degrees Fahrenheit in Celsius?", true, ""},
		{"same text", "How do I merge my feature branch into main?", "How do I merge my feature branch into main?", true, ""},
		{"abbreviation", "js how to check if array is empty", "How do I check whether an array is empty in JavaScript?", true, ""},
		{"abbreviations differ", "How do I declare a constant in js?", "How do I declare a constant in ts?", false, "counterpart"},
		{"kitchen abbreviation", "how many tbsp in a cup", "How many tablespoons are in one cup?", true, ""},
		{"kitchen abbreviations differ", "how many tbsp in a cup", "how many tsp in a cup", false, "counterpart"},
		{"plural clipped form", "How do I merge two dicts?", "How do I merge two dictionaries?", true, ""},
		{"alphanumeric abbreviation", "k8s vs docker swarm", "kubernetes vs docker swarm", true, ""},
		{"chat how 2", "how 2 make pancakes", "How do I make pancakes?", true, ""},
		{"frame noun", "What command shows every Docker container that is currently running?", "How do I list all running Docker containers?", true, ""},
		{"frame noun with to", "What's the command to create a branch in git?", "How do I create a branch in git?", true, ""},
		{"frame nouns differ", "What command lists the files?", "What function lists the files?", false, "frame"},
		{"frame noun as answer", "What process is listening on port 8080?", "How do I listen on port 8080?", false, "counterpart"},
		{"request verb needs no counterpart", "How can I view the logs of a Docker container?", "docker container how do i see the logs", true, ""},
		{"check which", "What's the command to see my installed Node.js version?", "How do I check which version of Node.js is installed?", true, ""},
		{"check out keeps its verb", "How do I check out a branch?", "How do I list branches?", false, "counterpart"},
		{"task vs state", "How do I check if a branch is merged?", "How do I merge a branch?", false, "counterpart"},
		{"task vs participle", "How do I find the deleted files?", "How do I delete the files?", false, "counterpart"},
		{"listed participle", "How do I list running containers?", "How do I run containers?", false, "counterpart"},
		{"passive how", "How is the passé composé formed in French?", "Explain how to form the passé composé in French.", true, ""},
		{"copula serves as", "What is the capital city of Portugal?", "Which city serves as Portugal's capital?", true, ""},
		{"equal to how many", "How many kilometers are in 26.2 miles?", "26.2 miles is equal to how many kilometers?", true, ""},
		{"equal is not dropped", "How do I test greater than or equal to in Python?", "How do I test greater than in Python?", false, "counterpart"},
		{"quote of a filler phrase", "how 2 say thank you in french", "How do you say 'thank you' in French?", true, ""},
		// Asymmetric relations: the arguments may not swap; coordination and moved modifiers may.
		{"divided by swap", "What is 20 divided by 4?", "What is 4 divided by 20?", false, "swapped"},
		{"verb arguments swap", "Did the Lakers beat the Celtics in 2008?", "Did the Celtics beat the Lakers in 2008?", false, "swapped"},
		{"acronyms swap around to", "Redirect http to https on Apache", "Redirect https to http on Apache", false, "swapped"},
		{"of swap", "How do I find the sum of the squares?", "How do I find the square of the sum?", false, "swapped"},
		{"than swap", "Is a crocodile bigger than an alligator?", "Is an alligator bigger than a crocodile?", false, "swapped"},
		{"multiword unit", "How many square feet is 20 square meters?", "How many square meters is 20 square feet?", false, "unit"},
		{"coordination may swap", "Should I learn Go or Rust first?", "Should I learn Rust or Go first?", true, ""},
		{"and may swap", "What are the differences between cats and dogs?", "What are the differences between dogs and cats?", true, ""},
		{"moved modifier", "In Go, how do I reverse a string?", "How do I reverse a string in Go?", true, ""},
		// Opposites and time.
		{"particle on/off", "How do I turn on dark mode on my phone?", "How do I turn off dark mode on my phone?", false, "opposite"},
		{"particle in/out", "How do I log in to my account?", "How do I log out of my account?", false, "opposite"},
		{"time preposition", "What should I eat during a long hike?", "What should I eat before a long hike?", false, "time"},
		{"sequence word", "When is the next full moon?", "When was the previous full moon?", false, "time"},
		{"future vs past", "Who will host the Olympics?", "Who hosted the Olympics?", false, "tense"},
		{"fractions are numbers", "How many tablespoons are in half a cup?", "How many tablespoons are in a quarter cup?", false, "numbers differ"},
		{"ordinals are numbers", "Who was the third president of France?", "Who was the fourth president of France?", false, "numbers differ"},
		{"which vs than", "Which is faster, Python or Go?", "Is Go faster than Python?", false, "comparison"},
		{"coordinated infinitives may swap", "Is it cheaper to fly or to drive to Boston?", "Is it cheaper to drive or to fly to Boston?", true, ""},
		{"while vs after", "Can I drink coffee while breastfeeding?", "Can I drink coffee after breastfeeding?", false, "time"},
		{"numbers swap across is", "What percent of 40 is 10?", "What percent of 10 is 40?", false, "swapped"},
		{"letter names swap", "Can a person with type B blood give to type O?", "Can a person with type O blood give to type B?", false, "swapped"},
		{"in swap", "How many ounces are in a pound?", "How many pounds are in an ounce?", false, ""},
		{"sentences may swap", "Which museum should I visit first? I have one day in Paris.", "I have one day in Paris. Which museum should I visit first?", true, ""},
		// Social wrapping and chat style.
		{"backstory dropped", "Hi! I just adopted a kitten and I'm nervous. How often should a kitten eat?", "How often should a kitten eat?", true, ""},
		{"backstory with a name kept", "I use a Mac. How do I take a screenshot?", "How do I take a screenshot?", false, "counterpart"},
		{"backstory with negation kept", "I have no oven. How do I bake bread?", "How do I bake bread?", false, "negation"},
		{"backstory the question points to", "I bought fresh mint. How do I keep it fresh?", "How do I keep fresh mint fresh?", false, ""},
		{"a trait is kept", "I'm vegan. How do I make pancakes?", "How do I make pancakes?", false, "vegan"},
		{"a possession is kept", "I have a dog. How do I get stains out of a carpet?", "How do I get stains out of a carpet?", false, "dog"},
		{"a story is dropped", "I'm building a small app for my club. How do I hash a password?", "How do I hash a password?", true, ""},
		{"thanks sentence", "Thanks for your patience! How do I boil an egg?", "How do I boil an egg?", true, ""},
		{"but opens the question", "Sorry to bother you again, but how do I undo a commit?", "How do I undo a commit?", true, ""},
		{"chat y", "y is the sky blue", "Why is the sky blue?", true, ""},
		{"trailing why", "my bread is dense, why", "Why is my bread dense?", true, ""},
		{"how come", "How come the sky is blue?", "Why is the sky blue?", true, ""},
		{"keyword problem asks why", "Why won't my phone charge?", "phone wont charge??", true, ""},
		{"keyword how is not why", "Why won't my phone charge?", "how to charge phone", false, ""},
		{"chat w/o is without", "how to make pancakes w/o eggs", "How do I make pancakes without eggs?", true, ""},
		{"chat w/o keeps negation", "how to make pancakes w/o eggs", "How do I make pancakes with eggs?", false, "negation"},
		{"chat b/c and wht", "wht should i do b/c my phone is hot", "What should I do because my phone is hot?", true, ""},
		{"quick q", "hey quick q, how do i reverse a list in python", "How do I reverse a list in Python?", true, ""},
		{"recommend asks for a good one", "What are some good exercises for lower back pain?", "Recommend exercises for lower back pain.", true, ""},
		{"good needs a recommendation", "What is a good diet?", "What is a diet?", false, "good"},
		{"imperative list frame", "List the planets in the solar system.", "What are the planets in the solar system?", true, ""},
		{"quoted title without article", "Who wrote 'The Old Man and the Sea'?", "who wrote old man and the sea", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := v.Explain(tt.a, tt.b)
			if got != tt.same {
				t.Fatalf("Same(%q, %q) = %v (%s), want %v", tt.a, tt.b, got, why, tt.same)
			}
			if back := v.Same(tt.b, tt.a); back != tt.same {
				t.Errorf("Same is not symmetric: Same(b, a) = %v", back)
			}
			if !tt.same && !strings.Contains(why, tt.rule) {
				t.Errorf("rejected by %q, want rule containing %q", why, tt.rule)
			}
			if tt.same && why != "" {
				t.Errorf("accepted with reason %q, want empty", why)
			}
		})
	}
}

func TestTokenize(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"Can't log in!", "can not log in"},
		{"It's 1,000 km", "it 1000 km"},
		{"What's 15% of $80?", "what 15 percent of dollar 80"},
		{"ww2 at 3pm, 1st place", "world war 2 at 3 pm 1st place"},
		{"use node.js and .gitignore", "use node.js and .gitignore"},
		{"a == b, c === d", "a == b c === d"},
		{"two dozen eggs for one", "2 dozen eggs for"},
		{"fat-soluble", "fat soluble"},
		{"js vs py, 2 tbsp", "javascript vs python 2 tablespoon"},
		{"how2 fix it", "how to fix it"},
		{"k8s, ww2", "kubernetes world war 2"},
		{"After World War II and Henry VIII, XI vs IIII", "after world war 2 and henry 8 11 vs iiii"},
		{"Is it II or I?", "is it 2 or i"},
		{"cant log in", "can not log in"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			toks := tokenize(tt.in)
			if got := joinTokens(toks); got != tt.want {
				t.Errorf("tokenize(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	toks := tokenize(`Translate 'I am hungry' into "French", it's late`)
	var quoted []string
	for _, tk := range toks {
		if tk.quote != 0 {
			quoted = append(quoted, tk.text)
		}
	}
	if got := strings.Join(quoted, " "); got != "i am hungry french" {
		t.Errorf("quoted tokens = %q, want %q", got, "i am hungry french")
	}
}

func TestLemmas(t *testing.T) {
	v := newVerifier(t)
	tests := []struct{ word, lemma string }{
		{"went", "go"}, {"mice", "mouse"}, {"running", "run"}, {"boxes", "box"}, {"cities", "city"},
	}
	for _, tt := range tests {
		t.Run(tt.word, func(t *testing.T) {
			var names []string
			for _, id := range v.lx.lemmas(nil, tt.word) {
				names = append(names, v.lx.name(id))
			}
			found := false
			for _, n := range names {
				found = found || n == tt.lemma
			}
			if !found {
				t.Errorf("lemmas(%q) = %v, want %q among them", tt.word, names, tt.lemma)
			}
		})
	}
	if got := v.lx.lemmas(nil, "qwzxv"); got != nil {
		t.Errorf("lemmas of a non-word = %v, want nil", got)
	}
}

// TestLemmasMatchMorphy: lemmas, which tries only the rules a word's last byte allows, gives
// what WordNet's morphy loop gives (the word, its exceptions, then every rule in order, each id
// once) for every lexicon word and each of its forms the rules can detach.
func TestLemmasMatchMorphy(t *testing.T) {
	v := newVerifier(t)
	lx := v.lx
	morphy := func(word string) []int32 {
		var out []int32
		add := func(id int32) {
			if !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
		if id, ok := lx.words.ID(word); ok {
			add(id)
		}
		for _, id := range lx.exc(word) {
			add(id)
		}
		for _, r := range morphRules {
			if len(word) > len(r.suffix)+1 && len(word) <= 64 && strings.HasSuffix(word, r.suffix) {
				if id, ok := lx.words.ID(strings.TrimSuffix(word, r.suffix) + r.repl); ok && lx.pos(id)&r.pos != 0 {
					add(id)
				}
			}
		}
		return out
	}
	checked := 0
	for id := range int32(lx.words.Len()) {
		w := lx.name(id)
		for _, form := range []string{w, w + "s", w + "es", w + "ed", w + "ing", w + "er", w + "est", w + "men", "x" + w} {
			if got, want := lx.lemmas(nil, form), morphy(form); !slices.Equal(got, want) {
				t.Fatalf("lemmas(%q) = %v, morphy gives %v", form, got, want)
			}
			checked++
		}
	}
	if checked < 100000 {
		t.Fatalf("checked only %d forms", checked)
	}
}

func TestOptions(t *testing.T) {
	a, b := "how do i delete my account permanantly", "How can I permanently delete my account?"
	strict, err := New(Options{MinFuzzyLen: -1})
	if err != nil {
		t.Fatal(err)
	}
	if strict.Same(a, b) {
		t.Error("with fuzzy matching disabled a misspelt unknown word still matched")
	}
	if !newVerifier(t).Same(a, b) {
		t.Error("default verifier rejected a one-letter typo in a long word")
	}
}

// TestConcurrent runs Same from many goroutines; run with -race.
func TestConcurrent(t *testing.T) {
	v := newVerifier(t)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if !v.Same("Explain what a Dockerfile is.", "What is a Dockerfile?") {
					t.Error("concurrent Same rejected a paraphrase")
					return
				}
			}
		}()
	}
	wg.Wait()
}

func FuzzTokenize(f *testing.F) {
	for _, s := range []string{
		"How do I convert a Word document to a PDF?", "Translate 'I am hungry' into French.",
		"what's 15% of $1,000.50 ÷ 2?", "don't 'quote \"nested' here\"", "..'.'.'", "x1y2z3 ___ 9th",
		"ﬁle naïve café ½", "", "'", "a to b to a", "find . -name '*.log' -mtime +7 -delete",
	} {
		f.Add(s)
	}
	v := newVerifier(f)
	f.Fuzz(func(t *testing.T, s string) {
		toks := tokenize(s)
		for _, tk := range toks {
			if tk.text == "" && tk.kind != tNeg {
				t.Fatalf("empty token from %q", s)
			}
		}
		if ok, why := v.Explain(s, s); !ok {
			t.Fatalf("Same(s, s) = false for %q: %s", s, why)
		}
	})
}

// BenchmarkSame measures one verification of a typical candidate pair.
func BenchmarkSame(b *testing.B) {
	v := newVerifier(b)
	pairs := [][2]string{
		{"How do I convert a Word document to a PDF?", "How do I convert a PDF to a Word document?"},
		{"Could you please tell me how to read a CSV file into a pandas DataFrame?", "How do I read a CSV file into a pandas DataFrame?"},
		{"What's the way to combine two dicts into a single dict in Python?", "How do I merge two dictionaries in Python?"},
		{"When did the French Revolution start?", "What year did the French Revolution begin?"},
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		p := pairs[i%len(pairs)]
		v.Same(p[0], p[1])
	}
}

// TestSignatureFollowsSame checks the invariant a cache relies on to partition by Signature:
// two prompts the verifier calls the Same always have equal signatures.
func TestSignatureFollowsSame(t *testing.T) {
	v := newVerifier(t)
	cases := [][2]string{
		{"How many cups are in two quarts?", "How many cups are in 2 quarts?"},
		{"Convert 6 feet to centimeters.", "How many centimeters are in 6 feet?"},
		{"how 2 say thank you in french", "How do you say 'thank you' in French?"},
		{"What is 15 percent of 80?", "whats 15% of 80"},
		{"Add one cup of flour", "Add a cup of flour"},
	}
	if path := devSetPath(t); path != "" {
		for _, p := range loadPairs(t) {
			cases = append(cases, [2]string{p.A, p.B})
		}
	}
	same := 0
	for _, c := range cases {
		if !v.Same(c[0], c[1]) {
			continue
		}
		same++
		if sa, sb := v.Signature(c[0]), v.Signature(c[1]); sa != sb {
			t.Errorf("Same(%q, %q) but signatures %q != %q", c[0], c[1], sa, sb)
		}
	}
	if same < 3 {
		t.Fatalf("only %d accepted pairs: the invariant was barely checked", same)
	}
	if v.Signature("Convert 6 feet to centimeters.") == v.Signature("Convert 7 feet to centimeters.") {
		t.Error("prompts with different numbers share a signature")
	}
}

// TestSignatureIsPreparedNumbers: Signature, which reads only the tokens, gives the numbers that
// prepare (what Same compares) keeps, so it is the same function as before it skipped the rest.
func TestSignatureIsPreparedNumbers(t *testing.T) {
	v := newVerifier(t)
	prompts := []string{
		"What year did 2 men walk on the moon in 1969?", "which person scored 3 goals", "How come 4 cats sleep 16 hours?",
		"twenty five times three", "how 2 say 5 in french", "I have 3 kids. My wife is 40. What is 7 times 8?",
		"By the way, 12 people asked. Anyway, what is 2 + 2?", "Convert 1,000 feet to meters (1.5 km?)",
		"What's 15% of 80", "no numbers here", "",
	}
	for _, name := range []string{"semantic-pairs-dev.jsonl", "semantic-pairs-dev2.jsonl"} {
		if devSetPath(t) != "" {
			for _, p := range loadSet(t, name) {
				prompts = append(prompts, p.A, p.B)
			}
		}
	}
	for _, s := range prompts {
		p := v.prepare(s)
		if got, want := v.Signature(s), strings.Join(p.nums, " "); got != want {
			t.Errorf("Signature(%q) = %q, prepare's numbers %q", s, got, want)
		}
	}
}

// BenchmarkSignature is what a semantic lookup pays on the request path to pick the partition.
func BenchmarkSignature(b *testing.B) {
	v := newVerifier(b)
	b.ReportAllocs()
	for b.Loop() {
		v.Signature("What is 12345 times 7, and how do I convert 3.5 miles to km?")
	}
}

// BenchmarkSignatureLong is Signature on a two-sentence, 17-word prompt, as the bench's
// unique-prompt scenarios send.
func BenchmarkSignatureLong(b *testing.B) {
	v := newVerifier(b)
	b.ReportAllocs()
	for b.Loop() {
		v.Signature("Explain in two sentences what a caching reverse proxy does for an OpenAI-compatible chat API. Request 12345.")
	}
}

// BenchmarkSignatureNoNumber is Signature on a prompt without numbers, as most are: it is
// proved empty without tokenizing.
func BenchmarkSignatureNoNumber(b *testing.B) {
	v := newVerifier(b)
	b.ReportAllocs()
	for b.Loop() {
		v.Signature("Explain in a few sentences what a caching reverse proxy does for an OpenAI-compatible chat API.")
	}
}

// TestWordNormsKeepPrecedence: the one-lookup table gives every word of the four word tables
// the treatment the tables gave it when looked up one by one (chat spelling, then short form,
// then number word, then negation).
func TestWordNormsKeepPrecedence(t *testing.T) {
	ref := func(w string) []token {
		var tk tokenizer
		if v, ok := chatSpelling[w]; ok || shortForms[w] != "" {
			if !ok {
				v = shortForms[w]
			}
			for _, x := range strings.Fields(v) {
				if negationWords[x] {
					tk.emit(x, tNeg)
				} else {
					tk.emit(x, tWord)
				}
			}
			return tk.toks
		}
		if d, ok := numberWords[w]; ok {
			if d != "" {
				tk.emit(d, tNum)
			}
			return tk.toks
		}
		if negationWords[w] {
			tk.emit(w, tNeg)
			return tk.toks
		}
		tk.emit(w, tWord)
		return tk.toks
	}
	words := []string{"cache", "proxy", "k8s"}
	for _, m := range []map[string]string{chatSpelling, shortForms, numberWords} {
		for w := range m {
			words = append(words, w)
		}
	}
	for w := range negationWords {
		words = append(words, w)
	}
	for _, w := range words {
		var tk tokenizer
		tk.wordToken(w)
		if want := ref(w); !slices.Equal(tk.toks, want) {
			t.Errorf("%q: %v, want %v", w, tk.toks, want)
		}
		if _, short := shortForms[w]; wordNorms[w].short != short {
			t.Errorf("%q: short form %v, want %v", w, wordNorms[w].short, short)
		}
	}
}

// TestPrepareMatchesSame: a query read once by Prepare answers for every stored prompt what
// Same does, however many it is compared with (the prepared query is never changed by a
// comparison). Every prompt of both dev sets is compared with the first 40 of the other side.
func TestPrepareMatchesSame(t *testing.T) {
	v := newVerifier(t)
	as := []string{"How do I convert a Word document to a PDF?", "When did the French Revolution start?",
		"Explain what a reverse proxy does for the project qwzkfra.", "What is 15 percent of 80?"}
	bs := []string{"How do I convert a PDF to a Word document?", "What year did the French Revolution begin?",
		"Explain what a reverse proxy does for the project qwzkfrb.", "whats 15% of 80"}
	for i, a := range as {
		same := v.Prepare(a)
		for _, b := range bs {
			if got, want := same(b), v.Same(a, b); got != want {
				t.Fatalf("prompt %d: Prepare(%q)(%q) = %v, Same = %v", i, a, b, got, want)
			}
		}
	}
	for _, file := range []string{"semantic-pairs-dev.jsonl", "semantic-pairs-dev2.jsonl"} {
		for _, p := range loadSet(t, file) {
			as, bs = append(as, p.A), append(bs, p.B)
		}
	}
	stored := bs[:min(40, len(bs))]
	for i, a := range as {
		same := v.Prepare(a)
		for _, b := range append([]string{bs[i]}, stored...) {
			if got, want := same(b), v.Same(a, b); got != want {
				t.Fatalf("Prepare(%q)(%q) = %v, Same = %v", a, b, got, want)
			}
		}
	}
}

// TestWordClassesMatchLists: a word's class (one lookup) has a list's bit exactly when the
// word is on that list, for every list prepare reads through it.
func TestWordClassesMatchLists(t *testing.T) {
	lists := append(classLists[:len(classLists):len(classLists)], struct {
		class wordClass
		words map[string]bool
	}{cWh, map[string]bool{}})
	for w := range whClass {
		lists[len(lists)-1].words[w] = true
	}
	for _, l := range lists {
		for w := range l.words {
			if wordClasses[w]&l.class == 0 {
				t.Errorf("%q is on list %#x, its class %#x is not", w, l.class, wordClasses[w])
			}
		}
		for w, c := range wordClasses {
			if c&l.class != 0 && !l.words[w] {
				t.Errorf("%q has class %#x and is not on that list", w, l.class)
			}
		}
	}
	// A negation and a number have no class, whatever their text.
	toks := tokenize("Why is it not 2 sentences?")
	if got := classes(toks, nil); len(got) != len(toks) || got[0] != cStop|cCheckObject|cWh || got[1] != cStop|cBe || got[3] != 0 || got[4] != 0 || got[5] != 0 {
		t.Errorf("classes of %v = %v", toks, got)
	}
}

// TestPlainWordFastPath: finish hands a word of ASCII letters alone straight to wordToken and
// tells an acronym by upperLetters; splitWord and isAcronym, which it skips, give the same for
// every such word: each lexicon word, each spelling the tokenizer normalises, in four cases.
func TestPlainWordFastPath(t *testing.T) {
	v := newVerifier(t)
	words := []string{"i", "a", "ok", "nt"}
	for id := range int32(v.lx.words.Len()) {
		words = append(words, v.lx.name(id))
	}
	for w := range wordNorms {
		words = append(words, w)
	}
	checked := 0
	for _, w := range words {
		if !isLetters(w) {
			continue
		}
		var fast, slow tokenizer
		fast.wordToken(w)
		slow.splitWord(w)
		if !slices.Equal(fast.toks, slow.toks) {
			t.Fatalf("%q: wordToken gives %v, splitWord %v", w, fast.toks, slow.toks)
		}
		for _, o := range []string{w, strings.ToUpper(w), strings.ToUpper(w[:1]) + w[1:], strings.ToUpper(w[:len(w)-1]) + w[len(w)-1:]} {
			if got, want := len(o) >= 2 && upperLetters(o), isAcronym(o); got != want {
				t.Fatalf("%q: acronym by upperLetters %v, isAcronym %v", o, got, want)
			}
		}
		checked++
	}
	if checked < 50000 {
		t.Fatalf("checked only %d words", checked)
	}
	for _, w := range []string{"", "node.js", "don't", "k8s", "café", "x_y", "ABC"} {
		if w != "" && isLetters(w) {
			t.Errorf("isLetters(%q) = true", w)
		}
	}
}

// TestToLower: the tokenizer's lower-casing is strings.ToLower's, for ASCII with and without
// capitals (the fast loop) and for Unicode (handed over); a string with nothing to lower comes
// back as it is, not copied (nor allocated for).
func TestToLower(t *testing.T) {
	for _, s := range []string{"", "a", "A", "already lower", "Explain In Two Sentences", "@[`{ AZaz",
		"ÉTÉ", "Über API", "mixed ÀB", "end É", "ǅ ß ΣΑΣ", "\x80\xff broken", "Z", "café au lait"} {
		got := toLower(s)
		if want := strings.ToLower(s); got != want {
			t.Errorf("toLower(%q) = %q, want %q", s, got, want)
		}
		if got == s && len(s) > 0 && unsafe.StringData(got) != unsafe.StringData(s) {
			t.Errorf("toLower(%q) copied a string that had nothing to lower", s)
		}
	}
	for _, s := range []string{"already lower", "café au lait"} {
		if n := testing.AllocsPerRun(10, func() { toLower(s) }); n != 0 {
			t.Errorf("toLower(%q) allocates %v times, though it has nothing to lower", s, n)
		}
	}
}

func FuzzToLower(f *testing.F) {
	for _, s := range []string{"Hello World", "ÉTÉ", "", "a\x80B"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := toLower(s), strings.ToLower(s); got != want {
			t.Fatalf("toLower(%q) = %q, want %q", s, got, want)
		}
	})
}

// TestMayNormKeepsKeys: the length and end-letter filter before the wordNorms lookup never
// rules out one of its keys, and does rule out common words that are not (else it saves
// nothing).
func TestMayNormKeepsKeys(t *testing.T) {
	for w := range wordNorms {
		if !mayNorm(w) {
			t.Errorf("mayNorm(%q) = false for a wordNorms key", w)
		}
	}
	out := 0
	common := strings.Fields("explain what a caching reverse proxy for an openai compatible request project the of and to in is it that")
	for _, w := range common {
		if _, key := wordNorms[w]; !key && !mayNorm(w) {
			out++
		}
	}
	if out < len(common)/2 {
		t.Errorf("mayNorm rules out %d of %d common words", out, len(common))
	}
}
