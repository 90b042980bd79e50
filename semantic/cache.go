package semantic

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/zest-proxy/zest/internal/redisx"
)

// Verifier decides whether a candidate's stored prompt means the same as the
// query's prompt. Same must be safe for concurrent use.
type Verifier interface {
	Same(query, stored string) bool
}

// Preparer is implemented by a Verifier that can read a query once for all the candidates of
// a lookup: Prepare(query)(stored) must equal Same(query, stored).
type Preparer interface {
	Prepare(query string) func(stored string) bool
}

// Signer is implemented by a Verifier that can sum up what two prompts must share to be the
// Same (say, their numbers). The cache then keeps prompts with different signatures in different
// partitions, so a lookup never scans entries the verifier would refuse. Invariant required:
// Same(a, b) implies Signature(a) == Signature(b).
type Signer interface {
	Signature(prompt string) string
}

// VerifierFunc adapts a function to the Verifier interface.
type VerifierFunc func(query, stored string) bool

// Same calls f.
func (f VerifierFunc) Same(query, stored string) bool { return f(query, stored) }

// Defaults applied by New to zero Options fields.
const (
	DefaultThreshold    = 0.92
	DefaultMaxEntries   = 100000
	DefaultMaxBytes     = 32 << 20
	DefaultTopK         = 4
	DefaultEmbedTimeout = 200 * time.Millisecond
)

// Options configures New.
type Options struct {
	// Embedder turns prompts into vectors. Required.
	Embedder Embedder
	// Verifier checks each candidate above the threshold, best first; nil
	// accepts the best candidate above the threshold.
	Verifier Verifier
	// Threshold is the least cosine similarity of a hit; 0 means
	// DefaultThreshold (0.92). A Query may raise it, never lower it.
	Threshold float32
	// MaxEntries caps the number of entries; 0 means DefaultMaxEntries
	// (100000). Beyond it, expired entries go first, then the entry that
	// expires soonest (the oldest, for equal TTLs).
	MaxEntries int
	// MaxBytes is the memory budget of the entries: each is charged its vector, prompt, id,
	// value (when the cache holds one; see Store) and a fixed overhead. 0 means
	// DefaultMaxBytes (32 MiB). Beyond it, entries go in the same order as beyond MaxEntries.
	MaxBytes int64
	// TopK is how many nearest candidates Lookup considers; 0 means
	// DefaultTopK (4).
	TopK int
	// EmbedTimeout bounds each embedding; 0 means DefaultEmbedTimeout (200ms).
	// When it passes, Lookup and Store return an error (the caller fails open). The local
	// embedder, which computes in microseconds and waits for nothing, runs without it.
	EmbedTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Index selects the vector index of each partition; "" means IndexFlat.
	Index IndexKind
	// Logger receives debug logs of failures; nil discards them.
	Logger *slog.Logger
	// MaxRefusedPairs bounds the (query, stored prompt) pairs refused after a Report; 0 means
	// DefaultMaxRefusedPairs (10000). Beyond it the oldest refusal is forgotten first.
	MaxRefusedPairs int
	// Redis, when set, shares the entries with every replica on the same Redis (see
	// shared.go): stores and deletes are appended to a stream that each replica follows, and a
	// new replica warms its index from it. nil = this replica only. Call Close to stop.
	Redis *redisx.Client
	// StreamMaxLen caps the Redis stream (approximately); 0 means MaxEntries. Used only
	// with Redis.
	StreamMaxLen int
	// MaxPendingDeletes bounds the deletes, purges and refusals kept, while Redis is
	// unreachable, to append when it is back; beyond it they collapse into one purge of every
	// replica's index (the refusals are kept). 0 means redisx.DefaultBacklog (10000). Used only
	// with Redis.
	MaxPendingDeletes int
}

// Query names what a prompt is compared against.
type Query struct {
	// Namespace is the tenant; entries never cross namespaces.
	Namespace string
	// Partition is the caller's opaque hash of everything besides the last
	// user message that changes the answer (model, parameters, system
	// prompt, tools, response_format, earlier turns). It must match exactly.
	Partition string
	// Prompt is the last user message, compared by embedding.
	Prompt string
	// Threshold raises the cache's threshold for this query; values at or
	// below the cache's threshold (including 0) are ignored.
	Threshold float32
	// Vector, when set, is Prompt's embedding as a Lookup returned it (Hit.Vector),
	// so a Store after a missed Lookup does not embed the prompt again.
	Vector []float32
	// Signature, when set, is the verifier's signature of Prompt as a Lookup
	// returned it (Hit.Signature), so a Store does not compute it again.
	Signature string
	// Keys and Words, when Keys is set, are the verifier's keys and words of Prompt as a Lookup
	// returned them (Hit.Keys, Hit.Words), so a Store does not read the prompt again.
	Keys  []uint64
	Words string

	signed bool // Signature is the signature, even when "" (Lookup read it)
}

