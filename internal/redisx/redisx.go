// Package redisx is zest's one place for Redis: the client built from a URL (single node,
// TLS, Sentinel or Cluster through go-redis's universal client), the per-call deadline, a
// breaker that keeps a slow or dead Redis off the request path, failure counters, and the
// key naming every layer uses. The cache, semantic and ratelimit packages import it; it
// imports none of them.
//
// Every call made through Client.Do has a deadline (Options.Timeout). A failure opens the
// breaker for Options.RetryAfter: until then Do fails at once with ErrUnavailable and callers
// fall back to their local state, so an unreachable Redis costs one timeout per RetryAfter,
// not one per request. The first call after RetryAfter probes Redis again; a success closes
// the breaker, so zest recovers by itself.
package redisx

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults applied by New to zero Options fields.
const (
	DefaultTimeout    = 100 * time.Millisecond
	DefaultRetryAfter = time.Second
	DefaultPrefix     = "zest"
)

// ErrUnavailable is returned by Do while the breaker is open after a failure.
var ErrUnavailable = errors.New("redisx: redis unavailable (breaker open after a failure)")

// Options configure New.
type Options struct {
	// URL names the server(s), in go-redis's URL forms:
	//   redis://[user:password@]host:port[/db]     one server (rediss:// for TLS)
	//   redis://host:26379?master_name=mymaster&addr=host2:26379
	//                                              Sentinel (the addresses are sentinels)
	//   redis://host:7000?addr=host2:7000&addr=host3:7000
	//                                              Cluster (seed nodes; cluster=true forces
	//                                              Cluster mode with one seed)
	// Required. It may hold a password: it is never logged or returned in an error.
	URL string
	// Timeout bounds every call (dial, write, read). Default 100ms.
	Timeout time.Duration
	// RetryAfter is how long the breaker stays open after a failure. Default 1s.
	RetryAfter time.Duration
	// Prefix starts every key and channel name, so that several zest deployments (or test
	// runs) can share one Redis. Default "zest". It must not contain '{' or '}'.
	Prefix string
	// Logger receives state changes (down, up again); nil discards.
	Logger *slog.Logger
	// Now is the clock of the breaker; nil = time.Now.
	Now func() time.Time
}

// Client is a Redis client with a deadline on every call and a breaker. Safe for concurrent
// use. The zero value is not usable; call New.
type Client struct {
	// R is the underlying go-redis client. Calls made on it directly bypass the breaker and
	// the counters; prefer Do.
	R          redis.UniversalClient
	timeout    time.Duration
	retryAfter time.Duration
	prefix     string
	id         string
	log        *slog.Logger
	now        func() time.Time

	downUntil atomic.Int64 // unix ns until which Do refuses; 0 = closed
	down      atomic.Bool
	errs      atomic.Uint64
	skipped   atomic.Uint64
	calls     atomic.Uint64
	mu        sync.Mutex
	lastErr   string
	lastErrAt time.Time
}

