// Package ratelimit enforces per-identity limits on requests per minute,
// tokens per minute and concurrent requests, the way OpenAI's limits behave:
// a per-minute limit N is a bucket of size N refilling continuously at N/60
// per second, so a fresh identity may spend a whole minute at once and then
// one unit every 60/N seconds.
//
// Tokens are reserved before the upstream call from an estimate (see
// EstimateTokens) and reconciled from the answer's usage by Ticket.Done:
// the unused part is refunded, an excess is charged and may put the bucket
// into debt so that the next requests wait. Retry-After values are exact: a
// client that waits RetryAfter is admitted, provided nothing else consumed
// the identity's allowance in between.
//
// An identity is an opaque string computed by the caller (a hashed key, a
// user, an IP). The limiter keeps one small pointer-free bucket per active
// identity in a sharded map; buckets that are full again with nothing in
// flight are dropped after Options.IdleAfter, so memory follows the number
// of recently active identities, not the number ever seen.
package ratelimit

import (
	"cmp"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"time"

	"github.com/zest-proxy/zest/internal/redisx"
)

// Limits are the limits of one identity. Zero means unlimited.
type Limits struct {
	// RequestsPerMinute is the request bucket's refill rate and, by
	// default, its size. 0 = no request limit.
	RequestsPerMinute int
	// TokensPerMinute is the token bucket's refill rate and, by default,
	// its size. 0 = no token limit.
	TokensPerMinute int
	// MaxConcurrent caps requests in flight (admitted, not yet Done).
	// 0 = no cap.
	MaxConcurrent int
	// BurstRequests, when > 0, makes the request bucket smaller than
	// RequestsPerMinute (never larger: a larger value is clamped to it).
	// Ignored when RequestsPerMinute is 0.
	BurstRequests int
	// BurstTokens does the same for the token bucket.
	BurstTokens int
}

// Options configure a Limiter. The zero Options is a disabled limiter.
type Options struct {
	// Default applies to every identity without an override.
	Default Limits
	// Overrides replace Default entirely for the identities they name
	// (keys are the same identity strings passed to Admit).
	Overrides map[string]Limits
	// ChargeHits makes Hit charge the tokens it is given (default false:
	// a cache hit costs one request and no tokens).
	ChargeHits bool
	// Now is the clock; nil = time.Now. All time math goes through it.
	Now func() time.Time
	// IdleAfter is how long a bucket must sit full with nothing in flight
	// before a sweep drops it. Default 10m. Dropping a full bucket never
	// changes a decision; this only bounds churn for returning clients.
	IdleAfter time.Duration
	// Logger receives configuration warnings; nil = discard.
	Logger *slog.Logger
	// Redis, when set, keeps the buckets and concurrency leases in Redis, so that every
	// replica sharing it enforces one limit per identity. A call that fails (or meets the
	// client's open breaker) is decided by this Limiter's local buckets instead (fail open to
	// local limits; counted by RedisFallbacks). nil = local buckets only. All replicas must
	// share the same limits and overrides.
	Redis *redisx.Client
	// LeaseTTL is how long a concurrency slot held in Redis outlives its replica: a live
	// replica renews its leases every LeaseTTL/3, so a dead one's slots return within
	// LeaseTTL. Default 30s. Used only with Redis.
	LeaseTTL time.Duration
}

// DefaultIdleAfter is the IdleAfter used when Options.IdleAfter is 0.
const DefaultIdleAfter = 10 * time.Minute

const (
	shardBits = 8
	numShards = 1 << shardBits
	// shrinkAt is the peak size from which a swept shard whose map fell to
	// a quarter of its peak is rebuilt (Go maps never shrink by themselves).
	shrinkAt = 1024
)

// policy is a compiled Limits.
type policy struct {
	req, tok dim
	conc     int32 // 0 = no cap
}

func (p *policy) limited() bool { return p.req.on() || p.tok.on() || p.conc > 0 }

// shard is one lock and map; padded so neighbouring locks do not share a
// cache line.
type shard struct {
	mu    sync.Mutex
	m     map[uint64]bucket
	swept int64 // µs of the last sweep
	peak  int   // largest len(m) since the map was last rebuilt
	_     [32]byte
}

// Limiter enforces Limits per identity. It is safe for concurrent use.
// Buckets are keyed by a 64-bit seeded hash of the identity: two identities
// share a bucket only on a hash collision (odds about n²/2⁶⁵, ~3e-8 at one
// million identities), and the seed is random per Limiter.
type Limiter struct {
	now        func() time.Time
	epoch      time.Time
	idleFor    int64 // µs
	seed       maphash.Seed
	chargeHits bool
	enabled    bool
	policies   []policy          // [0] is Default
	overrides  map[string]uint32 // identity → index into policies
	log        *slog.Logger
	remote     *remote // nil = local only
	closeOnce  sync.Once
	shards     [numShards]shard
}

