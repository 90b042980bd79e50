// Package telemetry is zest's observability plumbing: zest's named Prometheus
// metrics (Metrics) on github.com/prometheus/client_golang, served with the Go
// runtime and process collectors and OpenMetrics negotiation (Registry), a
// Snapshot of them for the admin API and dashboard, and OpenTelemetry tracing
// set up from the standard OTEL_* environment variables (SetupTracing) plus
// the attribute keys the proxy puts on its spans.
//
// The package reads no environment and no files: the caller passes a Getenv
// function. It does not import other zest packages and installs no globals
// (it never calls otel.SetTracerProvider; the caller decides).
//
// Hot paths: the Metrics methods (Request, Saved, ObserveRequest...) find
// their series without locks or allocations once it exists; every label
// value comes from a bounded set (MaxModels caps the client-named model).
package telemetry
