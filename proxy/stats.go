package proxy

import (
	"time"

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
	Buckets       *int           `json:"ratelimit_buckets,omitempty"`
	// Metrics is the Prometheus metrics summed up (outcomes, savings, latency percentiles,
	// budgets), when Options.Metrics is set.
	Metrics *telemetry.Snapshot `json:"metrics,omitempty"`
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
}

// Stats reports the counters of every layer.
func (h *Handler) Stats() Stats {
	up := time.Since(h.started)
	st := Stats{Uptime: up.Round(time.Second).String(), UptimeSeconds: up.Seconds(), Upstream: h.base}
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
			Index: SemanticIndexStats{Entries: is.Entries, Partitions: is.Partitions, Lookups: is.Lookups, Hits: is.Hits,
				Misses: is.Misses, EmbedErrors: is.EmbedErrors, IndexErrors: is.IndexErrors, Rejected: is.Rejected,
				Unembeddable: is.Unembeddable, Evictions: is.Evictions, Expired: is.Expired},
		}
	}
	h.flights.mu.Lock()
	st.InFlight = len(h.flights.m)
	h.flights.mu.Unlock()
	if h.opts.Limiter != nil {
		n := h.opts.Limiter.Len()
		st.Buckets = &n
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
