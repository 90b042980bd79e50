package proxy

import (
	"testing"

	"github.com/zest-proxy/zest/telemetry"
)

// withMetrics records zest's Prometheus metrics as cmd/zest wires them: the hit path's
// counter, tokens saved and the request's outcome.
func withMetrics(h *Handler) {
	h.opts.Metrics = telemetry.NewMetrics(telemetry.NewRegistry(nil), map[string]telemetry.Price{"gpt-4o-mini": {InputPerMTok: 0.15, OutputPerMTok: 0.6}})
}

// BenchmarkExactHitMetrics is BenchmarkExactHit with metrics on.
func BenchmarkExactHitMetrics(b *testing.B) {
	benchHit(b, chatBody(""), jsonAnswer(200, completionJSON), withMetrics)
}

// BenchmarkStreamHitMetrics is BenchmarkStreamHit with metrics on.
func BenchmarkStreamHitMetrics(b *testing.B) {
	benchHit(b, streamBody("", ""), jsonAnswer(200, completionJSON), withMetrics)
}
