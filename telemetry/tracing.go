package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// TracingOptions configures SetupTracing.
type TracingOptions struct {
	// Getenv looks up environment variables; the caller passes os.Getenv.
	// Nil means every variable is unset (tracing off).
	Getenv func(string) string
	// ServiceName is service.name unless OTEL_SERVICE_NAME or a service.name
	// in OTEL_RESOURCE_ATTRIBUTES overrides it. Default "zest".
	ServiceName string
	// ServiceVersion is service.version when set (OTEL_RESOURCE_ATTRIBUTES
	// may override it).
	ServiceVersion string
	// Logger receives one line saying whether tracing is on and where spans
	// go, and warnings about ignored settings. Nil discards. Header values
	// are never logged.
	Logger *slog.Logger
}

// SetupTracing builds a TracerProvider from the standard OTEL_* variables
// read through opts.Getenv.
//
// Tracing is off (a no-op provider whose spans do not record, cost ~0)
// unless OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is
// set or OTEL_TRACES_EXPORTER lists otlp. OTEL_TRACES_EXPORTER=none and
// OTEL_SDK_DISABLED=true force it off; other exporter names are ignored with
// a warning. When on, spans are batched to an OTLP exporter:
//   - OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL: http/protobuf (default) or grpc.
//   - OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as is; the generic
//     OTEL_EXPORTER_OTLP_ENDPOINT gets /v1/traces appended for HTTP. Default
//     http://localhost:4318 (HTTP) or http://localhost:4317 (gRPC). An
//     https URL means TLS; for gRPC a bare host:port is accepted, plaintext
//     only with OTEL_EXPORTER_OTLP_[TRACES_]INSECURE=true.
//   - OTEL_EXPORTER_OTLP_[TRACES_]HEADERS, _TIMEOUT (ms, default 10000) and
//     _COMPRESSION (gzip|none) are honoured; the traces-specific one wins.
//   - OTEL_TRACES_SAMPLER (+ _ARG): always_on, always_off, traceidratio,
//     parentbased_always_on (default), parentbased_always_off,
//     parentbased_traceidratio.
//   - OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES set the resource.
//
// The OTel SDK and exporters also read some OTEL_* variables from the real
// process environment themselves (OTEL_BSP_* batching, OTEL_SPAN_*_LIMIT,
// OTEL_EXPORTER_OTLP_*CERTIFICATE / CLIENT_KEY); every setting listed above
// is passed explicitly and wins over their own reading.
//
// The returned propagator is W3C TraceContext + Baggage (OTEL_PROPAGATORS may
// narrow it to tracecontext, baggage or none). It works when tracing is off
// too, so a client's traceparent still reaches the upstream. shutdown flushes
// pending spans; call it once, with a deadline, when the server stops. On
// error the provider is a no-op one, so a caller may choose to carry on.
// SetupTracing installs no globals.
func SetupTracing(ctx context.Context, opts TracingOptions) (trace.TracerProvider, propagation.TextMapPropagator, func(context.Context) error, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	prop := propagatorFromEnv(getenv, log)
	off := noop.NewTracerProvider()
	noShutdown := func(context.Context) error { return nil }

	cfg, err := exporterConfigFromEnv(getenv, log)
	if err != nil {
		return off, prop, noShutdown, err
	}
	if !cfg.enabled {
		log.Debug("tracing off")
		return off, prop, noShutdown, nil
	}
	exp, err := cfg.newExporter(ctx)
	if err != nil {
		return off, prop, noShutdown, fmt.Errorf("telemetry: otlp exporter: %w", err)
	}
	res, err := resourceFromEnv(ctx, getenv, opts, log)
	if err != nil {
		_ = exp.Shutdown(ctx)
		return off, prop, noShutdown, fmt.Errorf("telemetry: resource: %w", err)
	}
	sampler := samplerFromEnv(getenv, log)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithSampler(sampler),
		sdktrace.WithResource(res),
	)
	log.Info("tracing on", "exporter", "otlp", "protocol", cfg.protocol,
		"endpoint", redactURL(cfg.endpoint), "sampler", sampler.Description())
	return tp, prop, tp.Shutdown, nil
}

