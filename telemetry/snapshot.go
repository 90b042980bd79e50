package telemetry

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
)

// Snapshot is zest's metrics at one moment, summed into what an operator asks about: the
// JSON under "metrics" in GET /admin/stats, which the dashboard page charts. Every counter is
// a total since start; a reader computes rates from two snapshots. Keys are snake_case.
type Snapshot struct {
	// Requests are the chat-completion requests by outcome.
	Requests Outcomes `json:"requests"`
	// PassThrough counts the other /v1/ requests, forwarded unchanged.
	PassThrough float64 `json:"pass_through"`
	// HitRate is hits / (hits + misses) over chat completions (coalesced followers are hits);
	// 0 before the first.
	HitRate float64 `json:"hit_rate"`
	// Upstream are the upstream calls of chat completions.
	Upstream UpstreamTotals `json:"upstream"`
	// Saved is what cache hits saved.
	Saved Saved `json:"saved"`
	// Latency holds the latency histograms.
	Latency Latencies `json:"latency"`
	// Cache is the exact cache against its budget.
	Cache CacheTotals `json:"exact_cache"`
	// Semantic is the semantic cache against its cap, with its counters.
	Semantic SemanticTotals `json:"semantic_cache"`
	// RateLimitRejections are the 429s zest sent, by limit type (requests, tokens, concurrent).
	RateLimitRejections map[string]float64 `json:"ratelimit_rejections"`
}

// Outcomes split chat completions by how they were answered. They are exclusive: a 429 is
// RateLimited, any other status >= 400 (or none) is Error, whatever the cache did.
type Outcomes struct {
	ExactHit    float64 `json:"exact_hit"`
	SemanticHit float64 `json:"semantic_hit"`
	Coalesced   float64 `json:"coalesced"`
	Miss        float64 `json:"miss"`
	Bypass      float64 `json:"bypass"`
	RateLimited float64 `json:"rate_limited"`
	Error       float64 `json:"error"`
}

// UpstreamTotals count the upstream calls of chat completions: Errors are 5xx answers and
// calls that got no answer (connection failures, timeouts); ErrorRate is Errors / Calls, 0
// before the first call.
type UpstreamTotals struct {
	Calls     float64 `json:"calls"`
	Errors    float64 `json:"errors"`
	ErrorRate float64 `json:"error_rate"`
}

// Saved totals the tokens and dollars cache hits saved, overall and per model (sorted by
// dollars, then tokens, then name).
type Saved struct {
	InputTokens  float64      `json:"input_tokens"`
	OutputTokens float64      `json:"output_tokens"`
	USD          float64      `json:"usd"`
	ByModel      []ModelSaved `json:"by_model"`
}

// ModelSaved is what hits on one model saved.
type ModelSaved struct {
	Model        string  `json:"model"`
	InputTokens  float64 `json:"input_tokens"`
	OutputTokens float64 `json:"output_tokens"`
	USD          float64 `json:"usd"`
}

// Latencies are the latency histograms: chat-completion hits and misses end to end, and the
// upstream calls' duration and time to first byte.
type Latencies struct {
	Hit      Histogram `json:"hit"`
	Miss     Histogram `json:"miss"`
	Upstream Histogram `json:"upstream"`
	TTFT     Histogram `json:"ttft"`
}

// Histogram is one latency histogram: its count, sum, estimated percentiles (seconds, as
// Prometheus's histogram_quantile estimates them: linear within a bucket; 0 when empty) and
// cumulative buckets. The +Inf bucket is left out: its count is Count.
type Histogram struct {
	Count   uint64   `json:"count"`
	Sum     float64  `json:"sum_seconds"`
	P50     float64  `json:"p50_seconds"`
	P90     float64  `json:"p90_seconds"`
	P99     float64  `json:"p99_seconds"`
	Buckets []Bucket `json:"buckets"`
}

