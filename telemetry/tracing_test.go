package telemetry

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestSetupTracingOff(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
	}{
		{"empty env", nil},
		{"exporter none beats endpoint", map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_TRACES_EXPORTER": "none"}},
		{"sdk disabled", map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_SDK_DISABLED": "true"}},
		{"unsupported exporter only", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}},
		{"only unrelated vars", map[string]string{"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp, prop, shutdown, err := SetupTracing(t.Context(), TracingOptions{Getenv: envMap(tt.env)})
			if err != nil {
				t.Fatal(err)
			}
			_, span := tp.Tracer(TracerName).Start(t.Context(), "x")
			if span.IsRecording() {
				t.Error("span records with tracing off")
			}
			span.End()
			if prop == nil {
				t.Error("nil propagator")
			}
			if err := shutdown(t.Context()); err != nil {
				t.Error(err)
			}
		})
	}
	// A nil Getenv is the same as an empty environment.
	tp, _, _, err := SetupTracing(t.Context(), TracingOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, span := tp.Tracer("x").Start(t.Context(), "x"); span.IsRecording() {
		t.Error("span records with nil Getenv")
	}
}

// TestTraceContextPassesThroughWhenOff: with tracing off, a client's
// traceparent still reaches the upstream (same trace id), with baggage.
func TestTraceContextPassesThroughWhenOff(t *testing.T) {
	tp, prop, _, err := SetupTracing(t.Context(), TracingOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	in := http.Header{"Traceparent": {parent}, "Baggage": {"tenant=abc"}}
	ctx := prop.Extract(t.Context(), propagation.HeaderCarrier(in))
	ctx, span := tp.Tracer(TracerName).Start(ctx, "server", trace.WithSpanKind(trace.SpanKindServer))
	defer span.End()
	out := http.Header{}
	prop.Inject(ctx, propagation.HeaderCarrier(out))
	if got := out.Get("Traceparent"); !strings.HasPrefix(got, "00-4bf92f3577b34da6a3ce929d0e0e4736-") {
		t.Errorf("outgoing traceparent %q does not continue the client's trace", got)
	}
	if got := out.Get("Baggage"); got != "tenant=abc" {
		t.Errorf("outgoing baggage %q", got)
	}
}

// collector is an httptest OTLP/HTTP receiver.
type collector struct {
	mu   sync.Mutex
	reqs []*http.Request
	body [][]byte
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	c.reqs = append(c.reqs, r)
	c.body = append(c.body, b)
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

func TestSetupTracingExportsOverHTTP(t *testing.T) {
	tests := []struct {
		name     string
		env      func(url string) map[string]string
		wantPath string
	}{
		{"generic endpoint gets /v1/traces", func(u string) map[string]string {
			return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": u + "/", "OTEL_SERVICE_NAME": "zest-test",
				"OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20s3cret,x-bad"}
		}, "/v1/traces"},
		{"traces endpoint used as is", func(u string) map[string]string {
			return map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": u + "/custom/traces", "OTEL_SERVICE_NAME": "zest-test",
				"OTEL_EXPORTER_OTLP_TRACES_HEADERS": "authorization=Bearer s3cret"}
		}, "/custom/traces"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			col := &collector{}
			srv := httptest.NewServer(col)
			defer srv.Close()
			var logs bytes.Buffer
			tp, _, shutdown, err := SetupTracing(t.Context(), TracingOptions{
				Getenv:         envMap(tt.env(srv.URL)),
				ServiceName:    "ignored-env-wins",
				ServiceVersion: "1.2.3",
				Logger:         slog.New(slog.NewTextHandler(&logs, nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			_, span := tp.Tracer(TracerName).Start(t.Context(), GenAISpanName(OperationChat, "gpt-4o"))
			if !span.IsRecording() {
				t.Fatal("span not recording with an endpoint set")
			}
			span.SetAttributes(GenAIRequestModel.String("gpt-4o"), ZestCacheStatus.String(CacheMiss))
			span.End()

			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if err := shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			col.mu.Lock()
			defer col.mu.Unlock()
			if len(col.reqs) == 0 {
				t.Fatal("collector received nothing")
			}
			r := col.reqs[0]
			if r.Method != http.MethodPost || r.URL.Path != tt.wantPath {
				t.Errorf("got %s %s, want POST %s", r.Method, r.URL.Path, tt.wantPath)
			}
			if got := r.Header.Get("Authorization"); got != "Bearer s3cret" {
				t.Errorf("Authorization header %q", got)
			}
			var req coltrace.ExportTraceServiceRequest
			if err := proto.Unmarshal(col.body[0], &req); err != nil {
				t.Fatalf("decode export: %v", err)
			}
			rs := req.GetResourceSpans()
			if len(rs) != 1 {
				t.Fatalf("%d resource spans", len(rs))
			}
			res := map[string]string{}
			for _, kv := range rs[0].GetResource().GetAttributes() {
				res[kv.GetKey()] = kv.GetValue().GetStringValue()
			}
			if res["service.name"] != "zest-test" || res["service.version"] != "1.2.3" {
				t.Errorf("resource %v", res)
			}
			spans := rs[0].GetScopeSpans()[0].GetSpans()
			if len(spans) != 1 || spans[0].GetName() != "chat gpt-4o" {
				t.Fatalf("spans %v", spans)
			}
			attrs := map[string]string{}
			for _, kv := range spans[0].GetAttributes() {
				attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
			}
			if attrs["gen_ai.request.model"] != "gpt-4o" || attrs["zest.cache.status"] != "miss" {
				t.Errorf("span attributes %v", attrs)
			}
			if strings.Contains(logs.String(), "s3cret") {
				t.Errorf("log leaks a header value: %s", logs.String())
			}
		})
	}
}

func TestSetupTracingGRPC(t *testing.T) {
	for _, ep := range []string{"http://127.0.0.1:1", "127.0.0.1:1"} {
		t.Run(ep, func(t *testing.T) {
			tp, _, shutdown, err := SetupTracing(t.Context(), TracingOptions{Getenv: envMap(map[string]string{
				"OTEL_EXPORTER_OTLP_ENDPOINT": ep, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
				"OTEL_EXPORTER_OTLP_INSECURE": "true",
			})})
			if err != nil {
				t.Fatal(err)
			}
			if _, span := tp.Tracer("x").Start(t.Context(), "x"); !span.IsRecording() {
				t.Error("span not recording with grpc exporter")
			}
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			if err := shutdown(ctx); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestSetupTracingErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"http/json", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "http/json"},
		{"no scheme over http", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{"ftp scheme", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "ftp://x/v1/traces"}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
		{"no host", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://"}, "host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp, prop, shutdown, err := SetupTracing(t.Context(), TracingOptions{Getenv: envMap(tt.env)})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
			}
			if tp == nil || prop == nil || shutdown == nil {
				t.Fatal("nil results on error")
			}
		})
	}
}

func TestExporterConfigFromEnv(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		name string
		env  map[string]string
		want exporterConfig
	}{
		{"exporter otlp without endpoint uses the default", map[string]string{"OTEL_TRACES_EXPORTER": "otlp"},
			exporterConfig{enabled: true, protocol: "http/protobuf", endpoint: "http://localhost:4318/v1/traces"}},
		{"grpc default", map[string]string{"OTEL_TRACES_EXPORTER": "console, otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"},
			exporterConfig{enabled: true, protocol: "grpc", endpoint: "http://localhost:4317"}},
		{"traces settings win", map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT": "https://a:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://b:4318/t",
			"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
			"OTEL_EXPORTER_OTLP_HEADERS": "a=1,b=2", "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "b=3",
			"OTEL_EXPORTER_OTLP_TIMEOUT": "500", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "2500",
			"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
		}, exporterConfig{enabled: true, protocol: "http/protobuf", endpoint: "https://b:4318/t",
			headers: map[string]string{"a": "1", "b": "3"}, timeout: 2500 * time.Millisecond, compression: true}},
		{"bad timeout ignored", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:1", "OTEL_EXPORTER_OTLP_TIMEOUT": "soon"},
			exporterConfig{enabled: true, protocol: "http/protobuf", endpoint: "http://a:1/v1/traces"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := exporterConfigFromEnv(envMap(tt.env), log)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.headers) == 0 {
				got.headers = nil
			}
			if got.enabled != tt.want.enabled || got.protocol != tt.want.protocol || got.endpoint != tt.want.endpoint ||
				got.timeout != tt.want.timeout || got.compression != tt.want.compression ||
				len(got.headers) != len(tt.want.headers) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
			for k, v := range tt.want.headers {
				if got.headers[k] != v {
					t.Errorf("header %s = %q, want %q", k, got.headers[k], v)
				}
			}
		})
	}
}

func TestSamplerFromEnv(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		sampler, arg, want string
	}{
		{"", "", "ParentBased{root:AlwaysOnSampler"},
		{"always_on", "", "AlwaysOnSampler"},
		{"always_off", "", "AlwaysOffSampler"},
		{"traceidratio", "0.25", "TraceIDRatioBased{0.25}"},
		{"traceidratio", "", "TraceIDRatioBased{1}"},  // default ratio 1
		{"traceidratio", "2", "TraceIDRatioBased{1}"}, // bad ratio falls back to 1
		{"parentbased_traceidratio", "0.1", "ParentBased{root:TraceIDRatioBased{0.1}"},
		{"parentbased_always_off", "", "ParentBased{root:AlwaysOffSampler"},
		{"jaeger_remote", "", "ParentBased{root:AlwaysOnSampler"},
	}
	for _, tt := range tests {
		t.Run(tt.sampler+"/"+tt.arg, func(t *testing.T) {
			s := samplerFromEnv(envMap(map[string]string{"OTEL_TRACES_SAMPLER": tt.sampler, "OTEL_TRACES_SAMPLER_ARG": tt.arg}), log)
			if got := s.Description(); !strings.HasPrefix(got, tt.want) {
				t.Errorf("sampler %q, want prefix %q", got, tt.want)
			}
		})
	}
}

