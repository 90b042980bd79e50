package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/zest-proxy/zest/semantic/verify"
)

// Config is the whole of config.toml. Every field's default is set by defaultConfig, which
// the repository's config.toml restates (a test keeps the two equal).
type Config struct {
	Listen          string   `toml:"listen"`
	MaxBody         Size     `toml:"max_body"`
	BodyTimeout     Duration `toml:"body_timeout"`
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
	// MaxConnections bounds the client connections served at once; more wait in the listen
	// backlog until one closes. Default 4096; 0 = no limit.
	MaxConnections int `toml:"max_connections"`
	// TrustedProxies are the CIDRs (or single addresses) of load balancers whose
	// Forwarded / X-Forwarded-For headers name the client IP. Top-level; default none.
	TrustedProxies []string `toml:"trusted_proxies"`

	Upstream  UpstreamConfig  `toml:"upstream"`
	Cache     CacheConfig     `toml:"cache"`
	Semantic  SemanticConfig  `toml:"semantic"`
	RateLimit RateLimitConfig `toml:"ratelimit"`
	Admin     AdminConfig     `toml:"admin"`
	Telemetry TelemetryConfig `toml:"telemetry"`
	Log       LogConfig       `toml:"log"`
	Redis     RedisConfig     `toml:"redis"`
	Replay    ReplayConfig    `toml:"replay"`
}

// ReplayConfig is [replay]: load-test mode. Mode "off" (the default) serves as usual;
// "record" also appends every clean upstream answer with its timing to File; "replay" answers
// chat completions from File at the recorded pace and never calls the upstream for them.
type ReplayConfig struct {
	Mode string `toml:"mode"`
	File string `toml:"file"`
	// Speed divides recorded times in replay: 1 (the default) = as recorded, 0 = instant.
	Speed float64 `toml:"speed"`
	// Miss is what an unrecorded request gets in replay: error (the default, a 404
	// "not_recorded"), semantic (the nearest recording by meaning) or synthetic.
	Miss string `toml:"miss"`
}

// RedisConfig is [redis]: the shared tiers of several replicas. An empty url (the default)
// keeps everything in this process.
type RedisConfig struct {
	URL        string   `toml:"url"`
	Timeout    Duration `toml:"timeout"`
	Prefix     string   `toml:"prefix"`
	RetryAfter Duration `toml:"retry_after"`
	LeaseTTL   Duration `toml:"lease_ttl"`
}

// UpstreamConfig is [upstream].
type UpstreamConfig struct {
	URL              string   `toml:"url"`
	Timeout          Duration `toml:"timeout"`
	MaxResponseBytes Size     `toml:"max_response_bytes"`
}

// CacheConfig is [cache].
type CacheConfig struct {
	Enabled      bool     `toml:"enabled"`
	DefaultType  string   `toml:"default_type"`
	TTL          Duration `toml:"ttl"`
	MaxBytes     Size     `toml:"max_bytes"`
	Namespace    string   `toml:"namespace"`
	AllowedTypes []string `toml:"allowed_types"`
	Coalesce     bool     `toml:"coalesce"`
	// Preload is a recording (see [replay]) loaded into the exact cache on start, each answer
	// with what is left of its TTL; "" (the default) starts empty.
	Preload string `toml:"preload"`
	// Snapshot is a file the exact cache is saved to on shutdown (its live entries, with their
	// remaining TTL, in the recording format) and loaded from on start when it exists; "" (the
	// default) keeps nothing across restarts.
	Snapshot string `toml:"snapshot"`
}

// SemanticConfig is [semantic].
type SemanticConfig struct {
	Enabled        bool     `toml:"enabled"`
	Embedder       string   `toml:"embedder"`
	Model          string   `toml:"model"`
	Threshold      float64  `toml:"threshold"`
	Index          string   `toml:"index"`
	MaxEntries     int      `toml:"max_entries"`
	MaxBytes       Size     `toml:"max_bytes"`
	Timeout        Duration `toml:"timeout"`
	Shadow         bool     `toml:"shadow"`
	AllowToolCalls bool     `toml:"allow_tool_calls"`
	// Verify is the verifier mode: "strict" (default: every content word must align; the only
	// safe mode with the local embedder) or "guards" (the cosine decides and only the hard
	// guards may refuse; for embedder = "upstream").
	Verify string `toml:"verify"`
}