// Hit is a cached answer found by Lookup. Value is shared with the cache and
// must not be modified.
type Hit struct {
	// Vector is the query's embedding whenever Lookup computed it, on a miss too
	// (pass it on in Query.Vector). Nil when Lookup did not embed.
	Vector []float32
	// Signature is the verifier's signature of the query's prompt ("" without a Signer).
	Signature string
	// Keys and Words are the verifier's keys and words of the query's prompt when Lookup read
	// them (see Anchorer).
	Keys       []uint64
	Words      string
	ID         string
	Value      []byte
	Similarity float32
	Stored     time.Time
	Prompt     string
}

// Cache is the semantic cache: one vector index per (namespace, partition)
// (a flat scan, or a chromem-go collection), guarded by the Cache's own lock,
// plus an entry table that gives every entry a TTL and the cache a size cap.
// It is safe for concurrent use.
//
// Invariants: an expired entry is never returned; an entry is only ever
// compared with queries of the same namespace and partition; ids are unique
// across the cache, and storing an existing id replaces its entry.
type Cache struct {
	emb          Embedder
	verifier     Verifier
	signer       Signer   // the verifier, when it signs prompts
	anchorer     Anchorer // the verifier, when it anchors prompts
	reader       Reader   // the verifier, when it signs and anchors a query in one reading
	threshold    float32
	maxEntries   int
	maxBytes     int64
	bytes        int64 // charged bytes of all entries, under mu
	topK         int
	embedTimeout time.Duration
	now          func() time.Time
	log          *slog.Logger
	kind         IndexKind

	mu      sync.RWMutex
	parts   map[string]*partition
	entries map[string]*entry
	expiry  expiryQueue
	seq     uint64
	dim     int // the length of the vectors seen so far: what a pending entry is charged for

	stats    counters
	refusals refusals
	share    *share // nil = not shared
}

// partition holds the index of one namespace and partition.
type partition struct {
	key  string // appendKey of its entries
	ns   string
	idx  vectorIndex // nil until its first vector
	cost int64       // what the partition itself is charged against MaxBytes (partitionCost)
	// pending are entries filed without a vector (see Store): embedded and put in idx when
	// a lookup first reaches the partition. Its first entry is kept in firstPending: most
	// partitions are a prompt's own (its numbers) and never hold a second.
	pending      []*entry
	firstPending [1]*entry
	// posts files the entries of idx under their keys (see Anchorer); unfiled holds those of
	// idx that have no keys, which every anchored lookup reads. Until idx outgrows smallIndex
	// (lookups scan it), posts is nil and few lists the entries of idx instead. All empty
	// without an Anchorer.
	posts   postings
	unfiled []*entry
	few     []*entry
	// saturated are the keys under which no entry is filed any more (see saturateMin).
	saturated map[uint64]struct{}
}

// size is how many entries the partition holds, pending ones included.
func (p *partition) size() int {
	n := len(p.pending)
	if p.idx != nil {
		n += p.idx.count()
	}
	return n
}

// entry is one stored answer.
type entry struct {
	id      string
	part    *partition
	value   []byte // nil when the caller keeps the answer (see Store)
	cost    int64
	prompt  string
	stored  time.Time
	expires time.Time
	seq     uint64 // insertion order, breaks expiry ties (older first)
	// dequeued is set when the entry leaves the cache (its expiry item may stay queued, marked).
	dequeued bool

	servedMu sync.Mutex
	served   []string // query prompts this entry was last served for (see Report)

	pending bool // in part.pending, not yet in part.idx

	// keys are the verifier's keys of prompt, sorted, and words its words, when keyed; pos[i]
	// is the entry's place in part.posts[keys[i]] while it is in part.idx (-1: the key is
	// saturated there, see saturateMin).
	keys  []uint64
	words string
	pos   []int32
	upos  int32 // the entry's place in part.unfiled, when unkeyed and in part.idx
	keyed bool
}

