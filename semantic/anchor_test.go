package semantic

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zest-proxy/zest/internal/redisx/redistest"
	"github.com/zest-proxy/zest/semantic/verify"
)

var (
	localOnce sync.Once
	localEmb  *Local
	localErr  error
)

// anchoredCache returns a cache with the local embedder and the verifier behind v (nil: the
// default verifier).
func anchoredCache(t *testing.T, v Verifier, opts Options) *Cache {
	t.Helper()
	localOnce.Do(func() {
		localEmb, localErr = NewLocal()
		if localErr == nil {
			localErr = localEmb.Load()
		}
	})
	if localErr != nil {
		t.Fatal(localErr)
	}
	if v == nil {
		vv, err := verify.New(verify.Options{})
		if err != nil {
			t.Fatal(err)
		}
		v = vv
	}
	opts.Embedder, opts.Verifier = localEmb, v
	if opts.Threshold == 0 {
		opts.Threshold = LocalThreshold // as zest runs the local embedder
	}
	return mustNew(t, opts)
}

// asked is how a client asks templatedPrompt(i) again in other words.
func asked(i int) string {
	return "Please " + strings.Replace(strings.TrimSuffix(templatedPrompt(i), "."), "Explain", "explain", 1) + "?"
}

// TestAnchoredLookupFindsItsName: among prompts that differ only in a name the embedder does
// not know, and so all score the same, a lookup finds the one with its name, reading only the
// entries filed under that name.
func TestAnchoredLookupFindsItsName(t *testing.T) {
	c := anchoredCache(t, nil, Options{})
	ctx := context.Background()
	const n, target = 300, 299 // stored last: a full scan keeps the first of equal scores
	for i := range n {
		if err := c.Store(ctx, Query{Namespace: "ns", Prompt: templatedPrompt(i)}, fmt.Sprint("id", i), []byte("answer"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	h, ok, err := c.Lookup(ctx, Query{Namespace: "ns", Prompt: asked(target)})
	if err != nil || !ok || h.ID != fmt.Sprint("id", target) {
		t.Fatalf("Lookup(%q) = %q, %v, %v; want id%d", asked(target), h.ID, ok, err, target)
	}
	s := c.Stats()
	if s.Anchored != 1 {
		t.Errorf("Anchored = %d, want 1", s.Anchored)
	}
	if _, ok, _ := c.Lookup(ctx, Query{Namespace: "ns", Prompt: asked(n)}); ok {
		t.Error("a name never stored was found")
	}
	if got := c.Stats().Rejected - s.Rejected; got != 0 {
		t.Errorf("a lookup for a name nobody stored ran the verifier on %d candidates", got)
	}
}

// countingVerifier is the default verifier counting the comparisons its lookups make.
type countingVerifier struct {
	*verify.Verifier
	calls atomic.Int64
}

func (v *countingVerifier) Anchor(query string) (func(string) bool, [][3]uint64, func(string) bool, []uint64, string) {
	same, anchors, may, keys, words := v.Verifier.Anchor(query)
	return func(stored string) bool { v.calls.Add(1); return same(stored) }, anchors, may, keys, words
}

// Read counts the comparisons of the lookups that read the query once (see Reader).
func (v *countingVerifier) Read(query string) (string, func() (func(string) bool, [][3]uint64, func(string) bool, []uint64, string)) {
	sig, anchor := v.Verifier.Read(query)
	if anchor == nil {
		return sig, nil // Lookup calls Anchor, which counts
	}
	return sig, func() (func(string) bool, [][3]uint64, func(string) bool, []uint64, string) {
		same, anchors, may, keys, words := anchor()
		return func(stored string) bool { v.calls.Add(1); return same(stored) }, anchors, may, keys, words
	}
}

// readCounter is the default verifier counting how often it is asked to read a query, and how.
type readCounter struct {
	*verify.Verifier
	reads, signs, anchors atomic.Int64
}

func (v *readCounter) Read(query string) (string, func() (func(string) bool, [][3]uint64, func(string) bool, []uint64, string)) {
	v.reads.Add(1)
	return v.Verifier.Read(query)
}

func (v *readCounter) Signature(query string) string {
	v.signs.Add(1)
	return v.Verifier.Signature(query)
}

func (v *readCounter) Anchor(query string) (func(string) bool, [][3]uint64, func(string) bool, []uint64, string) {
	v.anchors.Add(1)
	return v.Verifier.Anchor(query)
}

// TestLookupReadsQueryOnce: with a verifier that can read a query once for its signature and
// its anchors (the default one), a lookup does, and finds what reading it twice found.
func TestLookupReadsQueryOnce(t *testing.T) {
	vv, err := verify.New(verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v := &readCounter{Verifier: vv}
	c := anchoredCache(t, v, Options{})
	ctx := context.Background()
	const n, target = 50, 31
	for i := range n {
		if err := c.Store(ctx, Query{Namespace: "ns", Prompt: templatedPrompt(i)}, fmt.Sprint("id", i), []byte("a"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	v.reads.Store(0)
	v.signs.Store(0)
	v.anchors.Store(0)
	h, ok, err := c.Lookup(ctx, Query{Namespace: "ns", Prompt: asked(target)}) // "two": a signature to read
	if err != nil || !ok || h.ID != fmt.Sprint("id", target) {
		t.Fatalf("Lookup(%q) = %q, %v, %v; want id%d", asked(target), h.ID, ok, err, target)
	}
	if r, s, a := v.reads.Load(), v.signs.Load(), v.anchors.Load(); r != 1 || s != 0 || a != 0 {
		t.Errorf("the query was read %d times at once, signed %d and anchored %d times apart; want 1, 0, 0", r, s, a)
	}
	// A miss carries what the one reading found, for the Store that follows.
	v.reads.Store(0)
	m, ok, err := c.Lookup(ctx, Query{Namespace: "ns", Prompt: asked(n)})
	if err != nil || ok {
		t.Fatalf("Lookup(%q) = %q, %v, %v; want a miss", asked(n), m.ID, ok, err)
	}
	if m.Signature != "2" || len(m.Keys) == 0 || m.Words == "" || v.reads.Load() != 1 {
		t.Errorf("miss carries signature %q, %d keys, words %q after %d readings", m.Signature, len(m.Keys), m.Words, v.reads.Load())
	}
	if k, w := vv.Keys(asked(n)); !slices.Equal(k, m.Keys) || w != m.Words {
		t.Errorf("miss carries keys %v words %q, Keys gives %v %q", m.Keys, m.Words, k, w)
	}
}

// TestAnchoredLookupSkipsChanceKeys: an entry that shares a key with the query only by chance
// (another name with the same first letters) is ruled out on its words, without the verifier.
func TestAnchoredLookupSkipsChanceKeys(t *testing.T) {
	vv, err := verify.New(verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v := &countingVerifier{Verifier: vv}
	c := anchoredCache(t, v, Options{})
	ctx := context.Background()
	for i := range 100 {
		if err := c.Store(ctx, Query{Namespace: "ns", Prompt: templatedPrompt(i)}, fmt.Sprint("id", i), []byte("a"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	stored := strings.Fields(templatedPrompt(5))
	name := strings.TrimSuffix(stored[len(stored)-1], ".")
	chance := strings.Replace(templatedPrompt(5), name, name[:3]+"qqqq", 1) // same head, other tail
	v.calls.Store(0)
	if h, ok, err := c.Lookup(ctx, Query{Namespace: "ns", Prompt: chance}); ok || err != nil {
		t.Fatalf("Lookup(%q) = %q, %v, %v; want a miss", chance, h.ID, ok, err)
	}
	if n := v.calls.Load(); n != 0 || c.Stats().Anchored != 1 {
		t.Errorf("anchored lookups %d (want 1), verifier comparisons %d (want 0)", c.Stats().Anchored, n)
	}
}

// hidingKeys is the default verifier, except that it keys no prompt that contains skip.
type hidingKeys struct {
	*verify.Verifier
	skip string
}

func (h hidingKeys) Keys(prompt string) ([]uint64, string) {
	if strings.Contains(prompt, h.skip) {
		return nil, ""
	}
	return h.Verifier.Keys(prompt)
}

// TestUnfiledEntryIsRead: an entry without keys (a long prompt, say) is read by every anchored
// lookup of its partition, since the postings cannot say whether it matches.
func TestUnfiledEntryIsRead(t *testing.T) {
	v, err := verify.New(verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := anchoredCache(t, hidingKeys{v, "volcano"}, Options{})
	ctx := context.Background()
	for i := range 100 {
		if err := c.Store(ctx, Query{Namespace: "ns", Prompt: templatedPrompt(i)}, fmt.Sprint("id", i), []byte("a"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	unkeyed := "Explain in two sentences what a caching reverse proxy does for the volcano project zzq."
	if err := c.Store(ctx, Query{Namespace: "ns", Prompt: unkeyed}, "unkeyed", []byte("a"), time.Hour); err != nil {
		t.Fatal(err)
	}
	h, ok, err := c.Lookup(ctx, Query{Namespace: "ns", Prompt: "Please explain in two sentences what a caching reverse proxy does for the volcano project zzq?"})
	if err != nil || !ok || h.ID != "unkeyed" {
		t.Fatalf("Lookup = %q, %v, %v; want the unkeyed entry", h.ID, ok, err)
	}
	if a := c.Stats().Anchored; a != 1 {
		t.Errorf("Anchored = %d, want 1", a)
	}
	checkPostings(t, c)
	c.Delete("unkeyed")
	checkPostings(t, c)
	if _, ok, _ := c.Lookup(ctx, Query{Namespace: "ns", Prompt: asked(7)}); !ok || c.Stats().Anchored != 2 {
		t.Errorf("after the unkeyed entry left: hit %v, Anchored %d; want a hit through the postings", ok, c.Stats().Anchored)
	}
}

// checkPostings verifies that the postings file exactly the keyed entries of each index, each
// under its keys at the position it records.
func checkPostings(t *testing.T, c *Cache) {
	t.Helper()
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, p := range c.parts {
		filed, unkeyed := map[*entry]int{}, 0
		for j, e := range p.unfiled {
			if e.keyed || int(e.upos) != j || c.entries[e.id] != e || e.part != p || e.pending {
				t.Fatalf("entry %s misplaced in unfiled at %d", e.id, j)
			}
		}
		for k, list := range p.posts {
			if len(list) == 0 {
				t.Errorf("empty list kept under %x", k)
			}
			if _, ok := p.saturated[k]; ok {
				t.Errorf("saturated key %x still has a list", k)
			}
			for j, e := range list {
				i, ok := slices.BinarySearch(e.keys, k)
				if !ok || int(e.pos[i]) != j || c.entries[e.id] != e || e.part != p || e.pending {
					t.Fatalf("entry %s misfiled under %x at %d", e.id, k, j)
				}
				filed[e]++
			}
		}
		indexed := 0
		for _, e := range c.entries {
			if e.part != p || e.pending {
				continue
			}
			indexed++
			switch {
			case p.posts == nil:
				if n := slices.Index(p.few, e); n < 0 || e.pos != nil {
					t.Errorf("entry %s of a small partition not in its list, or filed", e.id)
				}
			case !e.keyed:
				unkeyed++
			default:
				want := 0
				for i, k := range e.keys {
					_, sat := p.saturated[k]
					if sat != (e.pos[i] < 0) {
						t.Errorf("entry %s: key %x saturated %v, position %d", e.id, k, sat, e.pos[i])
					}
					if !sat {
						want++
					}
				}
				if filed[e] != want {
					t.Errorf("entry %s filed under %d of its %d unsaturated keys", e.id, filed[e], want)
				}
			}
		}
		if unkeyed != len(p.unfiled) {
			t.Errorf("partition lists %d unfiled entries, holds %d", len(p.unfiled), unkeyed)
		}
		if p.posts == nil && (len(p.few) != indexed || len(p.unfiled) != 0) {
			t.Errorf("small partition lists %d entries and %d unfiled, holds %d", len(p.few), len(p.unfiled), indexed)
		}
		if p.posts != nil && len(p.few) != 0 {
			t.Errorf("partition with postings still lists %d entries as few", len(p.few))
		}
	}
}

// TestPostingsFollowEntries: replacing, deleting, expiring and evicting entries keeps the
// postings exact, every live entry is found by its name and no gone one is, and the charge
// returns to zero once the cache is empty.
func TestPostingsFollowEntries(t *testing.T) {
	clock := newFakeClock()
	c := anchoredCache(t, nil, Options{Now: clock.Now, MaxEntries: 250})
	ctx := context.Background()
	prompt := map[string]int{} // id → templatedPrompt index
	store := func(id string, i int, ttl time.Duration) {
		t.Helper()
		if err := c.Store(ctx, Query{Namespace: "ns", Prompt: templatedPrompt(i)}, id, nil, ttl); err != nil {
			t.Fatal(err)
		}
		prompt[id] = i
	}
	for i := range 200 {
		ttl := time.Hour
		if i%10 == 3 {
			ttl = time.Minute
		}
		store(fmt.Sprint("id", i), i, ttl)
	}
	for i := 0; i < 200; i += 7 { // the same id, another prompt
		store(fmt.Sprint("id", i), 1000+i, time.Hour)
	}
	for i := 1; i < 200; i += 9 {
		c.Delete(fmt.Sprint("id", i))
		delete(prompt, fmt.Sprint("id", i))
	}
	clock.Advance(2 * time.Minute)
	for i := 200; i < 300; i++ { // past MaxEntries: the sweep and evictions take the oldest
		store(fmt.Sprint("id", i), i, time.Hour)
	}
	checkPostings(t, c)
	live := 0
	for id, i := range prompt {
		h, ok, err := c.Lookup(ctx, Query{Namespace: "ns", Prompt: asked(i)})
		if err != nil {
			t.Fatal(err)
		}
		c.mu.RLock()
		_, held := c.entries[id]
		c.mu.RUnlock()
		switch {
		case held && (!ok || h.ID != id):
			t.Errorf("%s (prompt %d) held but Lookup gave %q, %v", id, i, h.ID, ok)
		case !held && ok:
			t.Errorf("%s (prompt %d) gone but Lookup gave %q", id, i, h.ID)
		}
		if held {
			live++
		}
	}
	for _, i := range []int{1, 7, 13} { // deleted, replaced by prompt 1007, expired
		if h, ok, _ := c.Lookup(ctx, Query{Namespace: "ns", Prompt: asked(i)}); ok {
			t.Errorf("prompt %d is gone but Lookup gave %q", i, h.ID)
		}
	}
	if live < 200 || c.Stats().Anchored == 0 {
		t.Errorf("%d live entries checked, %d anchored lookups", live, c.Stats().Anchored)
	}
	for id := range prompt {
		c.Delete(id)
	}
	checkPostings(t, c)
	if s := c.Stats(); s.Entries != 0 || s.Bytes != 0 || s.Partitions != 0 {
		t.Errorf("emptied cache: %d entries, %d bytes charged, %d partitions", s.Entries, s.Bytes, s.Partitions)
	}
}

// TestSharedEntriesAreAnchored: an entry a replica receives through Redis is filed under its
// keys like one stored locally, so an anchored lookup there finds it.
func TestSharedEntriesAreAnchored(t *testing.T) {
	addr, prefix := redistest.Addr(t), redistest.Prefix(t)
	v, err := verify.New(verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	withVerifier := func(o *Options) { o.Verifier = v }
	anchoredCache(t, v, Options{}) // loads the local embedder
	a := sharedReplicaWith(t, addr, prefix, localEmb, nil, withVerifier)
	ctx := context.Background()
	const n = 100
	for i := range n {
		if err := a.Store(ctx, Query{Namespace: "ns", Prompt: templatedPrompt(i)}, fmt.Sprint("id", i), []byte("answer"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	b := sharedReplicaWith(t, addr, prefix, localEmb, nil, withVerifier) // warmed from the stream
	checkPostings(t, b)
	for _, i := range []int{0, 42, n - 1} {
		h, ok, err := b.Lookup(ctx, Query{Namespace: "ns", Prompt: asked(i)})
		if err != nil || !ok || h.ID != fmt.Sprint("id", i) {
			t.Errorf("replica b: Lookup(%q) = %q, %v, %v", asked(i), h.ID, ok, err)
		}
	}
	if got := b.Stats().Anchored; got != 3 {
		t.Errorf("replica b: Anchored = %d, want 3", got)
	}
}

// TestSmallPartitionFindsItsName: a partition too small for postings is scanned, and every
// entry that scores as well is ruled out on its words before the nearest are picked, so each
// name is found however few the prompts.
func TestSmallPartitionFindsItsName(t *testing.T) {
	for _, n := range []int{2, 5, 8, smallIndex} {
		c := anchoredCache(t, nil, Options{})
		ctx := context.Background()
		for i := range n {
			if err := c.Store(ctx, Query{Namespace: "ns", Prompt: templatedPrompt(i)}, fmt.Sprint("id", i), []byte("a"), time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		for i := range n {
			if h, ok, err := c.Lookup(ctx, Query{Namespace: "ns", Prompt: asked(i)}); err != nil || !ok || h.ID != fmt.Sprint("id", i) {
				t.Errorf("%d prompts: Lookup(%q) = %q, %v, %v", n, asked(i), h.ID, ok, err)
			}
		}
		checkPostings(t, c)
	}
}

// TestSharedPrefixFindsItsName: names that share their first letters (identifiers with a common
// prefix) are all filed under one key, too many to read; the entries filed under the query's
// exact word are read first, so the name is still found.
func TestSharedPrefixFindsItsName(t *testing.T) {
	c := anchoredCache(t, nil, Options{})
	ctx := context.Background()
	name := func(i int) string {
		w := strings.Fields(templatedPrompt(i))
		return "getuser" + strings.TrimSuffix(w[len(w)-1], ".")
	}
	prompt := func(i int) string { return "What does the function " + name(i) + " return in our codebase?" }
	const n = 200
	for i := range n {
		if err := c.Store(ctx, Query{Namespace: "ns", Prompt: prompt(i)}, fmt.Sprint("id", i), []byte("a"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	for _, i := range []int{0, 77, n - 1} {
		q := "Please tell me what the function " + name(i) + " returns in our codebase?"
		if h, ok, err := c.Lookup(ctx, Query{Namespace: "ns", Prompt: q}); err != nil || !ok || h.ID != fmt.Sprint("id", i) {
			t.Errorf("Lookup(%q) = %q, %v, %v; want id%d", q, h.ID, ok, err, i)
		}
	}
	if a := c.Stats().Anchored; a != 3 {
		t.Errorf("Anchored = %d, want 3", a)
	}
	if h, ok, _ := c.Lookup(ctx, Query{Namespace: "ns", Prompt: prompt(n)}); ok {
		t.Errorf("a name never stored was found: %q", h.ID)
	}
}

// TestExactReadFallsBackToScan: when the entries filed under the query's exact word are not it,
// the lookup still scans, which may find the word's misspelling.
func TestExactReadFallsBackToScan(t *testing.T) {
	c := anchoredCache(t, nil, Options{})
	ctx := context.Background()
	store := func(id, prompt string) {
		t.Helper()
		if err := c.Store(ctx, Query{Namespace: "ns", Prompt: prompt}, id, []byte("a"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	store("first", "What does the function getuserqqqqqqq return in our codebase?") // filed last
	// First in scan order: a misspelling of the name asked below, one edit away.
	store("typo", "What does the function getuserzorblx return in our codebase?")
	for i := range 198 {
		w := strings.Fields(templatedPrompt(i))
		store(fmt.Sprint("id", i), "What does the function getuser"+strings.TrimSuffix(w[len(w)-1], ".")+" return in our codebase?")
	}
	store("other", "How do I delete the function getuserzorblax from our codebase?") // the exact word, another question
	h, ok, err := c.Lookup(ctx, Query{Namespace: "ns", Prompt: "What does the function getuserzorblax return in our codebase?"})
	if err != nil || !ok || h.ID != "typo" {
		t.Errorf("Lookup = %q, %v, %v; want the entry one edit away", h.ID, ok, err)
	}
	if s := c.Stats(); s.Anchored != 1 || s.Rejected == 0 {
		t.Errorf("anchored lookups %d (want 1), rejected %d (want the exact word's entry)", s.Anchored, s.Rejected)
	}
}

// TestCommonWordsSaturate: in a partition of prompts made from one template, the template's
// words stop being filed (a lookup never reads a list that long), the names stay filed, every
// name is still found by reading its own list, and entries leave cleanly.
func TestCommonWordsSaturate(t *testing.T) {
	c := anchoredCache(t, nil, Options{})
	ctx := context.Background()
	const n = 150
	for i := range n {
		if err := c.Store(ctx, Query{Namespace: "ns", Prompt: templatedPrompt(i)}, fmt.Sprint("id", i), nil, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	checkPostings(t, c)
	c.mu.RLock()
	if len(c.parts) != 1 {
		t.Fatalf("%d partitions, want 1", len(c.parts))
	}
	keys, slots, saturated := 0, 0, 0
	for _, p := range c.parts {
		for _, list := range p.posts {
			slots += len(list)
		}
		saturated = len(p.saturated)
	}
	for _, e := range c.entries {
		keys += len(e.keys)
	}
	c.mu.RUnlock()
	if saturated == 0 || 3*slots > keys {
		t.Errorf("%d keys saturated, postings hold %d of the entries' %d keys; want the template's words dropped", saturated, slots, keys)
	}
	for i := range n {
		before := c.Stats().Anchored
		h, ok, err := c.Lookup(ctx, Query{Namespace: "ns", Prompt: asked(i)})
		if err != nil || !ok || h.ID != fmt.Sprint("id", i) {
			t.Fatalf("prompt %d: Lookup = %q, %v, %v", i, h.ID, ok, err)
		}
		if c.Stats().Anchored != before+1 {
			t.Fatalf("prompt %d was not found through its name's list", i)
		}
	}
	for i := 0; i < n; i += 2 {
		c.Delete(fmt.Sprint("id", i))
	}
	checkPostings(t, c)
	for i := 1; i < n; i += 2 {
		if h, ok, _ := c.Lookup(ctx, Query{Namespace: "ns", Prompt: asked(i)}); !ok || h.ID != fmt.Sprint("id", i) {
			t.Fatalf("after deletions, prompt %d: Lookup = %q, %v", i, h.ID, ok)
		}
	}
}

// TestSaturationFollowsChurn: prompts from two templates that share some words, stored,
// replaced and deleted in a fixed pseudo-random order, so that some keys saturate part way
// (the shared words, then the words of the commoner template) while others stay filed, and
// some names are short and begin as those words do (their one group then has a saturated key
// and their exact key: a lookup must read the latter). After
// every step of churn the postings are exact, every live prompt is found, and no deleted or
// replaced one is.
func TestSaturationFollowsChurn(t *testing.T) {
	c := anchoredCache(t, nil, Options{MaxEntries: 400})
	ctx := context.Background()
	heads := [...]string{"exp", "sen", "cac", "rev", "pro"} // the templates' words begin so
	prompt := func(i int) string {
		name := templatedPrompt(i)
		name = name[strings.LastIndexByte(name, ' ')+1 : len(name)-1]
		if k := i / 4; i%4 == 1 {
			// A short name (no tail key) that begins as common words do: filed only under
			// saturated and exact keys, it must be found by its exact key.
			name = heads[k%5] + "q" + string(rune('a'+k/5%26)) + string(rune('a'+k/130%26))
		}
		if i%3 == 0 {
			return "Summarize in two sentences how a caching reverse proxy helps the team " + name + "."
		}
		return templatedPrompt(i)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	live := map[string]int{} // id → prompt index
	next := 0
	for step := range 6 {
		for range 120 {
			id := fmt.Sprint("id", rng.IntN(300))
			if err := c.Store(ctx, Query{Namespace: "ns", Prompt: prompt(next)}, id, nil, time.Hour); err != nil {
				t.Fatal(err)
			}
			live[id] = next
			next++
		}
		for range 40 {
			id := fmt.Sprint("id", rng.IntN(300))
			c.Delete(id)
			delete(live, id)
		}
		checkPostings(t, c)
		c.mu.RLock()
		saturated := 0
		for _, p := range c.parts {
			saturated += len(p.saturated)
		}
		c.mu.RUnlock()
		if step == 5 && saturated == 0 {
			t.Fatal("no key saturated")
		}
		anchored := c.Stats().Anchored
		held := map[int]bool{}
		for id, i := range live {
			held[i] = true
			if h, ok, err := c.Lookup(ctx, Query{Namespace: "ns", Prompt: prompt(i)}); err != nil || !ok || h.ID != id {
				t.Fatalf("step %d: prompt %d stored as %s: Lookup = %q, %v, %v", step, i, id, h.ID, ok, err)
			}
		}
		for i := max(0, next-160); i < next; i++ { // the latest prompts, deleted or replaced or not
			if h, ok, _ := c.Lookup(ctx, Query{Namespace: "ns", Prompt: prompt(i)}); ok != held[i] {
				t.Fatalf("step %d: prompt %d held %v, Lookup gave %q, %v", step, i, held[i], h.ID, ok)
			}
		}
		if step == 5 && c.Stats().Anchored == anchored {
			t.Error("no lookup read the postings")
		}
	}
	for id := range live {
		c.Delete(id)
	}
	checkPostings(t, c)
	if s := c.Stats(); s.Entries != 0 || s.Bytes != 0 || s.Partitions != 0 {
		t.Errorf("emptied cache: %d entries, %d bytes charged, %d partitions", s.Entries, s.Bytes, s.Partitions)
	}
}