// RateLimitConfig is [ratelimit].
type RateLimitConfig struct {
	Key               string          `toml:"key"`
	RequestsPerMinute int             `toml:"requests_per_minute"`
	TokensPerMinute   int             `toml:"tokens_per_minute"`
	MaxConcurrent     int             `toml:"max_concurrent"`
	BurstRequests     int             `toml:"burst_requests"`
	BurstTokens       int             `toml:"burst_tokens"`
	DefaultMaxTokens  int             `toml:"default_max_tokens"`
	ChargeHits        bool            `toml:"charge_hits"`
	Override          []LimitOverride `toml:"override"`
}

// LimitOverride is one [[ratelimit.override]] table: limits for one identity.
type LimitOverride struct {
	Identity          string `toml:"identity"`
	RequestsPerMinute int    `toml:"requests_per_minute"`
	TokensPerMinute   int    `toml:"tokens_per_minute"`
	MaxConcurrent     int    `toml:"max_concurrent"`
	BurstRequests     int    `toml:"burst_requests"`
	BurstTokens       int    `toml:"burst_tokens"`
}

// AdminConfig is [admin]; its token comes from ZEST_ADMIN_TOKEN only.
type AdminConfig struct{}

// TelemetryConfig is [telemetry]; the exporter comes from the standard OTEL_* variables.
type TelemetryConfig struct {
	CaptureContent bool             `toml:"capture_content"`
	Prices         map[string]Price `toml:"prices"`
}

// Price is the cost of a model in dollars per million tokens.
type Price struct {
	Input  float64 `toml:"input"`
	Output float64 `toml:"output"`
}

// LogConfig is [log].
type LogConfig struct {
	Format string `toml:"format"`
	Level  string `toml:"level"`
}

func defaultConfig() Config {
	return Config{
		Listen:          "127.0.0.1:8080",
		MaxBody:         32 << 20,
		BodyTimeout:     Duration(60 * time.Second),
		ShutdownTimeout: Duration(30 * time.Second),
		MaxConnections:  4096,
		Upstream: UpstreamConfig{URL: "https://api.openai.com/v1", Timeout: Duration(300 * time.Second),
			MaxResponseBytes: 4 << 20},
		Cache: CacheConfig{Enabled: true, DefaultType: "default", TTL: Duration(time.Hour), MaxBytes: 256 << 20,
			Namespace: "key", Coalesce: true},
		Semantic: SemanticConfig{Enabled: true, Embedder: "local", Model: "text-embedding-3-small", Threshold: 0,
			Index: "flat", MaxEntries: 100000, MaxBytes: 32 << 20, Timeout: Duration(200 * time.Millisecond),
			Verify: "strict"},
		RateLimit: RateLimitConfig{Key: "key", DefaultMaxTokens: 1024},
		Log:       LogConfig{Format: "text", Level: "info"},
		Redis: RedisConfig{Timeout: Duration(100 * time.Millisecond), Prefix: "zest", RetryAfter: Duration(time.Second),
			LeaseTTL: Duration(30 * time.Second)},
		Replay: ReplayConfig{Mode: "off", Speed: 1, Miss: "error"},
	}
}

// Duration is a TOML string like "90s" or "1h".
type Duration time.Duration

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("want a duration like \"90s\", got %q", b)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Size is a byte count written "256MiB", "32MB", "1024" or "64KiB".
type Size int64

func (s *Size) UnmarshalText(b []byte) error {
	v, err := parseSize(string(b))
	if err != nil {
		return err
	}
	*s = Size(v)
	return nil
}

