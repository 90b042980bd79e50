package telemetry

import (
	"context"
	"encoding/json"
	"math"
	"testing"
	"time"
)

// TestSnapshot: the snapshot sums the series into outcomes, rates and totals, and encodes as
// snake_case JSON.
func TestSnapshot(t *testing.T) {
	r := NewRegistry(nil)
	m := NewMetrics(r, map[string]Price{"gpt-4o": {InputPerMTok: 2.5, OutputPerMTok: 10}})
	const chat = "/v1/chat/completions"
	for _, c := range []struct {
		status       int
		cache, layer string
		n            int
	}{
		{200, CacheHit, LayerExact, 3},
		{200, CacheHit, LayerSemantic, 2},
		{200, CacheHit, LayerCoalesced, 1},
		{200, CacheMiss, LayerNone, 4},
		{200, CacheBypass, LayerNone, 5},
		{429, CacheBypass, LayerNone, 6},
		{502, CacheMiss, LayerNone, 7},
		{400, CacheBypass, LayerNone, 1},
	} {
		for range c.n {
			m.Request(chat, c.status, c.cache, c.layer)
		}
	}
	m.Request("/v1/models", 200, CacheNone, LayerNone)
	m.Request("/healthz", 200, CacheNone, LayerNone)
	m.Saved("gpt-4o", 1_000_000, 0)
	m.Saved("other", 10, 20)
	m.RateLimited(RateLimitTokens)
	m.ObserveUpstream(context.Background(), 200, time.Second)
	m.ObserveUpstream(context.Background(), 503, time.Second)
	m.UpstreamFailed()
	m.ObserveUpstream(context.Background(), 200, time.Second)
	m.SemanticShadowHits.Inc()
	m.SetCacheStats(func() CacheStats { return CacheStats{Entries: 2, Bytes: 100, MaxBytes: 1000} })
	m.SetSemanticStats(func() SemanticStats { return SemanticStats{Entries: 1, MaxEntries: 10} })
	for range 10 {
		m.ObserveRequest(context.Background(), CacheHit, time.Millisecond)
	}

	s, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	want := Outcomes{ExactHit: 3, SemanticHit: 2, Coalesced: 1, Miss: 4, Bypass: 5, RateLimited: 6, Error: 8}
	if s.Requests != want {
		t.Errorf("outcomes %+v, want %+v", s.Requests, want)
	}
	if s.PassThrough != 1 {
		t.Errorf("pass through = %v, want 1", s.PassThrough)
	}
	if s.HitRate != 0.6 {
		t.Errorf("hit rate = %v, want 0.6", s.HitRate)
	}
	if s.Upstream != (UpstreamTotals{Calls: 4, Errors: 2, ErrorRate: 0.5}) {
		t.Errorf("upstream = %+v", s.Upstream)
	}
	if s.Saved.InputTokens != 1_000_010 || s.Saved.OutputTokens != 20 || s.Saved.USD != 2.5 {
		t.Errorf("saved = %+v", s.Saved)
	}
	if len(s.Saved.ByModel) != 2 || s.Saved.ByModel[0].Model != "gpt-4o" || s.Saved.ByModel[1].OutputTokens != 20 {
		t.Errorf("by model = %+v", s.Saved.ByModel)
	}
	if s.RateLimitRejections["tokens"] != 1 || s.RateLimitRejections["requests"] != 0 {
		t.Errorf("rejections = %v", s.RateLimitRejections)
	}
	if s.Cache != (CacheTotals{Entries: 2, Bytes: 100, MaxBytes: 1000}) || s.Semantic.MaxEntries != 10 || s.Semantic.ShadowHits != 1 {
		t.Errorf("cache %+v semantic %+v", s.Cache, s.Semantic)
	}
	if h := s.Latency.Hit; h.Count != 10 || h.P50 <= 0.0005 || h.P50 > 0.001 || len(h.Buckets) != len(requestBuckets) {
		t.Errorf("hit latency = %+v", h)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var keys map[string]json.RawMessage
	json.Unmarshal(b, &keys)
	for _, k := range []string{"requests", "hit_rate", "upstream", "saved", "latency", "exact_cache", "semantic_cache", "ratelimit_rejections"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, b)
		}
	}
}

func TestQuantile(t *testing.T) {
	b := []Bucket{{LE: 1, Count: 10}, {LE: 2, Count: 10}, {LE: 4, Count: 30}}
	tests := []struct {
		name  string
		q     float64
		count uint64
		want  float64
	}{
		{"first bucket from 0", 0.1, 40, 0.4},
		{"interpolated", 0.5, 40, 3},
		{"in +Inf", 0.99, 40, 4},
		{"empty", 0.5, 0, 0},
		{"bucket edge", 0.25, 40, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Quantile(tt.q, b, tt.count); math.Abs(got-tt.want) > 1e-12 {
				t.Errorf("Quantile(%v) = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}