// New parses opts.URL and returns a Client. It does not connect: the first call does (use
// Ping to check at start-up).
func New(opts Options) (*Client, error) {
	if opts.URL == "" {
		return nil, errors.New("redisx: URL is required")
	}
	if opts.Timeout < 0 || opts.RetryAfter < 0 {
		return nil, errors.New("redisx: Timeout and RetryAfter must not be negative")
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.RetryAfter == 0 {
		opts.RetryAfter = DefaultRetryAfter
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(opts.Prefix, "{}") {
		return nil, fmt.Errorf("redisx: prefix %q must not contain '{' or '}'", opts.Prefix)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	uc, err := universal(opts.URL, opts.Timeout)
	if err != nil {
		return nil, err
	}
	return &Client{R: uc, timeout: opts.Timeout, retryAfter: opts.RetryAfter, prefix: opts.Prefix,
		id: randomID(), log: opts.Logger, now: opts.Now}, nil
}

// universal builds the go-redis client the URL names, with zest's timeouts and no retries (a
// failed call falls back to local state; retrying would only stretch the request).
func universal(raw string, timeout time.Duration) (redis.UniversalClient, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("redisx: URL does not parse") // the URL may hold a password
	}
	q := u.Query()
	cluster := q.Get("cluster") == "true"
	q.Del("cluster")
	u.RawQuery = q.Encode()
	clean := u.String()
	redact := func(err error) error {
		return fmt.Errorf("redisx: URL %s: %s", u.Redacted(), strings.ReplaceAll(err.Error(), clean, u.Redacted()))
	}
	switch {
	case q.Has("master_name"):
		o, err := redis.ParseFailoverURL(clean)
		if err != nil {
			return nil, redact(err)
		}
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = timeout, timeout, timeout, timeout
		o.ContextTimeoutEnabled, o.MaxRetries, o.DialerRetries = true, -1, 1
		return redis.NewFailoverClient(o), nil
	case cluster || q.Has("addr"):
		o, err := redis.ParseClusterURL(clean)
		if err != nil {
			return nil, redact(err)
		}
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = timeout, timeout, timeout, timeout
		o.ContextTimeoutEnabled, o.MaxRetries, o.DialerRetries = true, -1, 1
		return redis.NewClusterClient(o), nil
	default:
		o, err := redis.ParseURL(clean)
		if err != nil {
			return nil, redact(err)
		}
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = timeout, timeout, timeout, timeout
		o.ContextTimeoutEnabled, o.MaxRetries, o.DialerRetries = true, -1, 1
		return redis.NewClient(o), nil
	}
}

// Timeout is the deadline of one call.
func (c *Client) Timeout() time.Duration { return c.timeout }

// RetryAfter is how long the breaker stays open after a failure.
func (c *Client) RetryAfter() time.Duration { return c.retryAfter }

// ID is this client's random replica id (16 hex digits), used to recognise its own messages.
func (c *Client) ID() string { return c.id }

// Close closes the connections.
func (c *Client) Close() error { return c.R.Close() }

// Ping checks the connection once (through the breaker).
func (c *Client) Ping(ctx context.Context) error {
	return c.Do(ctx, func(ctx context.Context) error { return c.R.Ping(ctx).Err() })
}

// Do runs fn with a context that ends after Timeout (or earlier, with ctx). While the breaker
// is open it returns ErrUnavailable without calling fn. A failure of fn opens the breaker and
// is counted, except redis.Nil (a missing key is an answer) and the caller's own ctx ending.
func (c *Client) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	return c.DoTimeout(ctx, c.timeout, fn)
}

// DoTimeout is Do with a longer deadline for calls that block on purpose (XREAD BLOCK) or
// walk many keys (a purge's SCAN).
func (c *Client) DoTimeout(ctx context.Context, d time.Duration, fn func(ctx context.Context) error) error {
	if until := c.downUntil.Load(); until != 0 && c.now().UnixNano() < until {
		c.skipped.Add(1)
		return ErrUnavailable
	}
	c.calls.Add(1)
	cctx, cancel := context.WithTimeout(ctx, d)
	err := fn(cctx)
	cancel()
	switch {
	case err == nil || errors.Is(err, redis.Nil):
		if c.down.Load() && c.down.CompareAndSwap(true, false) {
			c.log.Info("redis: reachable again; shared tiers and limits resume")
		}
		c.downUntil.Store(0)
		return err
	case ctx.Err() != nil:
		return err // the caller gave up; says nothing about Redis
	case isReplyError(err):
		c.noteError(err, false)
		return err
	}
	c.noteError(err, true)
	return fmt.Errorf("redisx: %w", err)
}

// isReplyError reports an error Redis answered (a script error, a wrong type): the server is
// up, so the breaker stays closed. Replies that mean "not serving now" (LOADING, CLUSTERDOWN,
// MASTERDOWN, TRYAGAIN, READONLY) count as unavailability.
func isReplyError(err error) bool {
	var re redis.Error
	if !errors.As(err, &re) {
		return false
	}
	for _, p := range [...]string{"LOADING", "CLUSTERDOWN", "MASTERDOWN", "TRYAGAIN", "READONLY"} {
		if strings.HasPrefix(re.Error(), p) {
			return false
		}
	}
	return true
}

func (c *Client) noteError(err error, trip bool) {
	c.errs.Add(1)
	now := c.now()
	c.mu.Lock()
	c.lastErr, c.lastErrAt = err.Error(), now
	c.mu.Unlock()
	if !trip {
		return
	}
	c.downUntil.Store(now.Add(c.retryAfter).UnixNano())
	if c.down.CompareAndSwap(false, true) {
		c.log.Warn("redis: call failed; serving from local tiers and local limits", "error", err,
			"retry_after", c.retryAfter)
	}
}

// Health is a snapshot of a Client's state for /healthz, /admin/stats and /metrics.
type Health struct {
	// Up is false from a failed call until the next successful one.
	Up bool `json:"up"`
	// Calls counts calls made, Errors those that failed, Skipped those refused by the open
	// breaker (each of which fell back to local state).
	Calls   uint64 `json:"calls"`
	Errors  uint64 `json:"errors"`
	Skipped uint64 `json:"skipped"`
	// LastError and LastErrorAt describe the latest failure ("" and zero when none).
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// Health returns the current state and counters.
func (c *Client) Health() Health {
	c.mu.Lock()
	le, at := c.lastErr, c.lastErrAt
	c.mu.Unlock()
	return Health{Up: !c.down.Load(), Calls: c.calls.Load(), Errors: c.errs.Load(), Skipped: c.skipped.Load(),
		LastError: le, LastErrorAt: at}
}

// Key joins the prefix and parts with ':' into a key or channel name. Parts that must keep
// related keys in one Cluster slot should be wrapped with Tag.
func (c *Client) Key(parts ...string) string {
	n := len(c.prefix)
	for _, p := range parts {
		n += 1 + len(p)
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(c.prefix)
	for _, p := range parts {
		b.WriteByte(':')
		b.WriteString(p)
	}
	return b.String()
}

// Prefix is the key prefix.
func (c *Client) Prefix() string { return c.prefix }

// Tag wraps s in braces: Redis Cluster hashes only what is inside, so keys that share a tag
// share a slot (and may be used together in one script).
func Tag(s string) string { return "{" + s + "}" }

// Hash returns a short fixed-length name for s (the first 16 bytes of its SHA-256, in hex):
// identities and namespaces are hashed before they become part of a key, so keys have a
// bounded length, no braces or separators, and never show a user name or an address.
func Hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}

// randomID returns 16 random hex digits.
func randomID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Compressed values: the stored-answer bodies of every layer are DEFLATE-compressed at level 1
// (chat answers are JSON and shrink 3-5x for little CPU).
var flateWriters = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(nil, flate.BestSpeed)
	return w
}}

// AppendDeflate appends src, compressed, to dst.
func AppendDeflate(dst, src []byte) []byte {
	buf := bytes.NewBuffer(dst)
	w := flateWriters.Get().(*flate.Writer)
	w.Reset(buf)
	w.Write(src) // a bytes.Buffer never fails
	w.Close()
	flateWriters.Put(w)
	return buf.Bytes()
}

// Inflate decompresses what AppendDeflate appended.
func Inflate(src []byte) ([]byte, error) {
	b, err := io.ReadAll(flate.NewReader(bytes.NewReader(src)))
	if err != nil {
		return nil, fmt.Errorf("redisx: inflate: %w", err)
	}
	return b, nil
}