func parseSize(text string) (int64, error) {
	t := strings.TrimSpace(text)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			mult, t = u.mult, strings.TrimSpace(strings.TrimSuffix(t, u.suffix))
			break
		}
	}
	n, err := strconv.ParseFloat(t, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("want a size like \"256MiB\", got %q", text)
	}
	return int64(n * float64(mult)), nil
}

// loadConfig reads path over the defaults. Unknown keys and bad values are errors that name
// the key and, when it can be found, the line.
func loadConfig(path string) (Config, error) {
	cfg := defaultConfig()
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, err
	}
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&cfg)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			if pe.LastKey != "" {
				return cfg, fmt.Errorf("%s:%d: %s: %s", path, pe.Position.Line, pe.LastKey, pe.Message)
			}
			return cfg, fmt.Errorf("%s:%d: %s", path, pe.Position.Line, pe.Message)
		}
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		k := und[0]
		return cfg, fmt.Errorf("%s:%d: unknown key %q", path, findKeyLine(data, k), k.String())
	}
	if err := cfg.validate(); err != nil {
		var ke *keyError
		if errors.As(err, &ke) {
			if line := findKeyLine(data, strings.Split(ke.key, ".")); line > 0 {
				return cfg, fmt.Errorf("%s:%d: %s: %s", path, line, ke.key, ke.msg)
			}
		}
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// keyError is a bad value of one config key.
type keyError struct{ key, msg string }

func (e *keyError) Error() string { return e.key + ": " + e.msg }

func (c *Config) validate() error {
	bad := func(key, format string, args ...any) error { return &keyError{key, fmt.Sprintf(format, args...)} }
	if c.Upstream.URL == "" {
		return bad("upstream.url", "must be set")
	}
	if c.Upstream.Timeout < 0 {
		return bad("upstream.timeout", "must not be negative")
	}
	if c.Upstream.MaxResponseBytes < 0 {
		return bad("upstream.max_response_bytes", "must not be negative (0 = no cap)")
	}
	if c.MaxBody <= 0 {
		return bad("max_body", "must be positive")
	}
	if c.BodyTimeout < 0 {
		return bad("body_timeout", "must not be negative (0 = no limit)")
	}
	if c.MaxConnections < 0 {
		return bad("max_connections", "must not be negative (0 = no limit)")
	}
	switch c.Cache.DefaultType {
	case "default", "no_cache", "no_store", "response_only", "semantic_only":
	default:
		return bad("cache.default_type", "want default, no_cache, no_store, response_only or semantic_only, got %q", c.Cache.DefaultType)
	}
	for _, t := range c.Cache.AllowedTypes {
		switch t {
		case "default", "no_cache", "no_store", "response_only", "semantic_only":
		default:
			return bad("cache.allowed_types", "%q is not a cache_control type", t)
		}
	}
	if c.Cache.TTL <= 0 {
		return bad("cache.ttl", "must be positive")
	}
	if time.Duration(c.Cache.TTL) > 24*time.Hour {
		return bad("cache.ttl", "at most 24h (the longest max_age)")
	}
	if c.Cache.MaxBytes < 1<<20 {
		return bad("cache.max_bytes", "at least 1MiB")
	}
	switch c.Cache.Namespace {
	case "key", "user", "shared":
	default:
		return bad("cache.namespace", "want key, user or shared, got %q", c.Cache.Namespace)
	}
	switch c.Semantic.Embedder {
	case "local", "upstream":
	default:
		return bad("semantic.embedder", "want local or upstream, got %q", c.Semantic.Embedder)
	}
	if c.Semantic.Threshold < 0 || c.Semantic.Threshold > 1 {
		return bad("semantic.threshold", "want a number in (0, 1] (or 0 for the embedder's default), got %v", c.Semantic.Threshold)
	}
	switch c.Semantic.Index {
	case "flat", "chromem":
	default:
		return bad("semantic.index", "want flat or chromem, got %q", c.Semantic.Index)
	}
	if _, err := verify.ParseMode(c.Semantic.Verify); err != nil || c.Semantic.Verify == "" {
		return bad("semantic.verify", "want strict or guards, got %q", c.Semantic.Verify)
	}
	if c.Semantic.MaxEntries <= 0 {
		return bad("semantic.max_entries", "must be positive")
	}
	if c.Semantic.MaxBytes <= 0 {
		return bad("semantic.max_bytes", "must be positive")
	}
	if c.Semantic.Timeout <= 0 {
		return bad("semantic.timeout", "must be positive")
	}
	switch c.RateLimit.Key {
	case "key", "user", "ip":
	default:
		return bad("ratelimit.key", "want key, user or ip, got %q", c.RateLimit.Key)
	}
	for name, v := range map[string]int{
		"ratelimit.requests_per_minute": c.RateLimit.RequestsPerMinute, "ratelimit.tokens_per_minute": c.RateLimit.TokensPerMinute,
		"ratelimit.max_concurrent": c.RateLimit.MaxConcurrent, "ratelimit.burst_requests": c.RateLimit.BurstRequests,
		"ratelimit.burst_tokens": c.RateLimit.BurstTokens, "ratelimit.default_max_tokens": c.RateLimit.DefaultMaxTokens,
	} {
		if v < 0 {
			return bad(name, "must not be negative")
		}
	}
	for i, o := range c.RateLimit.Override {
		if o.Identity == "" {
			return bad("ratelimit.override", "entry %d has no identity", i+1)
		}
	}
	if c.Redis.URL != "" {
		if u, err := url.Parse(c.Redis.URL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			return bad("redis.url", "want redis://host:port or rediss://host:port (the value is not shown: it may hold a password)")
		}
	}
	if c.Redis.Timeout <= 0 || c.Redis.RetryAfter <= 0 || c.Redis.LeaseTTL <= 0 {
		return bad("redis", "timeout, retry_after and lease_ttl must be positive")
	}
	if c.Redis.Prefix == "" || strings.ContainsAny(c.Redis.Prefix, "{}") {
		return bad("redis.prefix", "must be non-empty, without braces")
	}
	if _, err := parsePrefixes(c.TrustedProxies); err != nil {
		return bad("trusted_proxies", "%v", err)
	}
	switch c.Replay.Mode {
	case "off":
	case "record", "replay":
		if c.Replay.File == "" {
			return bad("replay.file", "must be set when replay.mode = %q", c.Replay.Mode)
		}
	default:
		return bad("replay.mode", "want off, record or replay, got %q", c.Replay.Mode)
	}
	if c.Replay.Speed < 0 {
		return bad("replay.speed", "must not be negative (0 = instant)")
	}
	switch c.Replay.Miss {
	case "error", "semantic", "synthetic":
	default:
		return bad("replay.miss", "want error, semantic or synthetic, got %q", c.Replay.Miss)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return bad("log.format", "want text or json, got %q", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return bad("log.level", "want debug, info, warn or error, got %q", c.Log.Level)
	}
	return nil
}

// parsePrefixes parses CIDRs ("10.0.0.0/8") and single addresses ("10.1.2.3").
func parsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a CIDR nor an IP address", s)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// findKeyLine returns the 1-based line where key (a table path then a name) is set, or 0.
func findKeyLine(data []byte, key []string) int {
	if len(key) == 0 {
		return 0
	}
	table := ""
	want := strings.Join(key[:len(key)-1], ".")
	name := key[len(key)-1]
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(t, "[") {
			table = strings.Trim(t, "[] \t")
			if i := strings.IndexByte(table, '#'); i >= 0 {
				table = strings.TrimSpace(table[:i])
			}
			if table == strings.Join(key, ".") {
				return line
			}
			continue
		}
		eq := strings.IndexByte(t, '=')
		if eq <= 0 || strings.HasPrefix(t, "#") {
			continue
		}
		k := strings.Trim(strings.TrimSpace(t[:eq]), `"'`)
		full := k
		if table != "" {
			full = table + "." + k
		}
		if (table == want && k == name) || full == strings.Join(key, ".") {
			return line
		}
	}
	return 0
}
