package telemetry

import (
	"fmt"
	"io"
	"testing"
)

func BenchmarkCounterIncParallel(b *testing.B) {
	c := NewRegistry().Counter("c_total", "", "a").With("x")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Inc()
		}
	})
}

func BenchmarkCounterAddFloatParallel(b *testing.B) {
	c := NewRegistry().Counter("c_total", "").With()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Add(0.25)
		}
	})
}

func BenchmarkHistogramObserveParallel(b *testing.B) {
	h := NewRegistry().Histogram("h_seconds", "", []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300}).With()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		v := 0.0
		for pb.Next() {
			h.Observe(v)
			v += 0.37
			if v > 400 {
				v = 0
			}
		}
	})
}

// BenchmarkWithExisting is the cost of finding an existing series by label
// values (Metrics.Request does this per request).
func BenchmarkWithExisting(b *testing.B) {
	r := NewRegistry()
	m := NewMetrics(r, nil)
	m.Request("/v1/chat/completions", 200, CacheHit, LayerExact)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Request("/v1/chat/completions", 200, CacheHit, LayerExact)
		}
	})
}

// BenchmarkWriteTo50Series scrapes zest's metrics with about 50 series
// (counters, two histograms, funcs).
func BenchmarkWriteTo50Series(b *testing.B) {
	r := NewRegistry()
	m := NewMetrics(r, map[string]Price{"gpt-4o": {2.5, 10}})
	for i, p := range []string{"/v1/chat/completions", "/v1/models", "/v1/embeddings", "/v1/files", "/v1/responses"} {
		for _, st := range []int{200, 429, 502} {
			m.Request(p, st, CacheMiss, LayerNone)
			m.Request(p, st, CacheHit, LayerExact)
		}
		m.Saved(fmt.Sprint("gpt-4o-", i), 100, 200)
	}
	m.RateLimited(RateLimitRequests)
	m.RateLimited(RateLimitTokens)
	for i := range 100 {
		m.UpstreamDuration.Observe(float64(i) / 10)
		m.UpstreamTTFT.Observe(float64(i) / 100)
	}
	var cw countWriter
	r.WriteTo(&cw)
	b.Logf("%d bytes, %d lines per scrape", cw.n, cw.lines)
	b.ReportAllocs()
	for b.Loop() {
		r.WriteTo(io.Discard)
	}
}

type countWriter struct{ n, lines int }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += len(p)
	for _, x := range p {
		if x == '\n' {
			c.lines++
		}
	}
	return len(p), nil
}
