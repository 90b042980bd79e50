package telemetry

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
)

// Label values of zest_requests_total's cache and layer labels, shared with
// the span attributes zest.cache.status and zest.cache.layer.
const (
	CacheHit    = "hit"
	CacheMiss   = "miss"
	CacheBypass = "bypass" // the lookup was skipped (no_cache, semantic_only...)
	CacheNone   = "none"   // not a cacheable request (any path but chat completions)

	LayerExact     = "exact"
	LayerSemantic  = "semantic"
	LayerCoalesced = "coalesced" // answered by another request's upstream call
	LayerNone      = ""
)

// Values of ratelimit_rejections_total's type label.
const (
	RateLimitRequests   = "requests"
	RateLimitTokens     = "tokens"
	RateLimitConcurrent = "concurrent"
)

// Price is what a model costs in USD per million tokens.
type Price struct {
	InputPerMTok  float64
	OutputPerMTok float64
}

// CacheStats is what the exact cache reports at scrape time.
type CacheStats struct {
	Entries   int64  // entries held now
	Bytes     int64  // bytes held now (the cost the cache charges)
	Evictions uint64 // entries evicted since start, never decreasing
}

// Metrics holds zest's named metrics, all prefixed zest_. Fields are for
// callers that want to keep a child for a hot path; the methods cover the
// common cases.
type Metrics struct {
	// Requests is zest_requests_total{path,status,cache,layer}; see Request.
	Requests *CounterVec
	// UpstreamDuration is zest_upstream_duration_seconds: from sending the
	// upstream request to the end of its body (the whole stream).
	UpstreamDuration *Histogram
	// UpstreamTTFT is zest_upstream_ttft_seconds: from sending the upstream
	// request to its first body byte (first SSE event for streams).
	UpstreamTTFT *Histogram
	// Semantic cache counters: zest_semantic_lookups_total (searches made),
	// zest_semantic_hits_total (answers served), zest_semantic_shadow_hits_total
	// (would-be hits in shadow mode, not served) and zest_semantic_errors_total
	// (embedder or index failures; the request went upstream).
	SemanticLookups, SemanticHits, SemanticShadowHits, SemanticErrors *Counter
	// CacheFeedback is zest_cache_feedback_total{result}: client reports of a wrong cached
	// answer (POST /v1/cache/feedback), result "removed" (the entry left the caches) or
	// "not_found" (no such entry for this tenant).
	CacheFeedback *CounterVec
	// RateLimitRejections is zest_ratelimit_rejections_total{type}, type one
	// of RateLimitRequests, RateLimitTokens, RateLimitConcurrent.
	RateLimitRejections *CounterVec
	// TokensSaved is zest_tokens_saved_total{model,kind}, kind input|output.
	TokensSaved *CounterVec
	// CostSaved is zest_cost_saved_usd_total{model}.
	CostSaved *CounterVec

	exact      map[string]Price
	prefixes   []string // price keys, longest first
	status     []string // "0".."599"
	cacheStats atomic.Pointer[func() CacheStats]
}

// NewMetrics registers zest's metrics in r. prices maps model names (or
// prefixes, see Saved) to prices; nil means token counts only. Calling it
// twice on one registry panics (the cache gauges are funcs).
func NewMetrics(r *Registry, prices map[string]Price) *Metrics {
	m := &Metrics{
		Requests: r.Counter("zest_requests_total",
			"Requests served, by route, HTTP status, cache status (hit|miss|bypass|none) and cache layer (exact|semantic|coalesced or empty).",
			"path", "status", "cache", "layer"),
		UpstreamDuration: r.Histogram("zest_upstream_duration_seconds",
			"Time from sending an upstream request to the end of its response body.",
			[]float64{0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300}).With(),
		UpstreamTTFT: r.Histogram("zest_upstream_ttft_seconds",
			"Time from sending an upstream request to the first byte of its response body.",
			[]float64{0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.5, 3, 6, 12, 30}).With(),
		SemanticLookups:    r.Counter("zest_semantic_lookups_total", "Semantic cache searches made.").With(),
		SemanticHits:       r.Counter("zest_semantic_hits_total", "Answers served from the semantic cache.").With(),
		SemanticShadowHits: r.Counter("zest_semantic_shadow_hits_total", "Semantic cache hits found in shadow mode and not served.").With(),
		SemanticErrors:     r.Counter("zest_semantic_errors_total", "Embedder or vector index failures; the request went upstream.").With(),
		CacheFeedback: r.Counter("zest_cache_feedback_total",
			"Client reports of a wrong cached answer, by result (removed|not_found).", "result"),
		RateLimitRejections: r.Counter("zest_ratelimit_rejections_total",
			"Requests rejected with 429, by limit type (requests|tokens|concurrent).", "type"),
		TokensSaved: r.Counter("zest_tokens_saved_total",
			"Upstream tokens not spent thanks to cache hits, by model and kind (input|output).", "model", "kind"),
		CostSaved: r.Counter("zest_cost_saved_usd_total",
			"Estimated upstream spend avoided by cache hits in USD, by model (models without a configured price count 0).", "model"),
		exact:  make(map[string]Price, len(prices)),
		status: make([]string, 600),
	}
	for k, p := range prices {
		m.exact[k] = p
		m.prefixes = append(m.prefixes, k)
	}
	slices.SortFunc(m.prefixes, func(a, b string) int {
		return cmp.Or(cmp.Compare(len(b), len(a)), cmp.Compare(a, b))
	})
	for i := range m.status {
		m.status[i] = strconv.Itoa(i)
	}
	stat := func() CacheStats {
		if fn := m.cacheStats.Load(); fn != nil {
			return (*fn)()
		}
		return CacheStats{}
	}
	r.GaugeFunc("zest_cache_entries", "Entries in the exact cache.", func() float64 { return float64(stat().Entries) })
	r.GaugeFunc("zest_cache_bytes", "Bytes held by the exact cache.", func() float64 { return float64(stat().Bytes) })
	r.CounterFunc("zest_cache_evictions_total", "Entries evicted from the exact cache.", func() float64 { return float64(stat().Evictions) })
	return m
}

