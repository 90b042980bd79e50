package proxy

import (
	"context"
	"net/http"
	"testing"

	"github.com/zest-proxy/zest/telemetry"
)

// benchHitMetrics is benchHit with zest's Prometheus metrics recorded, as cmd/zest wires them:
// the hit path's counter, tokens saved and the request's outcome.
func benchHitMetrics(b *testing.B, body string) {
	srv := benchUpstream(b, jsonAnswer(200, completionJSON))
	h := benchHandler(b, srv.URL)
	h.opts.Metrics = telemetry.NewMetrics(telemetry.NewRegistry(nil), map[string]telemetry.Price{"gpt-4o-mini": {InputPerMTok: 0.15, OutputPerMTok: 0.6}})
	rr := newReusableRequest(body)
	w := &benchWriter{h: http.Header{}}
	h.ServeHTTP(w, rr.rewind()) // prime, and wait until the answer is stored
	if err := h.Wait(context.Background()); err != nil {
		b.Fatal(err)
	}
	h.opts.Cache.Wait()
	w.reset()
	h.ServeHTTP(w, rr.rewind())
	if w.code != 200 || w.h.Get("X-Cache-Status") != "HIT" {
		b.Fatalf("priming failed: %d %q", w.code, w.h.Get("X-Cache-Status"))
	}
	b.ReportAllocs()
	b.SetBytes(int64(w.n))
	for b.Loop() {
		w.reset()
		h.ServeHTTP(w, rr.rewind())
	}
	b.StopTimer()
	if w.code != 200 || w.h.Get("X-Cache-Status") != "HIT" {
		b.Fatalf("last answer: %d %q", w.code, w.h.Get("X-Cache-Status"))
	}
}

// BenchmarkExactHitMetrics is BenchmarkExactHit with metrics on.
func BenchmarkExactHitMetrics(b *testing.B) { benchHitMetrics(b, chatBody("")) }

// BenchmarkStreamHitMetrics is BenchmarkStreamHit with metrics on.
func BenchmarkStreamHitMetrics(b *testing.B) { benchHitMetrics(b, streamBody("", "")) }
