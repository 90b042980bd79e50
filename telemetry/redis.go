package telemetry

import "github.com/prometheus/client_golang/prometheus"

// RedisStats is what the Redis-backed tiers report at scrape time (see RegisterRedis).
type RedisStats struct {
	Up              bool   // false from a failed call until the next success
	Errors          uint64 // failed Redis calls, every layer
	Skipped         uint64 // calls not made while the breaker was open (each fell back to local state)
	CacheHits       uint64 // exact-cache local misses answered by the Redis tier
	LimitFallbacks  uint64 // rate-limit decisions made by local buckets because Redis failed
	SemanticApplied uint64 // semantic entries and deletes received from other replicas
	PendingPurges   int    // purges, deletes and refusals made while Redis was unreachable, not yet replayed
}

// RegisterRedis registers the zest_redis_* metrics in r, read from fn at scrape time:
// zest_redis_up, zest_redis_errors_total, zest_redis_skipped_total,
// zest_redis_cache_hits_total, zest_redis_ratelimit_fallbacks_total,
// zest_redis_semantic_applied_total and zest_redis_pending_purges. fn must be safe for concurrent use and cheap. Call it
// once per registry, only when Redis is configured.
func RegisterRedis(r *Registry, fn func() RedisStats) {
	gauge := func(name, help string, v func(RedisStats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return v(fn()) })
	}
	counter := func(name, help string, v func(RedisStats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v(fn())) })
	}
	r.MustRegister(
		gauge("zest_redis_up", "1 while the last Redis call succeeded, 0 after a failure (zest then serves from local tiers and local limits).",
			func(s RedisStats) float64 {
				if s.Up {
					return 1
				}
				return 0
			}),
		counter("zest_redis_errors_total", "Failed Redis calls (deadline passed, connection lost, server error).",
			func(s RedisStats) uint64 { return s.Errors }),
		counter("zest_redis_skipped_total", "Redis calls not attempted while the breaker was open after a failure; each fell back to local state.",
			func(s RedisStats) uint64 { return s.Skipped }),
		counter("zest_redis_cache_hits_total", "Exact-cache answers found in the Redis tier after a local miss.",
			func(s RedisStats) uint64 { return s.CacheHits }),
		counter("zest_redis_ratelimit_fallbacks_total", "Rate-limit decisions and settlements made by local buckets because Redis failed.",
			func(s RedisStats) uint64 { return s.LimitFallbacks }),
		counter("zest_redis_semantic_applied_total", "Semantic-cache records (stores, deletes) received from other replicas.",
			func(s RedisStats) uint64 { return s.SemanticApplied }),
		gauge("zest_redis_pending_purges", "Purges, deletes and cache-feedback refusals made while Redis was unreachable, waiting to be replayed to it.",
			func(s RedisStats) float64 { return float64(s.PendingPurges) }),
	)
}