// Bucket is a cumulative histogram bucket: Count observations were <= LE seconds.
type Bucket struct {
	LE    float64 `json:"le"`
	Count uint64  `json:"count"`
}

// CacheTotals is the exact cache's size against its budget.
type CacheTotals struct {
	Entries   float64 `json:"entries"`
	Bytes     float64 `json:"bytes"`
	MaxBytes  float64 `json:"max_bytes"`
	Evictions float64 `json:"evictions"`
}

// SemanticTotals is the semantic cache's size against its cap, and its counters.
type SemanticTotals struct {
	Entries    float64 `json:"entries"`
	MaxEntries float64 `json:"max_entries"`
	Lookups    float64 `json:"lookups"`
	Hits       float64 `json:"hits"`
	ShadowHits float64 `json:"shadow_hits"`
	Errors     float64 `json:"errors"`
}

// Snapshot gathers zest's own metrics (not the runtime's) and sums them up.
func (m *Metrics) Snapshot() (Snapshot, error) {
	fams, err := m.reg.zest.Gather()
	if err != nil {
		return Snapshot{}, fmt.Errorf("telemetry: gather: %w", err)
	}
	s := Snapshot{RateLimitRejections: map[string]float64{}}
	models := map[string]*ModelSaved{}
	model := func(name string) *ModelSaved {
		if models[name] == nil {
			models[name] = &ModelSaved{Model: name}
		}
		return models[name]
	}
	for _, f := range fams {
		for _, x := range f.GetMetric() {
			l := labels(x)
			v := x.GetCounter().GetValue() + x.GetGauge().GetValue()
			switch f.GetName() {
			case "zest_requests_total":
				s.addRequests(l, v)
			case "zest_upstream_requests_total":
				s.Upstream.Calls += v
				if l["class"] == "5xx" || l["class"] == "error" {
					s.Upstream.Errors += v
				}
			case "zest_tokens_saved_total":
				if l["kind"] == "input" {
					model(l["model"]).InputTokens += v
					s.Saved.InputTokens += v
				} else {
					model(l["model"]).OutputTokens += v
					s.Saved.OutputTokens += v
				}
			case "zest_cost_saved_usd_total":
				model(l["model"]).USD += v
				s.Saved.USD += v
			case "zest_ratelimit_rejections_total":
				s.RateLimitRejections[l["type"]] += v
			case "zest_request_duration_seconds":
				switch l["cache"] {
				case CacheHit:
					s.Latency.Hit = histogram(x.GetHistogram())
				case CacheMiss:
					s.Latency.Miss = histogram(x.GetHistogram())
				}
			case "zest_upstream_duration_seconds":
				s.Latency.Upstream = histogram(x.GetHistogram())
			case "zest_upstream_ttft_seconds":
				s.Latency.TTFT = histogram(x.GetHistogram())
			default:
				s.addScalar(f.GetName(), v)
			}
		}
	}
	o := s.Requests
	if hits := o.ExactHit + o.SemanticHit + o.Coalesced; hits+o.Miss > 0 {
		s.HitRate = hits / (hits + o.Miss)
	}
	if s.Upstream.Calls > 0 {
		s.Upstream.ErrorRate = s.Upstream.Errors / s.Upstream.Calls
	}
	s.Saved.ByModel = make([]ModelSaved, 0, len(models))
	for _, ms := range models {
		s.Saved.ByModel = append(s.Saved.ByModel, *ms)
	}
	slices.SortFunc(s.Saved.ByModel, func(a, b ModelSaved) int {
		switch {
		case a.USD != b.USD:
			return cmpDesc(a.USD, b.USD)
		case a.InputTokens+a.OutputTokens != b.InputTokens+b.OutputTokens:
			return cmpDesc(a.InputTokens+a.OutputTokens, b.InputTokens+b.OutputTokens)
		}
		return cmpAsc(a.Model, b.Model)
	})
	return s, nil
}

