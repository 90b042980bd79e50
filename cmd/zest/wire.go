package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/zest-proxy/zest/cache"
	"github.com/zest-proxy/zest/internal/redisx"
	"github.com/zest-proxy/zest/proxy"
	"github.com/zest-proxy/zest/ratelimit"
	"github.com/zest-proxy/zest/semantic"
	"github.com/zest-proxy/zest/semantic/verify"
	"github.com/zest-proxy/zest/telemetry"
)

// app is a wired zest: the handler and what must be closed after it.
type app struct {
	handler http.Handler
	wait    func(context.Context) error // until background upstream calls and stores are done
	// drained run in order on shutdown, once the server has stopped taking requests (and,
	// unless the shutdown timed out, the stores in flight are done), before the closers.
	drained []func()
	closers []func()
}

// drain runs the drained hooks (the cache snapshot).
func (a *app) drain() {
	for _, f := range a.drained {
		f()
	}
}

func (a *app) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
}

// build turns a config into a running handler.
func build(ctx context.Context, cfg Config, getenv func(string) string, logger *slog.Logger) (*app, error) {
	a := &app{}
	trusted, err := parsePrefixes(cfg.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("trusted_proxies: %w", err)
	}
	rc, err := buildRedis(ctx, cfg.Redis, getenv, logger)
	if err != nil {
		return nil, err
	}
	if rc != nil {
		a.closers = append(a.closers, func() { rc.Close() })
	}
	exact, err := buildExact(cfg.Cache, rc, logger, a)
	if err != nil {
		a.close()
		return nil, err
	}
	sem, err := buildSemantic(cfg, getenv, logger, rc)
	if err != nil {
		a.close()
		return nil, err
	}
	if sem != nil {
		a.closers = append(a.closers, sem.Close)
	}
	lim, tokenLimits, err := buildLimiter(cfg.RateLimit, logger, rc, time.Duration(cfg.Redis.LeaseTTL))
	if err != nil {
		a.close()
		return nil, err
	}
	if lim != nil {
		a.closers = append(a.closers, lim.Close)
	}
	reg := telemetry.NewRegistry(logger)
	prices := map[string]telemetry.Price{}
	for model, p := range cfg.Telemetry.Prices {
		prices[model] = telemetry.Price{InputPerMTok: p.Input, OutputPerMTok: p.Output}
	}
	metrics := telemetry.NewMetrics(reg, prices)
	if exact != nil {
		metrics.SetCacheStats(func() telemetry.CacheStats {
			st := exact.Stats()
			return telemetry.CacheStats{Entries: int64(st.Entries), Bytes: st.Bytes, MaxBytes: st.MaxBytes, Evictions: st.Evictions}
		})
	}
	if sem != nil {
		maxEntries := int64(cfg.Semantic.MaxEntries)
		metrics.SetSemanticStats(func() telemetry.SemanticStats {
			return telemetry.SemanticStats{Entries: int64(sem.Stats().Entries), MaxEntries: maxEntries}
		})
	}
	if rc != nil {
		telemetry.RegisterRedis(reg, func() telemetry.RedisStats {
			h := rc.Health()
			st := telemetry.RedisStats{Up: h.Up, Errors: h.Errors, Skipped: h.Skipped}
			if exact != nil {
				rs := exact.RedisStats()
				st.CacheHits, st.PendingPurges = rs.Hits, rs.PendingPurges
			}
			if lim != nil {
				st.LimitFallbacks = lim.RedisFallbacks()
			}
			if sem != nil {
				ss := sem.SharedStats()
				st.SemanticApplied = ss.Applied
				st.PendingPurges += ss.Pending
			}
			return st
		})
	}
	tp, prop, shutdownTracing, err := telemetry.SetupTracing(ctx, telemetry.TracingOptions{
		Getenv: getenv, ServiceName: "zest", ServiceVersion: buildVersion(), Logger: logger})
	if err != nil {
		a.close()
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	a.closers = append(a.closers, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shutdownTracing(sctx)
	})
	recorder, replayOpts, err := buildReplay(cfg.Replay, logger, a)
	if err != nil {
		a.close()
		return nil, err
	}
	h, err := proxy.New(proxy.Options{
		Upstream:       cfg.Upstream.URL,
		UpstreamAPIKey: getenv("ZEST_UPSTREAM_API_KEY"),
		Timeout:        time.Duration(cfg.Upstream.Timeout),
		Cache:          exact,
		DefaultType:    cfg.Cache.DefaultType,
		AllowedTypes:   cfg.Cache.AllowedTypes,
		TTL:            time.Duration(cfg.Cache.TTL),
		Namespace:      cfg.Cache.Namespace,
		MaxBodyBytes:   int64(cfg.MaxBody),
		BodyTimeout:    bodyTimeout(cfg.BodyTimeout),
		MaxResponseBytes: func() int64 {
			if cfg.Upstream.MaxResponseBytes == 0 {
				return -1 // no cap
			}
			return int64(cfg.Upstream.MaxResponseBytes)
		}(),
		NoCoalesce: !cfg.Cache.Coalesce,

		Limiter:          lim,
		RateLimitKey:     cfg.RateLimit.Key,
		TrustedProxies:   trusted,
		Redis:            rc,
		TokenLimits:      tokenLimits,
		DefaultMaxTokens: cfg.RateLimit.DefaultMaxTokens,

		AdminToken: getenv("ZEST_ADMIN_TOKEN"),

		Semantic:          sem,
		SemanticShadow:    cfg.Semantic.Shadow,
		SemanticToolCalls: cfg.Semantic.AllowToolCalls,

		Metrics:        metrics,
		MetricsHandler: reg.Handler(),
		TracerProvider: tp,
		Propagator:     prop,
		Logger:         logger,
		Recorder:       recorder,
		Replay:         replayOpts,
	})
	if err != nil {
		a.close()
		return nil, fmt.Errorf("upstream.url: %w", err)
	}
	a.handler = h
	a.wait = h.Wait
	return a, nil
}

