package telemetry

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkRequestExisting is Metrics.Request on a series that exists (once per request).
func BenchmarkRequestExisting(b *testing.B) {
	m := NewMetrics(NewRegistry(nil), nil)
	m.Request("/v1/chat/completions", 200, CacheHit, LayerExact)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Request("/v1/chat/completions", 200, CacheHit, LayerExact)
		}
	})
}

// BenchmarkSaved is Metrics.Saved on a priced model seen before (once per hit).
func BenchmarkSaved(b *testing.B) {
	m := NewMetrics(NewRegistry(nil), map[string]Price{"gpt-4o": {InputPerMTok: 2.5, OutputPerMTok: 10}})
	m.Saved("gpt-4o-mini", 10, 10)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Saved("gpt-4o-mini", 14, 7)
		}
	})
}

// BenchmarkObserveRequest is the request-duration histogram without tracing.
func BenchmarkObserveRequest(b *testing.B) {
	m := NewMetrics(NewRegistry(nil), nil)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveRequest(ctx, CacheHit, 300*time.Microsecond)
		}
	})
}

// BenchmarkScrape is one text-format scrape of zest's metrics and the runtime's.
func BenchmarkScrape(b *testing.B) {
	r := NewRegistry(nil)
	m := NewMetrics(r, nil)
	m.Request("/v1/chat/completions", 200, CacheHit, LayerExact)
	h := r.Handler()
	req := httptest.NewRequest("GET", "/metrics", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		w.Body = nil
		h.ServeHTTP(w, req)
	}
}