func cmpDesc(a, b float64) int {
	if a > b {
		return -1
	}
	return 1
}

func cmpAsc(a, b string) int {
	if a < b {
		return -1
	}
	if a > b {
		return 1
	}
	return 0
}

// addRequests files one zest_requests_total series under its outcome.
func (s *Snapshot) addRequests(l map[string]string, v float64) {
	if l["path"] != "/v1/chat/completions" {
		if strings.HasPrefix(l["path"], "/v1/") {
			s.PassThrough += v
		}
		return
	}
	status, err := strconv.Atoi(l["status"])
	o := &s.Requests
	switch {
	case status == 429:
		o.RateLimited += v
	case err != nil || status == 0 || status >= 400:
		o.Error += v
	case l["cache"] == CacheHit && l["layer"] == LayerExact:
		o.ExactHit += v
	case l["cache"] == CacheHit && l["layer"] == LayerSemantic:
		o.SemanticHit += v
	case l["cache"] == CacheHit:
		o.Coalesced += v
	case l["cache"] == CacheMiss:
		o.Miss += v
	default:
		o.Bypass += v
	}
}

// addScalar files an unlabelled counter or gauge.
func (s *Snapshot) addScalar(name string, v float64) {
	switch name {
	case "zest_cache_entries":
		s.Cache.Entries = v
	case "zest_cache_bytes":
		s.Cache.Bytes = v
	case "zest_cache_max_bytes":
		s.Cache.MaxBytes = v
	case "zest_cache_evictions_total":
		s.Cache.Evictions = v
	case "zest_semantic_entries":
		s.Semantic.Entries = v
	case "zest_semantic_max_entries":
		s.Semantic.MaxEntries = v
	case "zest_semantic_lookups_total":
		s.Semantic.Lookups = v
	case "zest_semantic_hits_total":
		s.Semantic.Hits = v
	case "zest_semantic_shadow_hits_total":
		s.Semantic.ShadowHits = v
	case "zest_semantic_errors_total":
		s.Semantic.Errors = v
	}
}

func labels(m *dto.Metric) map[string]string {
	l := make(map[string]string, len(m.GetLabel()))
	for _, p := range m.GetLabel() {
		l[p.GetName()] = p.GetValue()
	}
	return l
}

// histogram converts a gathered histogram, with its percentiles.
func histogram(h *dto.Histogram) Histogram {
	out := Histogram{Count: h.GetSampleCount(), Sum: h.GetSampleSum()}
	for _, b := range h.GetBucket() {
		if math.IsInf(b.GetUpperBound(), 1) {
			continue
		}
		out.Buckets = append(out.Buckets, Bucket{LE: b.GetUpperBound(), Count: b.GetCumulativeCount()})
	}
	out.P50 = Quantile(0.5, out.Buckets, out.Count)
	out.P90 = Quantile(0.9, out.Buckets, out.Count)
	out.P99 = Quantile(0.99, out.Buckets, out.Count)
	return out
}

// Quantile estimates the q-quantile (0 < q < 1) of count observations in cumulative buckets
// (without +Inf) the way Prometheus's histogram_quantile does: it finds the bucket holding the
// rank q*count and interpolates linearly inside it, from 0 for the first bucket; a rank in
// the +Inf bucket gives the highest finite bound. It returns 0 when count is 0. The dashboard
// page computes its windowed percentiles with the same rule.
func Quantile(q float64, buckets []Bucket, count uint64) float64 {
	if count == 0 || len(buckets) == 0 {
		return 0
	}
	rank := q * float64(count)
	lo, prev := 0.0, uint64(0)
	for _, b := range buckets {
		if float64(b.Count) >= rank {
			if b.Count == prev {
				return b.LE
			}
			return lo + (b.LE-lo)*(rank-float64(prev))/float64(b.Count-prev)
		}
		lo, prev = b.LE, b.Count
	}
	return buckets[len(buckets)-1].LE
}