// buildExact makes the exact cache of [cache] (nil when it is off), warms it from
// cache.preload and then cache.snapshot, and has the app save the snapshot on shutdown.
func buildExact(c CacheConfig, rc *redisx.Client, logger *slog.Logger, a *app) (*cache.Cache, error) {
	if !c.Enabled {
		if c.Preload != "" || c.Snapshot != "" {
			logger.Warn("cache.preload and cache.snapshot are ignored: the exact cache is off")
		}
		return nil, nil
	}
	exact, err := cache.New(cache.Options{MaxBytes: int64(c.MaxBytes), Logger: logger, Redis: rc})
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, exact.Close)
	if err := preload(exact, "cache.preload", c.Preload, time.Now(), logger); err != nil {
		return nil, err
	}
	// The snapshot is newer than any recording: loaded last, it wins on a shared key.
	if err := loadSnapshot(exact, c.Snapshot, time.Now(), logger); err != nil {
		return nil, err
	}
	if c.Snapshot != "" {
		a.drained = append(a.drained, func() { writeSnapshot(exact, c.Snapshot, time.Now(), logger) })
	}
	return exact, nil
}

// buildLimiter makes the rate limiter of [ratelimit]; nil when no limit is set anywhere.
// tokenLimits reports whether any token limit exists (so prompts must be counted).
func buildLimiter(c RateLimitConfig, logger *slog.Logger, rc *redisx.Client, leaseTTL time.Duration) (lim *ratelimit.Limiter, tokenLimits bool, err error) {
	def := ratelimit.Limits{RequestsPerMinute: c.RequestsPerMinute, TokensPerMinute: c.TokensPerMinute,
		MaxConcurrent: c.MaxConcurrent, BurstRequests: c.BurstRequests, BurstTokens: c.BurstTokens}
	any := def != ratelimit.Limits{}
	tokenLimits = def.TokensPerMinute > 0
	overrides := map[string]ratelimit.Limits{}
	for _, o := range c.Override {
		l := ratelimit.Limits{RequestsPerMinute: o.RequestsPerMinute, TokensPerMinute: o.TokensPerMinute,
			MaxConcurrent: o.MaxConcurrent, BurstRequests: o.BurstRequests, BurstTokens: o.BurstTokens}
		overrides[o.Identity] = l
		any = true
		tokenLimits = tokenLimits || l.TokensPerMinute > 0
	}
	if !any {
		return nil, false, nil
	}
	lim, err = ratelimit.New(ratelimit.Options{Default: def, Overrides: overrides, ChargeHits: c.ChargeHits, Logger: logger,
		Redis: rc, LeaseTTL: leaseTTL})
	if err != nil {
		return nil, false, fmt.Errorf("ratelimit: %w", err)
	}
	return lim, tokenLimits, nil
}

