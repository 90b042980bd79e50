package semantic

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/zest-proxy/zest/internal/cputime"
	"github.com/zest-proxy/zest/semantic/verify"
)

const prompt30 = "How do I configure the reverse proxy so that repeated questions from the same user " +
	"are answered from the cache instead of calling the upstream model again every single time"

func BenchmarkLocalEmbed30Words(b *testing.B) {
	l, err := NewLocal()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := l.Embed(ctx, []string{prompt30}); err != nil { // decode the table outside the timing
		b.Fatal(err)
	}
	if n := len(Tokens(prompt30)); n != 30 {
		b.Fatalf("prompt has %d tokens, want 30", n)
	}
	b.ReportAllocs()
	cpu0, ops := cputime.Process(), 0
	for b.Loop() {
		if _, err := l.Embed(ctx, []string{prompt30}); err != nil {
			b.Fatal(err)
		}
		ops++
	}
	reportCPU(b, cpu0, ops)
}

// randomVecs returns n unit vectors of dimension dim from a fixed seed.
func randomVecs(n, dim int) [][]float32 {
	r := rand.New(rand.NewPCG(1, 2))
	flat := make([]float32, n*dim)
	out := make([][]float32, n)
	for i := range out {
		v := flat[i*dim : (i+1)*dim]
		for j := range v {
			v[j] = float32(r.NormFloat64())
		}
		normalize(v)
		out[i] = v
	}
	return out
}

// indexedEmbedder embeds the prompt "v<i>" as vecs[i] and anything else with
// query (or, for dim 100 with a nil query, the local embedder).
type indexedEmbedder struct {
	vecs  [][]float32
	query []float32
	local *Local
	dim   int
}

func (e *indexedEmbedder) Dim() int { return e.dim }
func (e *indexedEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i, t := range texts {
		if len(t) > 1 && t[0] == 'v' {
			if n, err := strconv.Atoi(t[1:]); err == nil {
				out[i] = e.vecs[n]
				continue
			}
		}
		if e.local != nil {
			v, err := e.local.Embed(ctx, []string{t})
			if err != nil {
				return nil, err
			}
			out[i] = v[0]
			continue
		}
		out[i] = append([]float32(nil), e.query...)
	}
	return out, nil
}

// BenchmarkLookup measures a Lookup, embedding included, with every entry in
// one partition (the worst case: the scan is per partition). At dim 100 the
// query is embedded by the local embedder; at dim 384 by a fake returning a
// fixed vector. Stored vectors are random, so every lookup scans everything
// and misses.
func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		for _, dim := range []int{100, 384} {
			b.Run(fmt.Sprintf("%dk/dim%d", n/1000, dim), func(b *testing.B) {
				benchLookup(b, IndexFlat, n, dim, 1)
			})
		}
	}
}

// BenchmarkLookupChromem is BenchmarkLookup over chromem-go collections, for
// comparison (100k is left out: one lookup takes a large fraction of a second).
func BenchmarkLookupChromem(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		for _, dim := range []int{100, 384} {
			b.Run(fmt.Sprintf("%dk/dim%d", n/1000, dim), func(b *testing.B) {
				benchLookup(b, IndexChromem, n, dim, 1)
			})
		}
	}
}

// BenchmarkLookupTemplated is a Lookup in a partition of 10k (and 100k) templated prompts, one
// word apart, embedded by the local embedder, as an app's prompts without numbers fill one:
// every stored vector is close to the query, so the quantised pre-scan skips few and most are
// scored in float32 (dotF32). The verifier then refuses the nearest ones: a miss.
func BenchmarkLookupTemplated(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) { benchLookupTemplated(b, n) })
	}
}

