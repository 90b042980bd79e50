package telemetry

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Registry is what zest serves at GET /metrics: zest's own metrics (registered by NewMetrics)
// in one client_golang registry, and the Go runtime (go_goroutines, go_memstats_*, go_gc_*)
// and process (process_resident_memory_bytes, process_cpu_seconds_total...) collectors in
// another, so that Metrics.Snapshot gathers only zest's series. The zero value is not usable;
// call NewRegistry.
type Registry struct {
	zest    *prometheus.Registry
	runtime *prometheus.Registry
	logger  *slog.Logger
}

// NewRegistry returns a registry holding the Go runtime and process collectors and no zest
// metric yet. logger receives scrape errors; nil discards them.
func NewRegistry(logger *slog.Logger) *Registry {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Registry{zest: prometheus.NewRegistry(), runtime: prometheus.NewRegistry(), logger: logger}
	r.runtime.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// MustRegister adds collectors to zest's own registry; it panics on an invalid or duplicate
// definition (a programming error caught at start-up).
func (r *Registry) MustRegister(cs ...prometheus.Collector) { r.zest.MustRegister(cs...) }

// Gatherer returns every series the registry serves, zest's and the runtime's.
func (r *Registry) Gatherer() prometheus.Gatherer {
	return prometheus.Gatherers{r.zest, r.runtime}
}

// Handler serves the registry for GET and HEAD (other methods get 405) with promhttp:
// the Prometheus text format 0.0.4 by default, OpenMetrics 1.0 (which carries the exemplars)
// when the scraper asks for application/openmetrics-text, gzip when accepted. A collector
// that fails is logged and left out; the rest is still served.
func (r *Registry) Handler() http.Handler {
	h := promhttp.HandlerFor(r.Gatherer(), promhttp.HandlerOpts{
		ErrorLog:          promLogger{r.logger},
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	})
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		if req.Method == http.MethodHead {
			w = headWriter{w}
		}
		h.ServeHTTP(w, req)
	})
}

// headWriter answers HEAD: headers as for GET, body dropped.
type headWriter struct{ http.ResponseWriter }

func (w headWriter) Write(p []byte) (int, error) { return len(p), nil }

// promLogger adapts slog to promhttp's Logger.
type promLogger struct{ l *slog.Logger }

func (p promLogger) Println(v ...any) {
	p.l.Warn("metrics scrape error", "error", fmt.Sprint(v...))
}
