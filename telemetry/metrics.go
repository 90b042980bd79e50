package telemetry

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
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

// MaxModels caps the distinct values of the model label of zest_tokens_saved_total and
// zest_cost_saved_usd_total: the model is named by the client, so once this many models have
// been seen, any new one is counted under OverflowLabelValue. Every other label takes values
// from a fixed set (RouteLabel, an HTTP status 0-599 or "other", the constants above).
const MaxModels = 1000

// OverflowLabelValue is the model label of what models past MaxModels saved.
const OverflowLabelValue = "_overflow_"

// maxCachedRequestSeries bounds the lock-free index of zest_requests_total children; past it
// Request looks children up in the vector itself (slower, same result).
const maxCachedRequestSeries = 4096

// Price is what a model costs in USD per million tokens.
type Price struct {
	InputPerMTok  float64
	OutputPerMTok float64
}

// CacheStats is what the exact cache reports at scrape time.
type CacheStats struct {
	Entries   int64  // entries held now
	Bytes     int64  // bytes held now (the cost the cache charges)
	MaxBytes  int64  // the byte budget (cache.max_bytes); 0 = unknown
	Evictions uint64 // entries evicted since start, never decreasing
}

// SemanticStats is what the semantic cache reports at scrape time.
type SemanticStats struct {
	Entries    int64 // entries held now
	MaxEntries int64 // the entry cap (semantic.max_entries); 0 = unknown
}

// Metrics holds zest's named metrics, all prefixed zest_, registered in a Registry. Fields are
// the client_golang collectors, for callers that want a child of their own; the methods cover
// the hot paths without allocating once a series exists.
type Metrics struct {
	// Requests is zest_requests_total{path,status,cache,layer}; see Request.
	Requests *prometheus.CounterVec
	// RequestDuration is zest_request_duration_seconds{cache}: from a request's arrival to its
	// last byte, by cache status (hit|miss|bypass|none); see ObserveRequest.
	RequestDuration *prometheus.HistogramVec
	// UpstreamRequests is zest_upstream_requests_total{class}: the upstream calls of chat
	// completions by answer, class one of 2xx, 3xx, 4xx, 429, 5xx, or error when no answer
	// came (connection failure, timeout); see ObserveUpstream and UpstreamFailed.
	UpstreamRequests *prometheus.CounterVec
	// UpstreamDuration is zest_upstream_duration_seconds: from sending the
	// upstream request to the end of its body (the whole stream).
	UpstreamDuration prometheus.Histogram
	// UpstreamTTFT is zest_upstream_ttft_seconds: from sending the upstream
	// request to its first body byte (first SSE event for streams).
	UpstreamTTFT prometheus.Histogram
	// Semantic cache counters: zest_semantic_lookups_total (searches made),
	// zest_semantic_hits_total (answers served), zest_semantic_shadow_hits_total
	// (would-be hits in shadow mode, not served) and zest_semantic_errors_total
	// (embedder or index failures; the request went upstream).
	SemanticLookups, SemanticHits, SemanticShadowHits, SemanticErrors prometheus.Counter
	// CacheFeedback is zest_cache_feedback_total{result}: client reports of a wrong cached
	// answer (POST /v1/cache/feedback), result "removed" (the entry left the caches) or
	// "not_found" (no such entry for this tenant).
	CacheFeedback *prometheus.CounterVec
	// RateLimitRejections is zest_ratelimit_rejections_total{type}, type one
	// of RateLimitRequests, RateLimitTokens, RateLimitConcurrent.
	RateLimitRejections *prometheus.CounterVec
	// TokensSaved is zest_tokens_saved_total{model,kind}, kind input|output.
	TokensSaved *prometheus.CounterVec
	// CostSaved is zest_cost_saved_usd_total{model}.
	CostSaved *prometheus.CounterVec

	reg        *Registry
	exact      map[string]Price
	prefixes   []string // price keys, longest first
	status     []string // "0".."599"
	duration   [4]prometheus.Observer
	rejections [3]prometheus.Counter
	upstream   [6]prometheus.Counter // by upstreamClasses

	mu         sync.Mutex // serialises the writers of reqs and models
	reqs       atomic.Pointer[map[reqKey]prometheus.Counter]
	models     atomic.Pointer[map[string]*modelSeries]
	cacheStats atomic.Pointer[func() CacheStats]
	semStats   atomic.Pointer[func() SemanticStats]
}