// SetCacheStats sets the function the cache gauges read at scrape time (all
// zero until set). fn must be safe for concurrent use and cheap; it is called
// once per cache metric per scrape.
func (m *Metrics) SetCacheStats(fn func() CacheStats) {
	m.cacheStats.Store(&fn)
}

// Request counts one finished request. path is reduced to a bounded route
// label by RouteLabel; cache is one of CacheHit, CacheMiss, CacheBypass,
// CacheNone and layer one of the Layer constants. Allocation-free once the
// series exists.
func (m *Metrics) Request(path string, status int, cache, layer string) {
	s := "other"
	if status >= 0 && status < len(m.status) {
		s = m.status[status]
	}
	m.Requests.With(RouteLabel(path), s, cache, layer).Inc()
}

// RateLimited counts one rejection of the given limit type.
func (m *Metrics) RateLimited(limitType string) {
	m.RateLimitRejections.With(limitType).Inc()
}

// Saved counts the tokens a cache hit saved and, when the model has a price,
// the money: in*InputPerMTok/1e6 + out*OutputPerMTok/1e6 USD. The price is
// found by exact model name, else by the longest configured name that is a
// prefix of model and ends at a boundary: the model's next character is one
// of "-:@/_" (or the configured name itself ends in one), so "gpt-4o" prices
// "gpt-4o-2024-08-06" and "llama3.1:8b" can use "llama3.1", while "gpt-4"
// never prices "gpt-4o". Negative counts are treated as 0; an empty model is
// labelled "unknown".
func (m *Metrics) Saved(model string, in, out int) {
	in, out = max(in, 0), max(out, 0)
	if model == "" {
		model = "unknown"
	}
	if in > 0 {
		m.TokensSaved.With(model, "input").Add(float64(in))
	}
	if out > 0 {
		m.TokensSaved.With(model, "output").Add(float64(out))
	}
	if p, ok := m.Price(model); ok {
		if usd := (float64(in)*p.InputPerMTok + float64(out)*p.OutputPerMTok) / 1e6; usd > 0 {
			m.CostSaved.With(model).Add(usd)
		}
	}
}

// Price returns the price Saved uses for model, and whether there is one.
func (m *Metrics) Price(model string) (Price, bool) {
	if p, ok := m.exact[model]; ok {
		return p, true
	}
	for _, k := range m.prefixes {
		if len(k) < len(model) && strings.HasPrefix(model, k) &&
			(isModelSep(k[len(k)-1]) || isModelSep(model[len(k)])) {
			return m.exact[k], true
		}
	}
	return Price{}, false
}

func isModelSep(c byte) bool {
	return c == '-' || c == ':' || c == '@' || c == '/' || c == '_'
}

// isAPIResource reports whether seg is a first path segment after /v1/ that
// RouteLabel keeps.
func isAPIResource(seg string) bool {
	switch seg {
	case "chat", "completions", "embeddings", "models", "responses", "moderations",
		"images", "audio", "files", "uploads", "batches", "fine_tuning", "assistants",
		"threads", "vector_stores", "realtime", "conversations", "containers", "evals":
		return true
	}
	return false
}

// RouteLabel maps a request path to a label with bounded cardinality:
// "/v1/chat/completions" stays as it is; any other "/v1/X/..." becomes
// "/v1/X" when X is an OpenAI API resource (models, embeddings, files...)
// and "/v1/other" otherwise; "/healthz" and "/metrics" stay; "/admin/..."
// becomes "/admin"; everything else is "other". Ids in paths never become
// label values.
func RouteLabel(path string) string {
	switch path {
	case "/v1/chat/completions", "/healthz", "/metrics", "/admin":
		return path
	}
	if rest, ok := strings.CutPrefix(path, "/v1/"); ok {
		seg, _, _ := strings.Cut(rest, "/")
		if isAPIResource(seg) {
			return path[:len("/v1/")+len(seg)]
		}
		return "/v1/other"
	}
	if strings.HasPrefix(path, "/admin/") {
		return "/admin"
	}
	return "other"
}