// New returns a Cache. It fails if opts.Embedder is nil or a field is out of
// range. If the embedder has a Load() error method (Local does), New calls it
// so that the first Lookup does not pay for loading.
func New(opts Options) (*Cache, error) {
	if opts.Embedder == nil {
		return nil, errors.New("semantic: Options.Embedder is required")
	}
	if opts.Threshold < 0 || opts.Threshold > 1 || opts.MaxEntries < 0 || opts.MaxBytes < 0 || opts.TopK < 0 || opts.EmbedTimeout < 0 {
		return nil, errors.New("semantic: Options out of range")
	}
	switch opts.Index {
	case "":
		opts.Index = IndexFlat
	case IndexFlat, IndexChromem:
	default:
		return nil, fmt.Errorf("semantic: unknown index kind %q", opts.Index)
	}
	if l, ok := opts.Embedder.(interface{ Load() error }); ok {
		if err := l.Load(); err != nil {
			return nil, err
		}
	}
	c := &Cache{
		emb:          opts.Embedder,
		verifier:     opts.Verifier,
		threshold:    opts.Threshold,
		maxEntries:   opts.MaxEntries,
		maxBytes:     opts.MaxBytes,
		topK:         opts.TopK,
		embedTimeout: opts.EmbedTimeout,
		now:          opts.Now,
		log:          opts.Logger,
		kind:         opts.Index,
	}
	if sg, ok := opts.Verifier.(Signer); ok {
		c.signer = sg
	}
	if a, ok := opts.Verifier.(Anchorer); ok {
		c.anchorer = a
	}
	if r, ok := opts.Verifier.(Reader); ok && c.signer != nil && c.anchorer != nil {
		c.reader = r
	}
	if c.threshold == 0 {
		c.threshold = DefaultThreshold
	}
	if c.maxEntries == 0 {
		c.maxEntries = DefaultMaxEntries
	}
	if c.maxBytes == 0 {
		c.maxBytes = DefaultMaxBytes
	}
	if c.topK == 0 {
		c.topK = DefaultTopK
	}
	if c.embedTimeout == 0 {
		c.embedTimeout = DefaultEmbedTimeout
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.refusals.max = opts.MaxRefusedPairs
	if c.refusals.max <= 0 {
		c.refusals.max = DefaultMaxRefusedPairs
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.reset()
	if opts.Redis != nil {
		if opts.StreamMaxLen < 0 {
			return nil, errors.New("semantic: StreamMaxLen must not be negative")
		}
		c.share = newShare(c, opts.Redis, cmp.Or(opts.StreamMaxLen, c.maxEntries), opts.MaxPendingDeletes)
	}
	return c, nil
}

// reset drops everything; c.mu must be held (or c not yet shared).
func (c *Cache) reset() {
	c.parts = make(map[string]*partition)
	c.entries = make(map[string]*entry)
	c.expiry = newExpiryQueue(c.now())
	c.bytes = 0
}

// appendKey appends the index key of q to dst: its namespace, length-prefixed so that no
// choice of the strings can make one tenant's key equal another's, its partition, and the
// verifier's signature of the prompt when there is a verifier. It returns the signature used.
// A caller that only probes c.parts can build the key on its stack: map[string(b)] allocates
// nothing.
func (c *Cache) appendKey(dst []byte, q Query) (key []byte, sig string) {
	dst = strconv.AppendInt(dst, int64(len(q.Namespace)), 10)
	dst = append(dst, ':')
	dst = append(dst, q.Namespace...)
	dst = append(dst, q.Partition...)
	if c.signer == nil {
		return dst, ""
	}
	sig = q.Signature
	if sig == "" && !q.signed {
		sig = c.signer.Signature(q.Prompt)
	}
	dst = append(dst, "\x00#"...)
	return append(dst, sig...), sig
}

// MayBlock reports whether Store may wait on the network: an embedder other than the local one,
// or Redis sharing. Callers bound such a Store with a deadline; any other Store only computes.
func (c *Cache) MayBlock() bool {
	_, local := c.emb.(*Local)
	return !local || c.share != nil
}

// embed embeds one prompt under the embed deadline (given, when set, is its vector already).
// ok is false for a prompt with nothing to embed (the zero vector).
func (c *Cache) embed(ctx context.Context, prompt string, given []float32) (vec []float32, ok bool, err error) {
	if len(given) > 0 {
		return given, true, nil
	}
	vecs, err := c.embedMany(ctx, []string{prompt})
	if err != nil || vecs[0] == nil {
		return nil, false, err
	}
	return vecs[0], true, nil
}

// embedMany embeds prompts in one call under the embed deadline, each vector normalised; a
// prompt with nothing to embed gets nil.
func (c *Cache) embedMany(ctx context.Context, prompts []string) ([][]float32, error) {
	if _, inProcess := c.emb.(*Local); !inProcess {
		// The local embedder computes in microseconds and waits for nothing: no timer for it.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.embedTimeout)
		defer cancel()
	}
	vecs, err := c.emb.Embed(ctx, prompts)
	if err == nil && ctx.Err() != nil {
		err = ctx.Err() // the embedder ignored its deadline
	}
	if err == nil && len(vecs) != len(prompts) {
		err = fmt.Errorf("embedder returned %d vectors for %d texts", len(vecs), len(prompts))
	}
	for i := 0; err == nil && i < len(vecs); i++ {
		if len(vecs[i]) == 0 {
			err = errors.New("embedder returned an empty vector")
		}
	}
	if err != nil {
		c.stats.embedErrors.Add(1)
		c.log.DebugContext(ctx, "semantic: embed failed", "err", err)
		return nil, fmt.Errorf("semantic: embed: %w", err)
	}
	for i, v := range vecs {
		if !normalize(v) {
			c.stats.unembeddable.Add(1)
			vecs[i] = nil
		}
	}
	return vecs, nil
}

// threshold returns the effective threshold of q.
func (c *Cache) thresholdOf(q Query) float32 {
	return max(c.threshold, q.Threshold)
}