// reqKey is one zest_requests_total series; status is -1 for "other".
type reqKey struct {
	route        string
	status       int
	cache, layer string
}

// modelSeries are the saved-token and cost counters of one model label.
type modelSeries struct {
	in, out, cost prometheus.Counter
	price         Price
	priced        bool
	overflow      bool // the OverflowLabelValue series: price each model as it comes
}

// upstreamClasses are the values of zest_upstream_requests_total's class label.
var upstreamClasses = [...]string{"2xx", "3xx", "4xx", "429", "5xx", "error"}

// Buckets of the latency histograms, in seconds.
var (
	requestBuckets  = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}
	upstreamBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300}
	ttftBuckets     = []float64{0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.5, 3, 6, 12, 30}
)

// NewMetrics registers zest's metrics in r. prices maps model names (or
// prefixes, see Saved) to prices; nil means token counts only. Calling it
// twice on one registry panics (duplicate registration).
func NewMetrics(r *Registry, prices map[string]Price) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zest_requests_total",
			Help: "Requests served, by route, HTTP status, cache status (hit|miss|bypass|none) and cache layer (exact|semantic|coalesced or empty)."},
			[]string{"path", "status", "cache", "layer"}),
		RequestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "zest_request_duration_seconds",
			Help: "Time from a request's arrival to the end of zest's answer, by cache status (hit|miss|bypass|none).", Buckets: requestBuckets},
			[]string{"cache"}),
		UpstreamRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zest_upstream_requests_total",
			Help: "Upstream calls of chat completions, by answer class (2xx|3xx|4xx|429|5xx, or error when no answer came)."}, []string{"class"}),
		UpstreamDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "zest_upstream_duration_seconds",
			Help: "Time from sending an upstream request to the end of its response body.", Buckets: upstreamBuckets}),
		UpstreamTTFT: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "zest_upstream_ttft_seconds",
			Help: "Time from sending an upstream request to the first byte of its response body.", Buckets: ttftBuckets}),
		SemanticLookups:    prometheus.NewCounter(prometheus.CounterOpts{Name: "zest_semantic_lookups_total", Help: "Semantic cache searches made."}),
		SemanticHits:       prometheus.NewCounter(prometheus.CounterOpts{Name: "zest_semantic_hits_total", Help: "Answers served from the semantic cache."}),
		SemanticShadowHits: prometheus.NewCounter(prometheus.CounterOpts{Name: "zest_semantic_shadow_hits_total", Help: "Semantic cache hits found in shadow mode and not served."}),
		SemanticErrors:     prometheus.NewCounter(prometheus.CounterOpts{Name: "zest_semantic_errors_total", Help: "Embedder or vector index failures; the request went upstream."}),
		CacheFeedback: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zest_cache_feedback_total",
			Help: "Client reports of a wrong cached answer, by result (removed|not_found)."}, []string{"result"}),
		RateLimitRejections: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zest_ratelimit_rejections_total",
			Help: "Requests rejected with 429, by limit type (requests|tokens|concurrent)."}, []string{"type"}),
		TokensSaved: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zest_tokens_saved_total",
			Help: "Upstream tokens not spent thanks to cache hits, by model and kind (input|output)."}, []string{"model", "kind"}),
		CostSaved: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zest_cost_saved_usd_total",
			Help: "Estimated upstream spend avoided by cache hits in USD, by model (models without a configured price count 0)."}, []string{"model"}),
		reg:    r,
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
	for i, c := range []string{CacheHit, CacheMiss, CacheBypass, CacheNone} {
		m.duration[i] = m.RequestDuration.WithLabelValues(c)
	}
	for i, t := range []string{RateLimitRequests, RateLimitTokens, RateLimitConcurrent} {
		m.rejections[i] = m.RateLimitRejections.WithLabelValues(t)
	}
	for i, c := range upstreamClasses {
		m.upstream[i] = m.UpstreamRequests.WithLabelValues(c)
	}
	m.reqs.Store(&map[reqKey]prometheus.Counter{})
	m.models.Store(&map[string]*modelSeries{})
	cache := func() CacheStats {
		if fn := m.cacheStats.Load(); fn != nil {
			return (*fn)()
		}
		return CacheStats{}
	}
	sem := func() SemanticStats {
		if fn := m.semStats.Load(); fn != nil {
			return (*fn)()
		}
		return SemanticStats{}
	}
	gauge := func(name, help string, fn func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn)
	}
	r.MustRegister(m.Requests, m.RequestDuration, m.UpstreamRequests, m.UpstreamDuration, m.UpstreamTTFT,
		m.SemanticLookups, m.SemanticHits, m.SemanticShadowHits, m.SemanticErrors, m.CacheFeedback,
		m.RateLimitRejections, m.TokensSaved, m.CostSaved,
		gauge("zest_cache_entries", "Entries in the exact cache.", func() float64 { return float64(cache().Entries) }),
		gauge("zest_cache_bytes", "Bytes held by the exact cache.", func() float64 { return float64(cache().Bytes) }),
		gauge("zest_cache_max_bytes", "Byte budget of the exact cache (cache.max_bytes).", func() float64 { return float64(cache().MaxBytes) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "zest_cache_evictions_total", Help: "Entries evicted from the exact cache."},
			func() float64 { return float64(cache().Evictions) }),
		gauge("zest_semantic_entries", "Entries in the semantic cache.", func() float64 { return float64(sem().Entries) }),
		gauge("zest_semantic_max_entries", "Entry cap of the semantic cache (semantic.max_entries).", func() float64 { return float64(sem().MaxEntries) }),
	)
	return m
}