func TestSamplerAlwaysOffDoesNotRecord(t *testing.T) {
	tp, _, shutdown, err := SetupTracing(t.Context(), TracingOptions{Getenv: envMap(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_TRACES_SAMPLER": "always_off"})})
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(t.Context())
	if _, span := tp.Tracer("x").Start(t.Context(), "x"); span.IsRecording() {
		t.Error("always_off sampler recorded a span")
	}
}

func TestParseKeyValues(t *testing.T) {
	tests := []struct {
		in   string
		want string
		bad  int
	}{
		{"", "[]", 0},
		{"a=1", "[[a 1]]", 0},
		{" a = 1 , b=x%20y ,", "[[a 1] [b x y]]", 0},
		{"k=a+b=c", "[[k a+b=c]]", 0},
		{"novalue,=v,k=%zz,ok=1", "[[ok 1]]", 3},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, bad := parseKeyValues(tt.in)
			if s := fmt.Sprint(got); s != tt.want || bad != tt.bad {
				t.Errorf("parseKeyValues(%q) = %s, %d bad; want %s, %d", tt.in, s, bad, tt.want, tt.bad)
			}
		})
	}
}

func FuzzParseKeyValues(f *testing.F) {
	for _, s := range []string{"a=1", "a=1,b=%20", "=,=", "%", "k=v=w,,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pairs, bad := parseKeyValues(s)
		if bad < 0 || len(pairs)+bad > strings.Count(s, ",")+1 {
			t.Fatalf("%d pairs + %d bad from %d items", len(pairs), bad, strings.Count(s, ",")+1)
		}
		for _, p := range pairs {
			if p[0] == "" {
				t.Fatalf("empty key from %q", s)
			}
		}
	})
}

