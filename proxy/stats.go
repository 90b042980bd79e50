package proxy

import (
	"time"

	"github.com/zest-proxy/zest/cache"
	"github.com/zest-proxy/zest/internal/redisx"
	"github.com/zest-proxy/zest/semantic"
	"github.com/zest-proxy/zest/telemetry"
)

// Stats is the JSON of GET /admin/stats. Every key is snake_case. Counters are totals since
// start; a reader (the dashboard page) computes rates from two readings and UptimeSeconds.
type Stats struct {
	Uptime        string         `json:"uptime"`
	UptimeSeconds float64        `json:"uptime_seconds"`
	Upstream      string         `json:"upstream"`
	Exact         *ExactStats    `json:"exact_cache,omitempty"`
	Semantic      *SemanticStats `json:"semantic_cache,omitempty"`
	InFlight      int            `json:"coalescing_flights"`
	Feedback      FeedbackStats  `json:"feedback"`
	Buckets       *int           `json:"ratelimit_buckets,omitempty"`
	// PeakResponseBytes is the most one upstream answer has held in memory while it was
	// relayed (bounded by upstream.max_response_bytes plus one read).
	PeakResponseBytes int64       `json:"peak_response_bytes"`
	Redis             *RedisStats `json:"redis,omitempty"`
	// Metrics is the Prometheus metrics summed up (outcomes, savings, latency percentiles,
	// budgets), when Options.Metrics is set.
	Metrics *telemetry.Snapshot `json:"metrics,omitempty"`
}

// RedisStats is what the shared tiers did, when Redis is configured.
type RedisStats struct {
	Client         redisx.Health         `json:"client"`
	Exact          cache.RedisStats      `json:"exact_cache"`
	Semantic       *semantic.SharedStats `json:"semantic_cache,omitempty"`
	LimitFallbacks uint64                `json:"ratelimit_fallbacks"`
}

// ExactStats are the exact cache's counters and size.
type ExactStats struct {
	Hits       uint64 `json:"hits"`
	Misses     uint64 `json:"misses"`
	Stores     uint64 `json:"stores"`
	Evictions  uint64 `json:"evictions"`
	Rejections uint64 `json:"rejections"`
	Deletes    uint64 `json:"deletes"`
	Entries    int    `json:"entries"`
	Bytes      int64  `json:"bytes"`
	MaxBytes   int64  `json:"max_bytes"`
}

// SemanticStats are the semantic layer's counters as the proxy saw them, plus the index's.
type SemanticStats struct {
	Lookups    uint64             `json:"lookups"`
	Hits       uint64             `json:"hits"`
	ShadowHits uint64             `json:"shadow_hits"`
	Errors     uint64             `json:"errors"`
	Stores     uint64             `json:"stores"`
	Shadow     bool               `json:"shadow"`
	Index      SemanticIndexStats `json:"index"`
}

// SemanticIndexStats are the semantic cache's own counters (semantic.Stats).
type SemanticIndexStats struct {
	Entries      int    `json:"entries"`
	Bytes        int64  `json:"bytes"`
	MaxBytes     int64  `json:"max_bytes"`
	Partitions   int    `json:"partitions"`
	Lookups      uint64 `json:"lookups"`
	Hits         uint64 `json:"hits"`
	Misses       uint64 `json:"misses"`
	EmbedErrors  uint64 `json:"embed_errors"`
	IndexErrors  uint64 `json:"index_errors"`
	Rejected     uint64 `json:"rejected"`
	Unembeddable uint64 `json:"unembeddable"`
	Evictions    uint64 `json:"evictions"`
	Expired      uint64 `json:"expired"`
	Reports      uint64 `json:"reports"`
	Refused      uint64 `json:"refused"`
	RefusedPairs int    `json:"refused_pairs"`
	Anchored     uint64 `json:"anchored"`
}

// Stats reports the counters of every layer.
func (h *Handler) Stats() Stats {
	up := time.Since(h.started)
	st := Stats{Uptime: up.Round(time.Second).String(), UptimeSeconds: up.Seconds(), Upstream: h.base,
		PeakResponseBytes: h.peakFlightBytes.Load()}
	if c := h.opts.Cache; c != nil {
		cs := c.Stats()
		st.Exact = &ExactStats{Hits: cs.Hits, Misses: cs.Misses, Stores: cs.Stores, Evictions: cs.Evictions,
			Rejections: cs.Rejections, Deletes: cs.Deletes, Entries: cs.Entries, Bytes: cs.Bytes, MaxBytes: cs.MaxBytes}
	}
	if s := h.opts.Semantic; s != nil {
		is := s.Stats()
		st.Semantic = &SemanticStats{
			Lookups: h.sem.lookups.Load(), Hits: h.sem.hits.Load(), ShadowHits: h.sem.shadowHits.Load(),
			Errors: h.sem.errors.Load(), Stores: h.sem.stores.Load(), Shadow: h.opts.SemanticShadow,
			Index: SemanticIndexStats{Entries: is.Entries, Bytes: is.Bytes, MaxBytes: is.MaxBytes, Partitions: is.Partitions,
				Lookups: is.Lookups, Hits: is.Hits, Misses: is.Misses, EmbedErrors: is.EmbedErrors, IndexErrors: is.IndexErrors,
				Rejected: is.Rejected, Unembeddable: is.Unembeddable, Evictions: is.Evictions, Expired: is.Expired,
				Reports: is.Reports, Refused: is.Refused, RefusedPairs: is.RefusedPairs, Anchored: is.Anchored},
		}
	}
	st.Feedback = FeedbackStats{Removed: h.feedback.removed.Load(), NotFound: h.feedback.notFound.Load()}
	h.flights.mu.Lock()
	st.InFlight = len(h.flights.m)
	h.flights.mu.Unlock()
	if h.opts.Limiter != nil {
		n := h.opts.Limiter.Len()
		st.Buckets = &n
	}
	if h.opts.Redis != nil {
		rs := &RedisStats{Client: h.opts.Redis.Health()}
		if h.opts.Cache != nil {
			rs.Exact = h.opts.Cache.RedisStats()
		}
		if h.opts.Semantic != nil {
			ss := h.opts.Semantic.SharedStats()
			rs.Semantic = &ss
		}
		if h.opts.Limiter != nil {
			rs.LimitFallbacks = h.opts.Limiter.RedisFallbacks()
		}
		st.Redis = rs
	}
	if m := h.opts.Metrics; m != nil {
		snap, err := m.Snapshot()
		if err != nil {
			h.logger.Warn("admin stats: metrics snapshot failed", "error", err)
		} else {
			st.Metrics = &snap
		}
	}
	return st
}
