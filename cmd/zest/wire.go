package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/zest-proxy/zest/cache"
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
	closers []func()
}

func (a *app) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
}

// build turns a config into a running handler.
func build(ctx context.Context, cfg Config, getenv func(string) string, logger *slog.Logger) (*app, error) {
	a := &app{}
	var exact *cache.Cache
	if cfg.Cache.Enabled {
		var err error
		exact, err = cache.New(cache.Options{MaxBytes: int64(cfg.Cache.MaxBytes), Logger: logger})
		if err != nil {
			return nil, err
		}
		a.closers = append(a.closers, exact.Close)
	}
	sem, err := buildSemantic(cfg, getenv, logger)
	if err != nil {
		a.close()
		return nil, err
	}
	lim, tokenLimits, err := buildLimiter(cfg.RateLimit, logger)
	if err != nil {
		a.close()
		return nil, err
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
	tp, prop, shutdownTracing, err := telemetry.SetupTracing(ctx, telemetry.TracingOptions{
		Getenv: getenv, ServiceName: "zest", ServiceVersion: version, Logger: logger})
	if err != nil {
		a.close()
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	a.closers = append(a.closers, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shutdownTracing(sctx)
	})
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
		NoCoalesce:     !cfg.Cache.Coalesce,

		Limiter:          lim,
		RateLimitKey:     cfg.RateLimit.Key,
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
	})
	if err != nil {
		a.close()
		return nil, fmt.Errorf("upstream.url: %w", err)
	}
	a.handler = h
	a.wait = h.Wait
	return a, nil
}

// buildLimiter makes the rate limiter of [ratelimit]; nil when no limit is set anywhere.
// tokenLimits reports whether any token limit exists (so prompts must be counted).
func buildLimiter(c RateLimitConfig, logger *slog.Logger) (lim *ratelimit.Limiter, tokenLimits bool, err error) {
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
	lim, err = ratelimit.New(ratelimit.Options{Default: def, Overrides: overrides, ChargeHits: c.ChargeHits, Logger: logger})
	if err != nil {
		return nil, false, fmt.Errorf("ratelimit: %w", err)
	}
	return lim, tokenLimits, nil
}

// The tuned similarity thresholds (semantic.threshold = 0). The local embedder's static word
// vectors only retrieve candidates, and the verifier decides, so its cosine floor is low; a
// real sentence-embedding model carries more of the decision itself.
const (
	localThreshold    = semantic.LocalThreshold
	upstreamThreshold = 0.92
)

// buildSemantic makes the semantic cache of [semantic]; nil when it is off.
func buildSemantic(cfg Config, getenv func(string) string, logger *slog.Logger) (*semantic.Cache, error) {
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
	v, err := verify.New(verify.Options{Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("semantic: verifier: %w", err)
	}
	sc, err := semantic.New(semantic.Options{Embedder: emb, Verifier: v, Threshold: float32(threshold),
		Index:      semantic.IndexKind(c.Index),
		MaxEntries: c.MaxEntries, EmbedTimeout: time.Duration(c.Timeout), Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("semantic: %w", err)
	}
	return sc, nil
}
