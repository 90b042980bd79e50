package telemetry

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// envFirst returns the first non-empty trimmed value of keys.
func envFirst(getenv func(string) string, keys ...string) (value, key string) {
	for _, k := range keys {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return v, k
		}
	}
	return "", ""
}

func envTrue(getenv func(string) string, keys ...string) bool {
	v, _ := envFirst(getenv, keys...)
	return strings.EqualFold(v, "true")
}

// exporterConfigFromEnv decides whether tracing is on and how spans leave.
// See SetupTracing for the variables.
func exporterConfigFromEnv(getenv func(string) string, log *slog.Logger) (exporterConfig, error) {
	var c exporterConfig
	if envTrue(getenv, "OTEL_SDK_DISABLED") {
		return c, nil
	}
	tracesEP := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
	genericEP := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_ENDPOINT"))
	if list := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); list == "" {
		c.enabled = tracesEP != "" || genericEP != ""
	} else {
		for _, e := range strings.Split(list, ",") {
			switch e = strings.ToLower(strings.TrimSpace(e)); e {
			case "none":
				return exporterConfig{}, nil
			case "otlp":
				c.enabled = true
			case "":
			default:
				log.Warn("OTEL_TRACES_EXPORTER: unsupported exporter ignored", "exporter", e)
			}
		}
	}
	if !c.enabled {
		return c, nil
	}

	c.protocol, _ = envFirst(getenv, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
	switch c.protocol {
	case "":
		c.protocol = "http/protobuf"
	case "http/protobuf", "grpc":
	default:
		return exporterConfig{}, fmt.Errorf("telemetry: OTLP protocol %q not supported (want http/protobuf or grpc)", c.protocol)
	}
	grpc := c.protocol == "grpc"

	epVar := "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	switch {
	case tracesEP != "":
		c.endpoint = tracesEP
	case genericEP != "":
		epVar, c.endpoint = "OTEL_EXPORTER_OTLP_ENDPOINT", genericEP
		if !grpc {
			c.endpoint = strings.TrimRight(genericEP, "/") + "/v1/traces"
		}
	case grpc:
		c.endpoint = "http://localhost:4317"
	default:
		c.endpoint = "http://localhost:4318/v1/traces"
	}
	if err := checkEndpoint(c.endpoint, grpc); err != nil {
		return exporterConfig{}, fmt.Errorf("telemetry: %s: %w", epVar, err)
	}
	c.insecure = envTrue(getenv, "OTEL_EXPORTER_OTLP_TRACES_INSECURE", "OTEL_EXPORTER_OTLP_INSECURE")

	c.headers = map[string]string{}
	for _, k := range []string{"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"} {
		kv, bad := parseKeyValues(getenv(k))
		if bad > 0 {
			log.Warn(k+": ignored malformed entries", "count", bad)
		}
		for _, p := range kv {
			c.headers[p[0]] = p[1]
		}
	}
	if v, k := envFirst(getenv, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"); v != "" {
		if ms, err := strconv.Atoi(v); err == nil && ms > 0 {
			c.timeout = time.Duration(ms) * time.Millisecond
		} else {
			log.Warn(k+": want milliseconds > 0; using the default", "value", v)
		}
	}
	if v, k := envFirst(getenv, "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION"); v != "" {
		switch strings.ToLower(v) {
		case "gzip":
			c.compression = true
		case "none":
		default:
			log.Warn(k+": want gzip or none; using none", "value", v)
		}
	}
	return c, nil
}

// checkEndpoint accepts an http(s) URL with a host, or for gRPC a bare
// host:port.
func checkEndpoint(ep string, grpc bool) error {
	if !strings.Contains(ep, "://") {
		if _, _, err := net.SplitHostPort(ep); grpc && err == nil {
			return nil
		}
		return fmt.Errorf("endpoint %q: want a URL like http://host:port", ep)
	}
	u, err := url.Parse(ep)
	if err != nil {
		return fmt.Errorf("endpoint %q: %w", ep, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("endpoint %q: want an http or https URL with a host", ep)
	}
	return nil
}

// samplerFromEnv reads OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG. An
// unknown sampler or a bad ratio is logged and replaced by the default
// (parentbased_always_on; ratio 1).
func samplerFromEnv(getenv func(string) string, log *slog.Logger) sdktrace.Sampler {
	name := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER")))
	ratio := func() float64 {
		arg := strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER_ARG"))
		if arg == "" {
			return 1
		}
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || !(r >= 0 && r <= 1) {
			log.Warn("OTEL_TRACES_SAMPLER_ARG: want a ratio in [0,1]; using 1", "value", arg)
			return 1
		}
		return r
	}
	switch name {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample())
	case "always_on":
		return sdktrace.AlwaysSample()
	case "always_off":
		return sdktrace.NeverSample()
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio())
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample())
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio()))
	}
	log.Warn("OTEL_TRACES_SAMPLER: unsupported sampler; using parentbased_always_on", "sampler", name)
	return sdktrace.ParentBased(sdktrace.AlwaysSample())
}

// parseKeyValues parses the OTEL_*_HEADERS / OTEL_RESOURCE_ATTRIBUTES form
// "k1=v1,k2=v2" with percent-encoded keys and values ('+' stays '+'). It
// returns the pairs in order and how many entries were malformed (no '=',
// empty key, bad escape) and skipped.
func parseKeyValues(s string) (pairs [][2]string, bad int) {
	for _, item := range strings.Split(s, ",") {
		if strings.TrimSpace(item) == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		k, err1 := url.PathUnescape(strings.TrimSpace(k))
		v, err2 := url.PathUnescape(strings.TrimSpace(v))
		if !ok || k == "" || err1 != nil || err2 != nil {
			bad++
			continue
		}
		pairs = append(pairs, [2]string{k, v})
	}
	return pairs, bad
}
