package telemetry

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

func TestSavedPrefixPricing(t *testing.T) {
	prices := map[string]Price{
		"gpt-4o":      {InputPerMTok: 2.5, OutputPerMTok: 10},
		"gpt-4o-mini": {InputPerMTok: 0.15, OutputPerMTok: 0.6},
		"gpt-4":       {InputPerMTok: 30, OutputPerMTok: 60},
		"llama3.1":    {InputPerMTok: 0.1, OutputPerMTok: 0.2},
		"openrouter/": {InputPerMTok: 1, OutputPerMTok: 1},
	}
	tests := []struct {
		model   string
		in, out int
		wantUSD float64 // 0 with priced=false: no price
		priced  bool
	}{
		{"gpt-4o", 1_000_000, 1_000_000, 12.5, true},
		{"gpt-4o-2024-08-06", 1_000_000, 0, 2.5, true},              // dated snapshot of gpt-4o
		{"gpt-4o-mini-2024-07-18", 2_000_000, 1_000_000, 0.9, true}, // longest prefix wins over gpt-4o
		{"gpt-4-turbo", 1000, 1000, 0.09, true},
		{"gpt-4.1", 1000, 1000, 0, false},   // "gpt-4" must not price gpt-4.1
		{"gpt-4omni", 1000, 1000, 0, false}, // nor a different name that shares letters
		{"llama3.1:8b", 1_000_000, 1_000_000, 0.3, true},
		{"openrouter/anything", 1_000_000, 0, 1, true}, // configured key ends in a separator
		{"mistral-small", 500, 20, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			r := NewRegistry()
			m := NewMetrics(r, prices)
			m.Saved(tt.model, tt.in, tt.out)
			if got := r.Value("zest_tokens_saved_total", tt.model, "input"); got != float64(tt.in) {
				t.Errorf("input tokens = %v, want %d", got, tt.in)
			}
			if got := r.Value("zest_tokens_saved_total", tt.model, "output"); got != float64(tt.out) {
				t.Errorf("output tokens = %v, want %d", got, tt.out)
			}
			got := r.Value("zest_cost_saved_usd_total", tt.model)
			if math.Abs(got-tt.wantUSD) > 1e-9 {
				t.Errorf("cost = %v, want %v", got, tt.wantUSD)
			}
			if _, ok := m.Price(tt.model); ok != tt.priced {
				t.Errorf("Price found = %v, want %v", ok, tt.priced)
			}
		})
	}
}

func TestSavedAccumulatesAndIgnoresNegatives(t *testing.T) {
	r := NewRegistry()
	m := NewMetrics(r, map[string]Price{"m": {InputPerMTok: 1, OutputPerMTok: 2}})
	m.Saved("m", 100, 10)
	m.Saved("m", 100, -5)
	m.Saved("", 7, 0)
	if got := r.Value("zest_tokens_saved_total", "m", "input"); got != 200 {
		t.Errorf("input = %v, want 200", got)
	}
	if got := r.Value("zest_tokens_saved_total", "m", "output"); got != 10 {
		t.Errorf("output = %v, want 10", got)
	}
	if got := r.Value("zest_cost_saved_usd_total", "m"); math.Abs(got-220e-6) > 1e-12 {
		t.Errorf("cost = %v, want 0.00022", got)
	}
	if got := r.Value("zest_tokens_saved_total", "unknown", "input"); got != 7 {
		t.Errorf("empty model counted as %v under unknown, want 7", got)
	}
}

func TestRequestLabels(t *testing.T) {
	r := NewRegistry()
	m := NewMetrics(r, nil)
	m.Request("/v1/chat/completions", 200, CacheHit, LayerSemantic)
	m.Request("/v1/chat/completions", 200, CacheHit, LayerSemantic)
	m.Request("/v1/files/file-abc123/content", 404, CacheNone, LayerNone)
	m.Request("/v1/whatever/x", 200, CacheNone, LayerNone)
	m.Request("/v1/chat/completions", 1000, CacheMiss, LayerNone)
	m.RateLimited(RateLimitTokens)

	tests := []struct {
		labels []string
		want   float64
	}{
		{[]string{"/v1/chat/completions", "200", "hit", "semantic"}, 2},
		{[]string{"/v1/files", "404", "none", ""}, 1},
		{[]string{"/v1/other", "200", "none", ""}, 1},
		{[]string{"/v1/chat/completions", "other", "miss", ""}, 1},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.labels, ","), func(t *testing.T) {
			if got := r.Value("zest_requests_total", tt.labels...); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	if got := r.Value("zest_ratelimit_rejections_total", "tokens"); got != 1 {
		t.Errorf("rejections = %v, want 1", got)
	}
}

func TestRouteLabel(t *testing.T) {
	tests := map[string]string{
		"/v1/chat/completions":                  "/v1/chat/completions",
		"/v1/chat/completions/chatcmpl-1":       "/v1/chat",
		"/v1/models":                            "/v1/models",
		"/v1/models/gpt-4o":                     "/v1/models",
		"/v1/embeddings":                        "/v1/embeddings",
		"/v1/random-" + strings.Repeat("x", 40): "/v1/other",
		"/healthz":                              "/healthz",
		"/metrics":                              "/metrics",
		"/admin/cache":                          "/admin",
		"/":                                     "other",
		"/v2/chat/completions":                  "other",
	}
	for in, want := range tests {
		t.Run(in, func(t *testing.T) {
			if got := RouteLabel(in); got != want {
				t.Errorf("RouteLabel(%q) = %q, want %q", in, got, want)
			}
		})
	}
}

func TestMetricsExposition(t *testing.T) {
	r := NewRegistry()
	m := NewMetrics(r, nil)
	m.UpstreamDuration.Observe(1.5)
	m.UpstreamTTFT.Observe(0.3)
	m.SemanticShadowHits.Inc()

	scrape := func() string {
		var b bytes.Buffer
		r.WriteTo(&b)
		return b.String()
	}
	out := scrape()
	for _, want := range []string{
		"# TYPE zest_upstream_duration_seconds histogram\n",
		`zest_upstream_duration_seconds_bucket{le="2"} 1` + "\n",
		`zest_upstream_duration_seconds_bucket{le="1"} 0` + "\n",
		`zest_upstream_ttft_seconds_bucket{le="0.4"} 1` + "\n",
		"zest_semantic_shadow_hits_total 1\n",
		"zest_semantic_hits_total 0\n", // unlabelled metrics exist from the start
		"zest_cache_entries 0\n",       // stats not set yet
		"# TYPE zest_cache_evictions_total counter\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		name := strings.TrimPrefix(strings.TrimPrefix(line, "# HELP "), "# TYPE ")
		if !strings.HasPrefix(name, "zest_") {
			t.Errorf("metric without zest_ prefix: %q", line)
		}
	}

	m.SetCacheStats(func() CacheStats { return CacheStats{Entries: 12, Bytes: 4096, Evictions: 3} })
	out = scrape()
	for _, want := range []string{"zest_cache_entries 12\n", "zest_cache_bytes 4096\n", "zest_cache_evictions_total 3\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("after SetCacheStats, scrape lacks %q", want)
		}
	}
}
