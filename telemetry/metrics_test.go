package telemetry

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
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
			r := NewRegistry(nil)
			m := NewMetrics(r, prices)
			m.Saved(tt.model, tt.in, tt.out)
			if got := value(t, r, "zest_tokens_saved_total", "model", tt.model, "kind", "input"); got != float64(tt.in) {
				t.Errorf("input tokens = %v, want %d", got, tt.in)
			}
			if got := value(t, r, "zest_tokens_saved_total", "model", tt.model, "kind", "output"); got != float64(tt.out) {
				t.Errorf("output tokens = %v, want %d", got, tt.out)
			}
			got := value(t, r, "zest_cost_saved_usd_total", "model", tt.model)
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
	r := NewRegistry(nil)
	m := NewMetrics(r, map[string]Price{"m": {InputPerMTok: 1, OutputPerMTok: 2}})
	m.Saved("m", 100, 10)
	m.Saved("m", 100, -5)
	m.Saved("", 7, 0)
	if got := value(t, r, "zest_tokens_saved_total", "model", "m", "kind", "input"); got != 200 {
		t.Errorf("input = %v, want 200", got)
	}
	if got := value(t, r, "zest_tokens_saved_total", "model", "m", "kind", "output"); got != 10 {
		t.Errorf("output = %v, want 10", got)
	}
	if got := value(t, r, "zest_cost_saved_usd_total", "model", "m"); math.Abs(got-220e-6) > 1e-12 {
		t.Errorf("cost = %v, want 0.00022", got)
	}
	if got := value(t, r, "zest_tokens_saved_total", "model", "unknown", "kind", "input"); got != 7 {
		t.Errorf("empty model counted as %v under unknown, want 7", got)
	}
}

func TestRequestLabels(t *testing.T) {
	r := NewRegistry(nil)
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
		{[]string{"path", "/v1/chat/completions", "status", "200", "cache", "hit", "layer", "semantic"}, 2},
		{[]string{"path", "/v1/files", "status", "404", "cache", "none", "layer", ""}, 1},
		{[]string{"path", "/v1/other", "status", "200", "cache", "none", "layer", ""}, 1},
		{[]string{"path", "/v1/chat/completions", "status", "other", "cache", "miss", "layer", ""}, 1},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.labels, ","), func(t *testing.T) {
			if got := value(t, r, "zest_requests_total", tt.labels...); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	if got := value(t, r, "zest_ratelimit_rejections_total", "type", "tokens"); got != 1 {
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
	r := NewRegistry(nil)
	m := NewMetrics(r, nil)
	m.UpstreamDuration.Observe(1.5)
	m.UpstreamTTFT.Observe(0.3)
	m.SemanticShadowHits.Inc()

	out := scrape(t, r, "")
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

	m.SetCacheStats(func() CacheStats { return CacheStats{Entries: 12, Bytes: 4096, MaxBytes: 1 << 20, Evictions: 3} })
	m.SetSemanticStats(func() SemanticStats { return SemanticStats{Entries: 5, MaxEntries: 100} })
	out = scrape(t, r, "")
	for _, want := range []string{"zest_cache_entries 12\n", "zest_cache_bytes 4096\n", "zest_cache_max_bytes 1.048576e+06\n",
		"zest_cache_evictions_total 3\n", "zest_semantic_entries 5\n", "zest_semantic_max_entries 100\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("after SetCacheStats, scrape lacks %q", want)
		}
	}
}

// TestModelLabelCap: the client-named model label stops growing at MaxModels; later models
// are counted, and priced, under the overflow series.
func TestModelLabelCap(t *testing.T) {
	r := NewRegistry(nil)
	m := NewMetrics(r, map[string]Price{"priced": {InputPerMTok: 1e6}})
	for i := range MaxModels + 50 {
		m.Saved(fmt.Sprint("model-", i), 1, 0)
	}
	m.Saved("priced-late", 2, 0) // past the cap, but still priced by its own name
	if got := value(t, r, "zest_tokens_saved_total", "model", OverflowLabelValue, "kind", "input"); got != 52 {
		t.Errorf("overflow input tokens = %v, want 52", got)
	}
	if got := value(t, r, "zest_cost_saved_usd_total", "model", OverflowLabelValue); got != 2 {
		t.Errorf("overflow cost = %v, want 2", got)
	}
	if got := value(t, r, "zest_tokens_saved_total", "model", "model-0", "kind", "input"); got != 1 {
		t.Errorf("model-0 = %v, want 1", got)
	}
	out := scrape(t, r, "")
	if n := strings.Count(out, "zest_cost_saved_usd_total{"); n != MaxModels+1 {
		t.Errorf("%d cost series, want %d", n, MaxModels+1)
	}
}

// TestUpstreamClasses: ObserveUpstream files a status under its class; UpstreamFailed is "error".
func TestUpstreamClasses(t *testing.T) {
	r := NewRegistry(nil)
	m := NewMetrics(r, nil)
	ctx := context.Background()
	for _, st := range []int{200, 201, 304, 400, 429, 500, 503, 0} {
		m.ObserveUpstream(ctx, st, time.Second)
	}
	m.UpstreamFailed()
	want := map[string]float64{"2xx": 2, "3xx": 1, "4xx": 1, "429": 1, "5xx": 3, "error": 1}
	for class, n := range want {
		if got := value(t, r, "zest_upstream_requests_total", "class", class); got != n {
			t.Errorf("class %s = %v, want %v", class, got, n)
		}
	}
	if got := value(t, r, "zest_upstream_duration_seconds_count"); got != 8 {
		t.Errorf("duration count = %v, want 8", got)
	}
}

// value reads one series of r's zest metrics by its label pairs (name, value, ...); a
// histogram's count or sum with the _count or _sum suffix. It is 0 for a series that does not
// exist, and never creates one.
func value(t *testing.T, r *Registry, name string, kv ...string) float64 {
	t.Helper()
	fams, err := r.zest.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		want[kv[i]] = kv[i+1]
	}
	for _, f := range fams {
		base, suffix := f.GetName(), ""
		if name != base {
			if b, ok := strings.CutSuffix(name, "_count"); ok && b == base {
				suffix = "_count"
			} else if b, ok := strings.CutSuffix(name, "_sum"); ok && b == base {
				suffix = "_sum"
			} else {
				continue
			}
		}
		for _, x := range f.GetMetric() {
			l := labels(x)
			if len(l) != len(want) {
				continue
			}
			match := true
			for k, v := range want {
				match = match && l[k] == v
			}
			if !match {
				continue
			}
			switch suffix {
			case "_count":
				return float64(x.GetHistogram().GetSampleCount())
			case "_sum":
				return x.GetHistogram().GetSampleSum()
			}
			return x.GetCounter().GetValue() + x.GetGauge().GetValue()
		}
	}
	return 0
}

// scrape GETs r's handler with the given Accept header and returns the body.
func scrape(t *testing.T, r *Registry, accept string) string {
	t.Helper()
	body, _ := scrapeResp(t, r, accept)
	return body
}

func scrapeResp(t *testing.T, r *Registry, accept string) (string, http.Header) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	w := httptest.NewRecorder()
	r.Handler().ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", w.Code, w.Body)
	}
	return w.Body.String(), w.Header()
}