// buildRedis makes the client of [redis]; nil when no URL is set. ZEST_REDIS_URL, when set,
// replaces redis.url (so a password need not live in the file). An unreachable Redis is not
// an error: zest starts on its local tiers and joins the shared ones when Redis answers.
func buildRedis(ctx context.Context, c RedisConfig, getenv func(string) string, logger *slog.Logger) (*redisx.Client, error) {
	u := c.URL
	if v := getenv("ZEST_REDIS_URL"); v != "" {
		u = v
	}
	if u == "" {
		return nil, nil
	}
	rc, err := redisx.New(redisx.Options{URL: u, Timeout: time.Duration(c.Timeout), Prefix: c.Prefix,
		RetryAfter: time.Duration(c.RetryAfter), Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("redis.url: %w", err)
	}
	if err := rc.Ping(ctx); err != nil {
		logger.Warn("redis not reachable at start; serving from local tiers until it is", "error", err)
	} else {
		logger.Info("redis: shared tiers on", "prefix", c.Prefix)
	}
	return rc, nil
}

// The tuned similarity thresholds (semantic.threshold = 0). The local embedder's static word
// vectors only retrieve candidates, and the verifier decides, so its cosine floor is low; a
// real sentence-embedding model carries more of the decision itself.
const (
	localThreshold    = semantic.LocalThreshold
	upstreamThreshold = 0.92
)

// buildSemantic makes the semantic cache of [semantic]; nil when it is off.
func buildSemantic(cfg Config, getenv func(string) string, logger *slog.Logger, rc *redisx.Client) (*semantic.Cache, error) {
	c := cfg.Semantic
	if !c.Enabled {
		return nil, nil
	}
	var emb semantic.Embedder
	threshold := c.Threshold
	switch c.Embedder {
	case "local":
		l, err := semantic.NewLocal()
		if err != nil {
			return nil, fmt.Errorf("semantic.embedder: local: %w", err)
		}
		emb = l
		if threshold == 0 {
			threshold = localThreshold
		}
	case "upstream":
		key := getenv("ZEST_UPSTREAM_API_KEY")
		if key == "" {
			logger.Warn("semantic.embedder = upstream without ZEST_UPSTREAM_API_KEY: embeddings are requested without a key")
		}
		u, err := semantic.NewUpstream(semantic.UpstreamOptions{BaseURL: cfg.Upstream.URL, Model: c.Model, APIKey: key,
			Timeout: time.Duration(c.Timeout)})
		if err != nil {
			return nil, fmt.Errorf("semantic.embedder: upstream: %w", err)
		}
		emb = u
		if threshold == 0 {
			threshold = upstreamThreshold
		}
	}
	mode, err := verify.ParseMode(c.Verify)
	if err != nil {
		return nil, fmt.Errorf("semantic.verify: %w", err)
	}
	v, err := verify.New(verify.Options{Mode: mode, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("semantic: verifier: %w", err)
	}
	sc, err := semantic.New(semantic.Options{Embedder: emb, Verifier: v, Threshold: float32(threshold),
		Index:      semantic.IndexKind(c.Index),
		MaxEntries: c.MaxEntries, MaxBytes: int64(c.MaxBytes), EmbedTimeout: time.Duration(c.Timeout),
		Logger: logger, Redis: rc})
	if err != nil {
		return nil, fmt.Errorf("semantic: %w", err)
	}
	return sc, nil
}

// bodyTimeout maps body_timeout (0 = none) to proxy.Options.BodyTimeout (negative = none).
func bodyTimeout(d Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return time.Duration(d)
}
