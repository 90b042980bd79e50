// Package telemetry is zest's observability plumbing: a small Prometheus
// metrics registry with a text-format (0.0.4) exposition writer, zest's named
// metrics (Metrics), and OpenTelemetry tracing set up from the standard
// OTEL_* environment variables (SetupTracing) plus the attribute keys the
// proxy puts on its spans.
//
// The package reads no environment and no files: the caller passes a Getenv
// function. It does not import other zest packages and installs no globals
// (it never calls otel.SetTracerProvider; the caller decides).
//
// Hot paths: keep the *Counter, *Gauge or *Histogram returned by With and
// call Inc, Add or Observe on it; those are lock-free and allocation-free.
package telemetry
