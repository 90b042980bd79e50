package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/zest-proxy/zest/internal/logfmt"
	"github.com/zest-proxy/zest/ratelimit"
	"github.com/zest-proxy/zest/telemetry"
)

// reqInfo collects what zest decided about one request, for the access log line, the metrics
// and the server span, all written once by finish.
type reqInfo struct {
	start      time.Time
	status     int
	cache      string // HIT | MISS | BYPASS | "" (not a chat request)
	layer      string // exact | semantic | coalesced
	model      string
	stream     bool
	similarity float32
	key        string
	tenant     string // a short prefix of the namespace hash, never a key
	limit      string // "" (no limiter), allow, reject
	limitType  string
	reserved   int
	reconciled int
	inTok      int // the answer's usage (for hits: what was saved)
	outTok     int
	failure    string // why the request ended abnormally (a cut stream, a panic)
	span       trace.Span
}

// startSpan opens the server span of a request when tracing is on, continuing a trace the
// client started (W3C traceparent).
func (h *Handler) startSpan(r *http.Request, ri *reqInfo) *http.Request {
	if !h.tracing {
		return r
	}
	ctx := h.opts.Propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := h.tracer.Start(ctx, r.Method+" "+telemetry.RouteLabel(r.URL.Path),
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path)))
	ri.span = span
	return r.WithContext(ctx)
}

// childSpan starts an internal span under the request's span (a no-op when tracing is off).
func (h *Handler) childSpan(ctx context.Context, name string) (context.Context, trace.Span) {
	if !h.tracing {
		return ctx, trace.SpanFromContext(context.Background())
	}
	return h.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindInternal))
}

// injectTrace puts the current trace context on an upstream request.
func (h *Handler) injectTrace(out *http.Request) {
	if h.tracing {
		h.opts.Propagator.Inject(out.Context(), propagation.HeaderCarrier(out.Header))
	}
}

// finish writes the request's log line, metrics and span.
func (h *Handler) finish(r *http.Request, ri *reqInfo) {
	end := h.now() // one clock read for the metrics, the log line's duration and its time
	if m := h.opts.Metrics; m != nil {
		m.Request(r.URL.Path, ri.status, metricCache(ri.cache), ri.layer)
		m.ObserveRequest(r.Context(), metricCache(ri.cache), end.Sub(ri.start))
		if ri.cache == "HIT" && (ri.inTok > 0 || ri.outTok > 0) {
			m.Saved(ri.model, ri.inTok, ri.outTok)
		}
		if ri.limit == telemetry.RateLimitReject {
			m.RateLimited(limitLabel(ri.limitType))
		}
	}
	if span := ri.span; span != nil {
		if ri.model != "" {
			span.SetName(telemetry.GenAISpanName(telemetry.OperationChat, ri.model))
		}
		attrs := []attribute.KeyValue{attribute.Int("http.response.status_code", ri.status)}
		if ri.cache != "" {
			attrs = append(attrs,
				telemetry.GenAIOperationName.String(telemetry.OperationChat),
				telemetry.GenAIProviderName.String(h.provider),
				telemetry.GenAIRequestModel.String(ri.model),
				telemetry.GenAIRequestStream.Bool(ri.stream),
				telemetry.ZestCacheStatus.String(metricCache(ri.cache)))
			if ri.layer != "" {
				attrs = append(attrs, telemetry.ZestCacheLayer.String(ri.layer))
			}
			if ri.similarity > 0 {
				attrs = append(attrs, telemetry.ZestCacheSimilarity.Float64(float64(ri.similarity)))
			}
			if ri.key != "" {
				attrs = append(attrs, telemetry.ZestCacheKey.String(ri.key))
			}
			if ri.inTok > 0 || ri.outTok > 0 {
				attrs = append(attrs, telemetry.GenAIResponseModel.String(ri.model),
					telemetry.GenAIUsageInputTokens.Int(ri.inTok), telemetry.GenAIUsageOutputTokens.Int(ri.outTok))
			}
		}
		if ri.limit != "" {
			attrs = append(attrs, telemetry.ZestRateLimitDecision.String(ri.limit))
			if ri.limitType != "" {
				attrs = append(attrs, telemetry.ZestRateLimitType.String(limitLabel(ri.limitType)))
			}
			attrs = append(attrs, telemetry.ZestTokensReserved.Int(ri.reserved), telemetry.ZestTokensReconciled.Int(ri.reconciled))
		}
		span.SetAttributes(attrs...)
		switch {
		case ri.failure != "":
			span.SetStatus(codes.Error, ri.failure)
		case ri.status >= 500:
			span.SetStatus(codes.Error, http.StatusText(ri.status))
		}
		span.End()
	}
	if !h.logger.Enabled(r.Context(), slog.LevelInfo) {
		return
	}
	var buf [14]slog.Attr // room for every attribute below: no growing slice per request
	attrs := append(buf[:0],
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", ri.status),
		slog.Duration("duration", end.Sub(ri.start)))
	if ri.cache != "" {
		attrs = append(attrs, slog.String("cache", ri.cache), slog.String("model", ri.model), slog.Bool("stream", ri.stream))
		if ri.layer != "" {
			attrs = append(attrs, slog.String("layer", ri.layer))
		}
		if ri.similarity > 0 {
			attrs = append(attrs, slog.Float64("similarity", float64(ri.similarity)))
		}
		if ri.key != "" {
			attrs = append(attrs, slog.String("entry", ri.key[:12]))
		}
	}
	if ri.tenant != "" {
		attrs = append(attrs, slog.String("tenant", ri.tenant))
	}
	if ri.failure != "" {
		attrs = append(attrs, slog.String("failure", ri.failure))
	}
	if ri.limit != "" {
		attrs = append(attrs, slog.String("ratelimit", ri.limit))
		if ri.limitType != "" {
			attrs = append(attrs, slog.String("ratelimit_type", ri.limitType))
		}
	}
	// zest's own text handler takes the attributes as they are: no record to build (one keeps
	// five attributes inline and allocates for more).
	if ok, _ := logfmt.HandleAttrs(r.Context(), h.logger.Handler(), end, slog.LevelInfo, "request", attrs); ok {
		return
	}
	// A record without a caller's PC: the access line never shows its source, and
	// runtime.Callers would be a tenth of what the line costs.
	rec := slog.NewRecord(end, slog.LevelInfo, "request", 0)
	rec.AddAttrs(attrs...)
	_ = h.logger.Handler().Handle(r.Context(), rec)
}

// limitLabel maps a rate-limit reason to its metric label.
func limitLabel(reason string) string {
	switch reason {
	case ratelimit.ReasonTokens:
		return telemetry.RateLimitTokens
	case ratelimit.ReasonConcurrency:
		return telemetry.RateLimitConcurrent
	}
	return telemetry.RateLimitRequests
}

func metricCache(s string) string {
	switch s {
	case "HIT":
		return telemetry.CacheHit
	case "MISS":
		return telemetry.CacheMiss
	case "BYPASS":
		return telemetry.CacheBypass
	}
	return telemetry.CacheNone
}

// statusWriter remembers the status written through it. Unwrap lets http.ResponseController
// reach the real writer's Flush, so streams are not held back.
// before, when set, edits the headers once, just before they are sent.
type statusWriter struct {
	http.ResponseWriter
	status int
	before func(http.Header)
}

func (w *statusWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		// An informational answer (103 Early Hints) passes on; the final status comes later
		// and gets the headers.
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if w.status == 0 {
		w.status = code
		if w.before != nil {
			w.before(w.ResponseWriter.Header())
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