func TestCaptureContent(t *testing.T) {
	tests := map[string]bool{"": false, "false": false, "TRUE": true, " true ": true, "1": false}
	for v, want := range tests {
		if got := CaptureContent(envMap(map[string]string{CaptureContentEnv: v})); got != want {
			t.Errorf("CaptureContent(%q) = %v, want %v", v, got, want)
		}
	}
	if CaptureContent(nil) {
		t.Error("nil getenv opts in")
	}
}

func TestResourceFromEnvPrecedence(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		name                     string
		env                      map[string]string
		wantName, wantVer, wantE string
	}{
		{"code defaults", nil, "zest", "1.0", ""},
		{"resource attributes beat code", map[string]string{
			"OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs,service.version=9,deployment.environment.name=prod"},
			"from-attrs", "9", "prod"},
		{"OTEL_SERVICE_NAME beats all", map[string]string{
			"OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs", "OTEL_SERVICE_NAME": "svc"},
			"svc", "1.0", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := resourceFromEnv(t.Context(), envMap(tt.env), TracingOptions{ServiceVersion: "1.0"}, log)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, kv := range res.Attributes() {
				got[string(kv.Key)] = kv.Value.Emit()
			}
			if got["service.name"] != tt.wantName || got["service.version"] != tt.wantVer ||
				got["deployment.environment.name"] != tt.wantE || got["telemetry.sdk.language"] != "go" {
				t.Errorf("resource %v", got)
			}
		})
	}
}