// SetCacheStats sets the function the exact-cache gauges read at scrape time (all zero until
// set). fn must be safe for concurrent use and cheap; it is called once per cache metric per
// scrape.
func (m *Metrics) SetCacheStats(fn func() CacheStats) { m.cacheStats.Store(&fn) }

// SetSemanticStats sets the function the semantic-cache gauges read at scrape time (zero
// until set), like SetCacheStats.
func (m *Metrics) SetSemanticStats(fn func() SemanticStats) { m.semStats.Store(&fn) }

// Request counts one finished request. path is reduced to a bounded route
// label by RouteLabel; cache is one of CacheHit, CacheMiss, CacheBypass,
// CacheNone and layer one of the Layer constants. Allocation-free once the
// series exists.
func (m *Metrics) Request(path string, status int, cache, layer string) {
	k := reqKey{RouteLabel(path), status, cache, layer}
	if status < 0 || status >= len(m.status) {
		k.status = -1
	}
	if c, ok := (*m.reqs.Load())[k]; ok {
		c.Inc()
		return
	}
	m.requestSeries(k).Inc()
}

// requestSeries finds or makes the child of k and, while the index is small, adds it there
// (copy on write: readers never lock).
func (m *Metrics) requestSeries(k reqKey) prometheus.Counter {
	s := "other"
	if k.status >= 0 {
		s = m.status[k.status]
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.reqs.Load()
	if c, ok := old[k]; ok {
		return c
	}
	c := m.Requests.WithLabelValues(k.route, s, k.cache, k.layer)
	if len(old) < maxCachedRequestSeries {
		next := make(map[reqKey]prometheus.Counter, len(old)+1)
		for kk, v := range old {
			next[kk] = v
		}
		next[k] = c
		m.reqs.Store(&next)
	}
	return c
}

// ObserveRequest records how long a request took under its cache status (CacheHit,
// CacheMiss, CacheBypass; anything else counts as CacheNone). When ctx carries a sampled
// span, the observation keeps its trace id as an exemplar.
func (m *Metrics) ObserveRequest(ctx context.Context, cache string, d time.Duration) {
	i := 3
	switch cache {
	case CacheHit:
		i = 0
	case CacheMiss:
		i = 1
	case CacheBypass:
		i = 2
	}
	observe(ctx, m.duration[i], d)
}

// ObserveUpstream records an upstream call that answered with status: its class in
// zest_upstream_requests_total and its duration in zest_upstream_duration_seconds, with the
// trace id of ctx's sampled span as an exemplar.
func (m *Metrics) ObserveUpstream(ctx context.Context, status int, d time.Duration) {
	i := 4 // 5xx, and anything outside 100-599
	switch {
	case status == 429:
		i = 3
	case status >= 100 && status < 300:
		i = 0
	case status >= 300 && status < 400:
		i = 1
	case status >= 400 && status < 500:
		i = 2
	}
	m.upstream[i].Inc()
	observe(ctx, m.UpstreamDuration, d)
}

// UpstreamFailed counts an upstream call that got no answer (class "error").
func (m *Metrics) UpstreamFailed() { m.upstream[5].Inc() }

// ObserveTTFT records an upstream call's time to first byte (zest_upstream_ttft_seconds), with
// the trace id of ctx's sampled span as an exemplar.
func (m *Metrics) ObserveTTFT(ctx context.Context, d time.Duration) {
	observe(ctx, m.UpstreamTTFT, d)
}

// observe records d in seconds, with a trace_id exemplar when ctx holds a sampled span.
func observe(ctx context.Context, o prometheus.Observer, d time.Duration) {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() && sc.IsSampled() {
		if eo, ok := o.(prometheus.ExemplarObserver); ok {
			eo.ObserveWithExemplar(d.Seconds(), prometheus.Labels{"trace_id": sc.TraceID().String()})
			return
		}
	}
	o.Observe(d.Seconds())
}

// RateLimited counts one rejection of the given limit type.
func (m *Metrics) RateLimited(limitType string) {
	switch limitType {
	case RateLimitRequests:
		m.rejections[0].Inc()
	case RateLimitTokens:
		m.rejections[1].Inc()
	case RateLimitConcurrent:
		m.rejections[2].Inc()
	default:
		m.RateLimitRejections.WithLabelValues(limitType).Inc()
	}
}

// Saved counts the tokens a cache hit saved and, when the model has a price,
// the money: in*InputPerMTok/1e6 + out*OutputPerMTok/1e6 USD. The price is
// found by exact model name, else by the longest configured name that is a
// prefix of model and ends at a boundary: the model's next character is one
// of "-:@/_" (or the configured name itself ends in one), so "gpt-4o" prices
// "gpt-4o-2024-08-06" and "llama3.1:8b" can use "llama3.1", while "gpt-4"
// never prices "gpt-4o". Negative counts are treated as 0; an empty model is
// labelled "unknown"; models past MaxModels are labelled OverflowLabelValue.
func (m *Metrics) Saved(model string, in, out int) {
	in, out = max(in, 0), max(out, 0)
	if model == "" {
		model = "unknown"
	}
	s, ok := (*m.models.Load())[model]
	if !ok {
		s = m.modelSeries(model)
	}
	if in > 0 {
		s.in.Add(float64(in))
	}
	if out > 0 {
		s.out.Add(float64(out))
	}
	p, priced := s.price, s.priced
	if s.overflow {
		p, priced = m.Price(model)
	}
	if priced {
		if usd := (float64(in)*p.InputPerMTok + float64(out)*p.OutputPerMTok) / 1e6; usd > 0 {
			s.cost.Add(usd)
		}
	}
}

// modelSeries finds or makes the counters of model, or of OverflowLabelValue once MaxModels
// models are known.
func (m *Metrics) modelSeries(model string) *modelSeries {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.models.Load()
	if s, ok := old[model]; ok {
		return s
	}
	if len(old) >= MaxModels {
		model = OverflowLabelValue
		if s, ok := old[model]; ok {
			return s
		}
	}
	s := &modelSeries{
		in:   m.TokensSaved.WithLabelValues(model, "input"),
		out:  m.TokensSaved.WithLabelValues(model, "output"),
		cost: m.CostSaved.WithLabelValues(model),
	}
	s.price, s.priced = m.Price(model)
	s.overflow = model == OverflowLabelValue
	next := make(map[string]*modelSeries, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[model] = s
	m.models.Store(&next)
	return s
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