func benchLookupTemplated(b *testing.B, n int) {
	c := localVerifiedCache(b, Options{MaxEntries: n, MaxBytes: 1 << 30})
	ctx := context.Background()
	name := templatedPrompt
	for i := range n {
		if err := c.Store(ctx, Query{Namespace: "ns", Prompt: name(i)}, "id"+strconv.Itoa(i), []byte("answer"), time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	q := Query{Namespace: "ns", Prompt: name(n)}
	b.ReportAllocs()
	cpu0, ops := cputime.Process(), 0
	for b.Loop() {
		if _, ok, err := c.Lookup(ctx, q); ok || err != nil {
			b.Fatal(ok, err)
		}
		ops++
	}
	reportCPU(b, cpu0, ops)
}

// templatedPrompt is the i-th of prompts that differ only in a made-up name of 7 letters, as
// an app's templated prompts do (the local embedder knows none of the names).
func templatedPrompt(i int) string {
	h := uint64(i+1) * 0x9E3779B97F4A7C15
	w := make([]byte, 7)
	for j := range w {
		w[j] = byte('a' + h%26)
		h /= 26
	}
	return "Explain in two sentences what a caching reverse proxy does for the project " + string(w) + "."
}

// BenchmarkLookupPartitioned spreads 10k entries over 100 partitions.
func BenchmarkLookupPartitioned(b *testing.B) {
	for _, dim := range []int{100, 384} {
		b.Run(fmt.Sprintf("10k-in-100/dim%d", dim), func(b *testing.B) {
			benchLookup(b, IndexFlat, 10000, dim, 100)
		})
	}
}

func benchLookup(b *testing.B, kind IndexKind, n, dim, parts int) {
	emb := &indexedEmbedder{vecs: randomVecs(n, dim), dim: dim}
	if dim == LocalDim {
		l, err := NewLocal()
		if err == nil {
			err = l.Load()
		}
		if err != nil {
			b.Fatal(err)
		}
		emb.local = l
	} else {
		emb.query = randomVecs(1, dim)[0]
	}
	c, err := New(Options{Embedder: emb, MaxEntries: n, Threshold: 0.99, Index: kind})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	val := []byte("answer")
	for i := range n {
		q := Query{Namespace: "ns", Partition: strconv.Itoa(i % parts), Prompt: "v" + strconv.Itoa(i)}
		if err := c.Store(ctx, q, "id"+strconv.Itoa(i), val, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	q := Query{Namespace: "ns", Partition: "0", Prompt: prompt30}
	b.ReportAllocs()
	cpu0, ops := cputime.Process(), 0
	for b.Loop() {
		if _, _, err := c.Lookup(ctx, q); err != nil {
			b.Fatal(err)
		}
		ops++
	}
	reportCPU(b, cpu0, ops)
}

// reportCPU adds a cpu-ns/op metric: process CPU time per operation
// (garbage collection included), steadier than ns/op on a shared machine.
func reportCPU(b *testing.B, cpu0 time.Duration, ops int) {
	if d := cputime.Process() - cpu0; d > 0 && ops > 0 {
		b.ReportMetric(float64(d.Nanoseconds())/float64(ops), "cpu-ns/op")
	}
}

// localVerifiedCache returns a cache with the local embedder and the default verifier, as zest
// runs them, and opts' other fields (New loads the embedder).
func localVerifiedCache(b *testing.B, opts Options) *Cache {
	b.Helper()
	l, err := NewLocal()
	if err != nil {
		b.Fatal(err)
	}
	v, err := verify.New(verify.Options{})
	if err != nil {
		b.Fatal(err)
	}
	opts.Embedder, opts.Verifier = l, v
	c, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// benchFull runs op until c first evicts (it is full), then times op once per iteration,
// reporting allocations and cpu-ns/op.
func benchFull(b *testing.B, c *Cache, op func()) {
	b.Helper()
	for c.stats.evictions.Load() == 0 {
		op()
	}
	b.ReportAllocs()
	cpu0, ops := cputime.Process(), 0
	for b.Loop() {
		op()
		ops++
	}
	reportCPU(b, cpu0, ops)
}

// BenchmarkLookupNoPartition: the common lookup of a miss, a prompt whose partition (its
// numbers, its signature) holds nothing yet: no embedding, and no allocation for the key.
func BenchmarkLookupNoPartition(b *testing.B) {
	v, err := verify.New(verify.Options{})
	if err != nil {
		b.Fatal(err)
	}
	c, err := New(Options{Embedder: &indexedEmbedder{dim: 8}, Verifier: v, Threshold: 0.9})
	if err != nil {
		b.Fatal(err)
	}
	q := Query{Namespace: "k:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		Partition: "#7", Prompt: "What is 7 times 7, in a short answer?"}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, err := c.Lookup(context.Background(), q); ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkStoreFull is the store of a miss in a cache at its memory budget, its steady state:
// each store files a new single-entry partition (a prompt with its own numbers, as the bench's
// unique prompts are) and evicts the entry that expires soonest. The cache holds the default
// budget's worth of such entries (about 44k), so the expiry order and the tables are too large
// for the processor's caches, as in a long-running zest.
func BenchmarkStoreFull(b *testing.B) {
	c := localVerifiedCache(b, Options{})
	ctx := context.Background()
	ns := "k:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	part := "\x00m:gpt-4o-mini\x00s:0123456789abcdef0123456789abcdef"
	i := 0
	store := func() {
		n := strconv.Itoa(i)
		q := Query{Namespace: ns, Partition: part, Signature: "2 " + n,
			Prompt: "Explain in two sentences what a caching reverse proxy does. Request " + n + "."}
		if err := c.Store(ctx, q, "e"+strconv.Itoa(i)+"0123456789abcdef0123456789abcdef0123456789", nil, time.Hour); err != nil {
			b.Fatal(err)
		}
		i++
	}
	benchFull(b, c, store)
	b.ReportMetric(float64(len(c.entries)), "entries")
}

// BenchmarkMissTemplatedFull is the semantic work of a miss whose prompt differs from those
// stored only in a made-up name, as in the bench's zest-miss-words: a Lookup that finds
// nothing, then the Store of its answer with what the lookup read, in one partition of
// templated prompts at MaxEntries (each store evicts the oldest entry).
func BenchmarkMissTemplatedFull(b *testing.B) {
	c := localVerifiedCache(b, Options{MaxEntries: 10000, MaxBytes: 1 << 30})
	ctx := context.Background()
	i := 0
	miss := func() {
		q := Query{Namespace: "ns", Prompt: templatedPrompt(i)}
		h, ok, err := c.Lookup(ctx, q)
		if ok || err != nil {
			b.Fatal(ok, err)
		}
		q.Vector, q.Signature, q.Keys, q.Words = h.Vector, h.Signature, h.Keys, h.Words
		if err := c.Store(ctx, q, "id"+strconv.Itoa(i), nil, time.Hour); err != nil {
			b.Fatal(err)
		}
		i++
	}
	benchFull(b, c, miss)
}