// New validates opts and returns a Limiter. A negative limit, burst or
// IdleAfter, or a limit above 1e9, is an error naming the field.
func New(opts Options) (*Limiter, error) {
	l := &Limiter{
		now:        opts.Now,
		seed:       maphash.MakeSeed(),
		chargeHits: opts.ChargeHits,
		log:        opts.Logger,
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if opts.IdleAfter < 0 {
		return nil, fmt.Errorf("ratelimit: IdleAfter is %v, want >= 0", opts.IdleAfter)
	}
	idle := opts.IdleAfter
	if idle == 0 {
		idle = DefaultIdleAfter
	}
	l.idleFor = max(int64(idle/time.Microsecond), 1)

	def, err := l.compile("Default", opts.Default)
	if err != nil {
		return nil, err
	}
	l.policies = append(l.policies, def)
	l.enabled = def.limited()
	if len(opts.Overrides) > 0 {
		l.overrides = make(map[string]uint32, len(opts.Overrides))
		for id, lim := range opts.Overrides {
			p, err := l.compile(fmt.Sprintf("Overrides[%q]", id), lim)
			if err != nil {
				return nil, err
			}
			l.overrides[id] = uint32(len(l.policies))
			l.policies = append(l.policies, p)
			l.enabled = l.enabled || p.limited()
		}
	}
	l.epoch = l.now()
	for i := range l.shards {
		l.shards[i].m = make(map[uint64]bucket)
	}
	if opts.Redis != nil && l.enabled {
		if opts.LeaseTTL < 0 {
			return nil, fmt.Errorf("ratelimit: LeaseTTL is %v, want >= 0", opts.LeaseTTL)
		}
		l.remote = &remote{c: opts.Redis, leaseTTL: cmp.Or(opts.LeaseTTL, DefaultLeaseTTL)}
		for _, p := range l.policies {
			if p.conc > 0 {
				l.startRenewing()
				break
			}
		}
	}
	return l, nil
}

// compile validates one Limits; name prefixes the field in errors.
func (l *Limiter) compile(name string, lim Limits) (policy, error) {
	fields := []struct {
		field string
		v     int
	}{
		{"RequestsPerMinute", lim.RequestsPerMinute},
		{"TokensPerMinute", lim.TokensPerMinute},
		{"MaxConcurrent", lim.MaxConcurrent},
		{"BurstRequests", lim.BurstRequests},
		{"BurstTokens", lim.BurstTokens},
	}
	for _, f := range fields {
		if f.v < 0 {
			return policy{}, fmt.Errorf("ratelimit: %s.%s is %d, want >= 0", name, f.field, f.v)
		}
		if f.v > maxUnits {
			return policy{}, fmt.Errorf("ratelimit: %s.%s is %d, want <= %d", name, f.field, f.v, maxUnits)
		}
	}
	return policy{
		req:  l.dim(name, "BurstRequests", lim.RequestsPerMinute, lim.BurstRequests),
		tok:  l.dim(name, "BurstTokens", lim.TokensPerMinute, lim.BurstTokens),
		conc: int32(lim.MaxConcurrent),
	}, nil
}

func (l *Limiter) dim(name, field string, rate, burst int) dim {
	if rate == 0 {
		if burst > 0 {
			l.log.Warn("ratelimit: burst ignored without a per-minute limit", "limits", name, "field", field)
		}
		return dim{}
	}
	size := rate
	if burst > 0 {
		if burst > rate {
			l.log.Warn("ratelimit: burst above the per-minute limit clamped to it",
				"limits", name, "field", field, "burst", burst, "limit", rate)
		}
		size = min(burst, rate)
	}
	return dim{rate: int64(rate), size: int64(size)}
}

// Enabled reports whether any identity has any limit. A disabled Limiter
// allows everything without keeping state.
func (l *Limiter) Enabled() bool { return l.enabled }

// Len returns the number of buckets held.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// Sweep drops every idle bucket (full again, nothing in flight, untouched
// for IdleAfter) and returns how many it dropped. Admit and Hit already
// sweep each shard they touch at most once per IdleAfter, so calling Sweep
// is optional; it frees memory of shards no request touches any more.
func (l *Limiter) Sweep() int {
	now := l.micros()
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += l.sweepLocked(sh, now)
		sh.mu.Unlock()
	}
	if n > 0 {
		l.log.Debug("ratelimit: swept idle buckets", "dropped", n)
	}
	return n
}

// sweepLocked drops the idle buckets of sh, whose lock is held, and
// rebuilds its map when it shrank to a quarter of its peak.
func (l *Limiter) sweepLocked(sh *shard, now int64) int {
	sh.swept = now
	n := 0
	for k, b := range sh.m {
		if b.idle(&l.policies[b.policy], now, l.idleFor) {
			delete(sh.m, k)
			n++
		}
	}
	if sh.peak >= shrinkAt && len(sh.m) <= sh.peak/4 {
		m := make(map[uint64]bucket, len(sh.m))
		for k, b := range sh.m {
			m[k] = b
		}
		sh.m = m
		sh.peak = len(m)
	}
	return n
}

// micros returns the clock in µs since the limiter's epoch.
func (l *Limiter) micros() int64 {
	return int64(l.now().Sub(l.epoch) / time.Microsecond)
}

// policyFor returns the policy index of identity.
func (l *Limiter) policyFor(identity string) uint32 {
	if i, ok := l.overrides[identity]; ok {
		return i
	}
	return 0
}