// resourceFromEnv builds the resource: telemetry.sdk.*, then
// OTEL_RESOURCE_ATTRIBUTES over the code's service name and version, then
// OTEL_SERVICE_NAME over all.
func resourceFromEnv(ctx context.Context, getenv func(string) string, opts TracingOptions, log *slog.Logger) (*resource.Resource, error) {
	name := opts.ServiceName
	if name == "" {
		name = "zest"
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", name)}
	if opts.ServiceVersion != "" {
		attrs = append(attrs, attribute.String("service.version", opts.ServiceVersion))
	}
	kv, bad := parseKeyValues(getenv("OTEL_RESOURCE_ATTRIBUTES"))
	if bad > 0 {
		log.Warn("OTEL_RESOURCE_ATTRIBUTES: ignored malformed entries", "count", bad)
	}
	for _, p := range kv {
		attrs = append(attrs, attribute.String(p[0], p[1]))
	}
	if s := strings.TrimSpace(getenv("OTEL_SERVICE_NAME")); s != "" {
		attrs = append(attrs, attribute.String("service.name", s))
	}
	// resource.WithAttributes keeps the last value of a repeated key.
	return resource.New(ctx, resource.WithTelemetrySDK(), resource.WithAttributes(attrs...))
}

// propagatorFromEnv returns TraceContext+Baggage, or what OTEL_PROPAGATORS
// lists among tracecontext, baggage and none.
func propagatorFromEnv(getenv func(string) string, log *slog.Logger) propagation.TextMapPropagator {
	v := strings.TrimSpace(getenv("OTEL_PROPAGATORS"))
	if v == "" {
		return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	}
	var ps []propagation.TextMapPropagator
	for _, name := range strings.Split(v, ",") {
		switch name = strings.ToLower(strings.TrimSpace(name)); name {
		case "tracecontext":
			ps = append(ps, propagation.TraceContext{})
		case "baggage":
			ps = append(ps, propagation.Baggage{})
		case "none", "":
		default:
			log.Warn("OTEL_PROPAGATORS: unsupported propagator ignored", "propagator", name)
		}
	}
	return propagation.NewCompositeTextMapPropagator(ps...)
}

// exporterConfig is the OTLP exporter setup read from the environment.
type exporterConfig struct {
	enabled     bool
	protocol    string // "http/protobuf" | "grpc"
	endpoint    string // full URL, or host:port for a scheme-less gRPC endpoint
	insecure    bool   // scheme-less gRPC endpoint only
	headers     map[string]string
	timeout     time.Duration // 0 = exporter default
	compression bool
}

func (c exporterConfig) newExporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	if c.protocol == "grpc" {
		o := []otlptracegrpc.Option{otlptracegrpc.WithHeaders(c.headers)}
		if strings.Contains(c.endpoint, "://") {
			o = append(o, otlptracegrpc.WithEndpointURL(c.endpoint))
		} else {
			o = append(o, otlptracegrpc.WithEndpoint(c.endpoint))
			if c.insecure {
				o = append(o, otlptracegrpc.WithInsecure())
			}
		}
		if c.timeout > 0 {
			o = append(o, otlptracegrpc.WithTimeout(c.timeout))
		}
		if c.compression {
			o = append(o, otlptracegrpc.WithCompressor("gzip"))
		}
		return otlptracegrpc.New(ctx, o...)
	}
	o := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(c.endpoint), otlptracehttp.WithHeaders(c.headers)}
	if c.timeout > 0 {
		o = append(o, otlptracehttp.WithTimeout(c.timeout))
	}
	if c.compression {
		o = append(o, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	} else {
		o = append(o, otlptracehttp.WithCompression(otlptracehttp.NoCompression))
	}
	return otlptracehttp.New(ctx, o...)
}

// redactURL hides a password in ep for logging.
func redactURL(ep string) string {
	if u, err := url.Parse(ep); err == nil && u.User != nil {
		return u.Redacted()
	}
	return ep
}
