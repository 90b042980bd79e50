package telemetry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// TestHandlerMethods: GET and HEAD are served, anything else is a 405.
func TestHandlerMethods(t *testing.T) {
	r := NewRegistry(nil)
	NewMetrics(r, nil)
	tests := []struct {
		method     string
		wantStatus int
		wantBody   bool
	}{
		{http.MethodGet, 200, true},
		{http.MethodHead, 200, false},
		{http.MethodPost, 405, false},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			w := httptest.NewRecorder()
			r.Handler().ServeHTTP(w, httptest.NewRequest(tt.method, "/metrics", nil))
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d", w.Code, tt.wantStatus)
			}
			if got := strings.Contains(w.Body.String(), "zest_semantic_hits_total"); got != tt.wantBody {
				t.Errorf("body has metrics = %v, want %v", got, tt.wantBody)
			}
		})
	}
}

// TestNegotiation: the text format by default, OpenMetrics when asked for; both carry zest's
// metrics and the runtime and process collectors.
func TestNegotiation(t *testing.T) {
	r := NewRegistry(nil)
	m := NewMetrics(r, nil)
	m.Request("/v1/chat/completions", 200, CacheHit, LayerExact)
	tests := []struct {
		accept, wantType, wantEnd string
	}{
		{"", "text/plain; version=0.0.4", ""},
		{"text/plain", "text/plain; version=0.0.4", ""},
		{"application/openmetrics-text; version=1.0.0", "application/openmetrics-text; version=1.0.0", "# EOF\n"},
	}
	for _, tt := range tests {
		t.Run(tt.accept, func(t *testing.T) {
			body, h := scrapeResp(t, r, tt.accept)
			if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, tt.wantType) {
				t.Errorf("Content-Type %q, want %q", ct, tt.wantType)
			}
			if !strings.HasSuffix(body, tt.wantEnd) {
				t.Errorf("body does not end in %q", tt.wantEnd)
			}
			for _, want := range []string{
				`zest_requests_total{cache="hit",layer="exact",path="/v1/chat/completions",status="200"} 1`,
				"go_goroutines ", "go_memstats_heap_alloc_bytes ", "go_gc_duration_seconds",
				"process_resident_memory_bytes ", "process_cpu_seconds_total",
			} {
				if !strings.Contains(body, want) {
					t.Errorf("scrape lacks %q", want)
				}
			}
		})
	}
}

// TestExemplars: with a sampled span in the context, the latency histograms keep its trace
// id as an exemplar, which OpenMetrics shows; without one there is none.
func TestExemplars(t *testing.T) {
	r := NewRegistry(nil)
	m := NewMetrics(r, nil)
	tid := trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	m.ObserveRequest(ctx, CacheHit, 300*time.Microsecond)
	m.ObserveUpstream(ctx, 200, 1500*time.Millisecond)
	m.ObserveTTFT(ctx, 300*time.Millisecond)
	m.ObserveRequest(context.Background(), CacheMiss, 2*time.Second) // no span: no exemplar

	body := scrape(t, r, "application/openmetrics-text; version=1.0.0")
	for _, want := range []string{
		`zest_request_duration_seconds_bucket{cache="hit",le="0.0005"} 1 # {trace_id="` + tid.String() + `"} 0.0003`,
		`zest_upstream_duration_seconds_bucket{le="2.0"} 1 # {trace_id="` + tid.String() + `"} 1.5`,
		`zest_upstream_ttft_seconds_bucket{le="0.4"} 1 # {trace_id="` + tid.String() + `"} 0.3`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("OpenMetrics scrape lacks %q", want)
		}
	}
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, `zest_request_duration_seconds_bucket{cache="miss"`) && strings.Contains(line, "#") {
			t.Errorf("exemplar without a span: %s", line)
		}
	}
	if strings.Contains(scrape(t, r, ""), "trace_id") {
		t.Error("the 0.0.4 text format carries exemplars")
	}
}
