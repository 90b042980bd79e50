package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/zest-proxy/zest/cache"
	"github.com/zest-proxy/zest/internal/logfmt"
	"github.com/zest-proxy/zest/ratelimit"
	"github.com/zest-proxy/zest/telemetry"
)

// xTraceparent is a client's W3C trace context for trace number i.
func xTraceparent(i int) (string, trace.TraceID, trace.SpanID) {
	tid, _ := trace.TraceIDFromHex(fmt.Sprintf("4bf92f3577b34da6a3ce929d0e0e%04x", i))
	sid, _ := trace.SpanIDFromHex(fmt.Sprintf("00f067aa0ba9%04x", i))
	return "00-" + tid.String() + "-" + sid.String() + "-01", tid, sid
}

// spansOf waits until trace tid has n ended spans and returns them.
func (x *xEnv) spansOf(t *testing.T, tid trace.TraceID, n int) tracetest.SpanStubs {
	t.Helper()
	var out tracetest.SpanStubs
	xEventually(t, fmt.Sprintf("%d spans of trace %s", n, tid), func() bool {
		out = out[:0]
		for _, s := range x.spans.GetSpans() {
			if s.SpanContext.TraceID() == tid {
				out = append(out, s)
			}
		}
		return len(out) >= n
	})
	return out
}

func xSpanNamed(t *testing.T, ss tracetest.SpanStubs, name string) tracetest.SpanStub {
	t.Helper()
	var names []string
	for _, s := range ss {
		if s.Name == name {
			return s
		}
		names = append(names, s.Name)
	}
	t.Fatalf("no span %q among %q", name, names)
	return tracetest.SpanStub{}
}

func xAttrs(s tracetest.SpanStub) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes {
		m[kv.Key] = kv.Value
	}
	return m
}

// xWantAttrs checks string, bool, int and float attributes of a span (want values as Go values).
func xWantAttrs(t *testing.T, s tracetest.SpanStub, want map[attribute.Key]any) {
	t.Helper()
	got := xAttrs(s)
	for k, w := range want {
		v, ok := got[k]
		if !ok {
			t.Errorf("span %q lacks %s (has %v)", s.Name, k, s.Attributes)
			continue
		}
		if fmt.Sprint(v.AsInterface()) != fmt.Sprint(w) {
			t.Errorf("span %q: %s = %v, want %v", s.Name, k, v.AsInterface(), w)
		}
	}
}

// xNoSecrets fails when a span's name or any attribute carries one of the secrets.
func xNoSecrets(t *testing.T, ss tracetest.SpanStubs, secrets ...string) {
	t.Helper()
	for _, s := range ss {
		for _, sec := range secrets {
			if strings.Contains(s.Name, sec) {
				t.Errorf("span name %q contains %q", s.Name, sec)
			}
			for _, kv := range s.Attributes {
				if strings.Contains(kv.Value.Emit(), sec) {
					t.Errorf("span %q attribute %s contains %q", s.Name, kv.Key, sec)
				}
			}
		}
	}
}

// TestObsTracing: the server span of each request, its children, the upstream client span,
// and the W3C context from the client to the upstream.
func TestObsTracing(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	x := xNewEnv(t, up, xCfg{semantic: true, tracing: true, limits: &ratelimit.Limits{RequestsPerMinute: 100}})

	t.Run("miss", func(t *testing.T) {
		tp, tid, parent := xTraceparent(1)
		r := x.chat(xChat(xPromptA, ""), withHeader("Traceparent", tp))
		wantStatus(t, r, 200, "MISS")
		// The answer is filed by meaning after the client has it: the semantic hit below needs
		// that done, whatever else the machine is doing.
		if err := x.h.Wait(t.Context()); err != nil {
			t.Fatal(err)
		}
		ss := x.spansOf(t, tid, 4)
		srv := xSpanNamed(t, ss, "chat gpt-4o-mini")
		if srv.SpanKind != trace.SpanKindServer || srv.Parent.SpanID() != parent || !srv.Parent.IsRemote() {
			t.Errorf("server span kind %v parent %v: want a server span continuing the client's span %v", srv.SpanKind, srv.Parent.SpanID(), parent)
		}
		xWantAttrs(t, srv, map[attribute.Key]any{
			telemetry.GenAIOperationName:     "chat",
			telemetry.GenAIProviderName:      "openai",
			telemetry.GenAIRequestModel:      "gpt-4o-mini",
			telemetry.GenAIRequestStream:     false,
			telemetry.GenAIUsageInputTokens:  14,
			telemetry.GenAIUsageOutputTokens: 7,
			telemetry.ZestCacheStatus:        telemetry.CacheMiss,
			telemetry.ZestCacheKey:           r.header.Get("X-Cache-Key"),
			telemetry.ZestRateLimitDecision:  telemetry.RateLimitAllow,
			"http.response.status_code":      200,
		})
		for _, name := range []string{telemetry.SpanCacheLookup, telemetry.SpanSemanticSearch} {
			c := xSpanNamed(t, ss, name)
			if c.Parent.SpanID() != srv.SpanContext.SpanID() {
				t.Errorf("%s is not a child of the server span", name)
			}
		}
		var client tracetest.SpanStub
		for _, s := range ss {
			if s.SpanKind == trace.SpanKindClient {
				client = s
			}
		}
		if client.Name == "" || client.Parent.SpanID() != srv.SpanContext.SpanID() {
			t.Fatalf("no client span under the server span: %v", ss)
		}
		got := up.last().Header.Get("Traceparent")
		want := "00-" + tid.String() + "-" + client.SpanContext.SpanID().String() + "-01"
		if got != want {
			t.Errorf("upstream traceparent = %q, want %q (same trace, parent = the client span)", got, want)
		}
		xNoSecrets(t, ss, "sk-client-one", xPromptA, "capital")
	})
	t.Run("exact hit", func(t *testing.T) {
		tp, tid, _ := xTraceparent(2)
		r := x.chat(xChat(xPromptA, ""), withHeader("Traceparent", tp))
		wantStatus(t, r, 200, "HIT")
		ss := x.spansOf(t, tid, 2)
		srv := xSpanNamed(t, ss, "chat gpt-4o-mini")
		xWantAttrs(t, srv, map[attribute.Key]any{
			telemetry.ZestCacheStatus:       telemetry.CacheHit,
			telemetry.ZestCacheLayer:        telemetry.LayerExact,
			telemetry.ZestCacheKey:          r.header.Get("X-Cache-Key"),
			telemetry.ZestRateLimitDecision: telemetry.RateLimitAllow,
		})
		for _, s := range ss {
			if s.SpanKind == trace.SpanKindClient {
				t.Errorf("a hit made a client span %q", s.Name)
			}
		}
		xNoSecrets(t, ss, "sk-client-one", xPromptA, "capital")
	})
	t.Run("semantic hit", func(t *testing.T) {
		tp, tid, _ := xTraceparent(3)
		r := x.chat(xChat(xPromptA2, ""), withHeader("Traceparent", tp))
		wantStatus(t, r, 200, "HIT")
		ss := x.spansOf(t, tid, 3)
		srv := xSpanNamed(t, ss, "chat gpt-4o-mini")
		xWantAttrs(t, srv, map[attribute.Key]any{
			telemetry.ZestCacheStatus:     telemetry.CacheHit,
			telemetry.ZestCacheLayer:      telemetry.LayerSemantic,
			telemetry.ZestCacheSimilarity: 1,
		})
		if c := xSpanNamed(t, ss, telemetry.SpanSemanticSearch); c.Parent.SpanID() != srv.SpanContext.SpanID() {
			t.Error("semantic search span is not a child of the server span")
		}
		xNoSecrets(t, ss, "sk-client-one", xPromptA2, "capital")
	})
	t.Run("forwarded path", func(t *testing.T) {
		tp, tid, _ := xTraceparent(4)
		r := x.do(http.MethodGet, "/v1/models", "", withHeader("Traceparent", tp))
		if r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
		ss := x.spansOf(t, tid, 1)
		if ss[0].SpanKind != trace.SpanKindServer {
			t.Errorf("span kind %v", ss[0].SpanKind)
		}
		if got := up.last().Header.Get("Traceparent"); !strings.HasPrefix(got, "00-"+tid.String()+"-") {
			t.Errorf("upstream traceparent = %q, want trace %s", got, tid)
		}
	})
	t.Run("new trace without traceparent", func(t *testing.T) {
		before := len(x.spans.GetSpans())
		wantStatus(t, x.chat(xChat(xPromptA, "")), 200, "HIT")
		xEventually(t, "the span", func() bool { return len(x.spans.GetSpans()) >= before+2 })
		for _, s := range x.spans.GetSpans()[before:] {
			if s.SpanKind == trace.SpanKindServer && s.Parent.IsValid() {
				t.Errorf("server span has a parent %v without a client traceparent", s.Parent)
			}
		}
	})
}

// TestObsTraceparentPassThrough: without tracing of its own, zest passes the client's trace
// context to the upstream as it came, on chat misses and forwarded paths.
func TestObsTraceparentPassThrough(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	x := xNewEnv(t, up, xCfg{})
	tp, _, _ := xTraceparent(7)
	wantStatus(t, x.chat(chatBody(""), withHeader("Traceparent", tp), withHeader("Tracestate", "vendor=1")), 200, "MISS")
	if got := up.last().Header.Get("Traceparent"); got != tp {
		t.Errorf("chat: upstream traceparent = %q, want %q", got, tp)
	}
	if got := up.last().Header.Get("Tracestate"); got != "vendor=1" {
		t.Errorf("chat: upstream tracestate = %q", got)
	}
	x.do(http.MethodGet, "/v1/models", "", withHeader("Traceparent", tp))
	if got := up.last().Header.Get("Traceparent"); got != tp {
		t.Errorf("forward: upstream traceparent = %q, want %q", got, tp)
	}
}

// TestObsMetrics: GET /metrics reflects what zest did.
func TestObsMetrics(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	x := xNewEnv(t, up, xCfg{semantic: true, metrics: true, limits: &ratelimit.Limits{RequestsPerMinute: 4}})
	wantStatus(t, x.chat(xChat(xPromptA, "")), 200, "MISS")
	wantStatus(t, x.chat(xChat(xPromptA, "")), 200, "HIT")
	x.settle(t, 2)
	wantStatus(t, x.chat(xChat(xPromptA2, "")), 200, "HIT")
	wantStatus(t, x.chat(xChat(xPromptA, "")), 200, "HIT")
	wantError(t, x.chat(xChat(xPromptA, "")), 429, "requests", "")
	x.clock.Advance(15 * time.Second)
	if r := x.do(http.MethodGet, "/v1/models", ""); r.status != 200 {
		t.Fatalf("GET /v1/models: %d", r.status)
	}
	x.settle(t, 6)
	chat := func(status, cacheStatus, layer string) string {
		return xSeries("zest_requests_total", "path", "/v1/chat/completions", "status", status, "cache", cacheStatus, "layer", layer)
	}
	want := map[string]float64{
		chat("200", "miss", ""):        1,
		chat("200", "hit", "exact"):    2,
		chat("200", "hit", "semantic"): 1,
		chat("429", "bypass", ""):      1,
		xSeries("zest_requests_total", "path", "/v1/models", "status", "200", "cache", "none", "layer", ""): 1,
		xSeries("zest_tokens_saved_total", "model", "gpt-4o-mini", "kind", "input"):                         3 * 14,
		xSeries("zest_tokens_saved_total", "model", "gpt-4o-mini", "kind", "output"):                        3 * 7,
		"zest_semantic_lookups_total":                                  2,
		"zest_semantic_hits_total":                                     1,
		"zest_semantic_shadow_hits_total":                              0,
		"zest_semantic_errors_total":                                   0,
		xSeries("zest_ratelimit_rejections_total", "type", "requests"): 1,
		"zest_upstream_duration_seconds_count":                         1,
	}
	var got map[string]float64
	xEventually(t, "the upstream duration to be observed", func() bool {
		got = x.scrape(t)
		return got["zest_upstream_duration_seconds_count"] == 1
	})
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	n := 0
	for k := range got {
		if strings.HasPrefix(k, "zest_requests_total{") {
			n++
		}
	}
	if n != 5 {
		t.Errorf("%d zest_requests_total series, want 5: %v", n, got)
	}

	t.Run("semantic errors", func(t *testing.T) {
		x.emb.fail.Store(true)
		defer x.emb.fail.Store(false)
		x.clock.Advance(time.Minute)
		wantStatus(t, x.chat(xChat(xPromptNear, "")), 200, "MISS")
		x.settle(t, 7)
		if got := x.scrape(t)["zest_semantic_errors_total"]; got < 1 {
			t.Errorf("zest_semantic_errors_total = %v after an embedder failure", got)
		}
	})
}

// TestObsConcurrencyRejectionMetric: a rejection by the concurrency cap is counted under the
// documented type label "concurrent" (telemetry.RateLimitConcurrent).
func TestObsConcurrencyRejectionMetric(t *testing.T) {
	g := &xGate{}
	g.close()
	up := xGatedUpstream(t, g, completionJSON)
	x := xNewEnv(t, up, xCfg{metrics: true, tracing: true, limits: &ratelimit.Limits{MaxConcurrent: 1}})
	done := make(chan *result, 1)
	go func() { done <- x.chat(xChat("slow one", "")) }()
	xEventually(t, "the first request upstream", func() bool { return up.count() == 1 })
	tp, tid, _ := xTraceparent(9)
	wantError(t, x.chat(xChat("second", ""), withHeader("Traceparent", tp)), 429, "requests", "")
	g.open()
	<-done
	x.settle(t, 2)
	got := x.scrape(t)
	if v := got[xSeries("zest_ratelimit_rejections_total", "type", telemetry.RateLimitConcurrent)]; v != 1 {
		t.Errorf("zest_ratelimit_rejections_total{type=%q} = %v, want 1 (series: %v)", telemetry.RateLimitConcurrent, v, xRejectionSeries(got))
	}
	srv := xSpanNamed(t, x.spansOf(t, tid, 2), "chat gpt-4o-mini")
	xWantAttrs(t, srv, map[attribute.Key]any{
		telemetry.ZestRateLimitDecision: telemetry.RateLimitReject,
		telemetry.ZestRateLimitType:     telemetry.RateLimitConcurrent,
	})
}

func xRejectionSeries(m map[string]float64) []string {
	var out []string
	for k, v := range m {
		if strings.HasPrefix(k, "zest_ratelimit_rejections_total") {
			out = append(out, fmt.Sprintf("%s=%v", k, v))
		}
	}
	return out
}

// TestObsAccessLog: one JSON line per request saying what zest did, and never the raw
// bearer token (nor the admin token) anywhere in the log.
func TestObsAccessLog(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	const tok, admin = "sk-secret-client-token-123", "admin-secret-token-456"
	x := xNewEnv(t, up, xCfg{semantic: true, limits: &ratelimit.Limits{RequestsPerMinute: 4},
		mod: func(o *Options) { o.AdminToken = admin }})
	type want struct {
		status       float64
		cache, layer string
	}
	steps := []struct {
		do   func() *result
		want want
	}{
		{func() *result { return x.chat(xChat(xPromptA, ""), withToken(tok)) }, want{200, "MISS", ""}},
		{func() *result { return x.chat(xChat(xPromptA, ""), withToken(tok)) }, want{200, "HIT", "exact"}},
		{func() *result { return x.chat(xChat(xPromptA2, ""), withToken(tok)) }, want{200, "HIT", "semantic"}},
		{func() *result { return x.do(http.MethodGet, "/v1/models", "", withToken(tok)) }, want{200, "", ""}},
		{func() *result { return x.chat(xChat(xPromptA, ""), withToken(tok)) }, want{429, "BYPASS", ""}},
		{func() *result { return x.chat(`{"model":`, withToken(tok)) }, want{429, "BYPASS", ""}}, // malformed bodies are limited too
	}
	for i, s := range steps {
		s.do()
		x.settle(t, i+1)
		lines := x.logs.requests(t)
		if len(lines) != i+1 {
			t.Fatalf("after %d requests, %d access log lines:\n%s", i+1, len(lines), x.logs.String())
		}
		l := lines[i]
		if l["status"] != s.want.status {
			t.Errorf("line %d: status = %v, want %v", i, l["status"], s.want.status)
		}
		cacheField, _ := l["cache"].(string)
		layer, _ := l["layer"].(string)
		if cacheField != s.want.cache || layer != s.want.layer {
			t.Errorf("line %d: cache/layer = %q/%q, want %q/%q: %v", i, cacheField, layer, s.want.cache, s.want.layer, l)
		}
	}
	// Admin calls and an upstream failure log too; none may show a secret.
	x.do(http.MethodDelete, "/admin/cache", "", withToken(admin))
	x.do(http.MethodGet, "/admin/stats", "", withToken("wrong-"+tok))
	out := x.logs.String()
	for _, sec := range []string{tok, admin} {
		if strings.Contains(out, sec) {
			t.Errorf("log output contains the secret %q:\n%s", sec, out)
		}
	}
}

// BenchmarkHitTracing is an exact hit through the whole handler with tracing off and on (a
// batching provider whose exporter discards), so the cost of the spans shows.
func BenchmarkHitTracing(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(map[bool]string{false: "off", true: "on"}[on], func(b *testing.B) {
			srv := benchUpstream(b, jsonAnswer(200, completionJSON))
			c, err := cache.New(cache.Options{MaxBytes: 64 << 20})
			if err != nil {
				b.Fatal(err)
			}
			tr := NewTransport()
			opts := Options{Upstream: srv.URL + "/v1", Cache: c, Transport: tr}
			if on {
				tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
				b.Cleanup(func() { tp.Shutdown(context.Background()) })
				opts.TracerProvider = tp
			}
			h, err := New(opts)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { tr.CloseIdleConnections(); c.Close() })
			rr := newReusableRequest(chatBody(""))
			w := &benchWriter{h: http.Header{}}
			h.ServeHTTP(w, rr.rewind())
			w.reset()
			h.ServeHTTP(w, rr.rewind())
			if w.code != 200 || w.h.Get("X-Cache-Status") != "HIT" {
				b.Fatalf("priming failed: %d %q", w.code, w.h.Get("X-Cache-Status"))
			}
			b.ReportAllocs()
			for b.Loop() {
				w.reset()
				h.ServeHTTP(w, rr.rewind())
			}
			if w.code != 200 || w.h.Get("X-Cache-Status") != "HIT" {
				b.Fatalf("last answer: %d %q", w.code, w.h.Get("X-Cache-Status"))
			}
		})
	}
}

// TestAccessLineFastPath: through zest's own text handler (logfmt, which takes the access
// line's attributes without a slog.Record), a miss, a hit and a refused request log the lines
// slog.TextHandler writes for the same requests.
func TestAccessLineFastPath(t *testing.T) {
	run := func(h slog.Handler, logs *xLogBuf) string {
		up := newUpstream(t, jsonAnswer(200, completionJSON))
		e := newEnv(t, up, func(o *Options) { o.Logger = slog.New(h) })
		e.chat(chatBody(""), withToken("sk-one"))
		e.chat(chatBody(""), withToken("sk-one"))
		e.chat(chatBody(`"cache_control":{"type":"sometimes"}`), withToken("sk-two"))
		xEventually(t, "three access lines", func() bool { return strings.Count(logs.String(), "msg=request") == 3 })
		// The entry names the cache key, which covers the upstream's address: one per run.
		return regexp.MustCompile(`entry=[0-9a-f]{12}`).ReplaceAllString(logs.String(), "entry=KEY")
	}
	var fastLogs, stdLogs xLogBuf
	counted := &attrsCounter{Handler: logfmt.NewTextHandler(&fastLogs, nil)}
	fast := run(counted, &fastLogs)
	if n := counted.lines.Load(); n != 3 {
		t.Errorf("%d access lines handed over as attributes, want 3", n)
	}
	std := run(slog.NewTextHandler(&stdLogs, nil), &stdLogs)
	if fast != std {
		t.Errorf("access lines differ\nlogfmt:\n%s\nslog.TextHandler:\n%s", fast, std)
	}
	for _, want := range []string{"cache=MISS", "cache=HIT", "status=400"} {
		if !strings.Contains(fast, want) {
			t.Errorf("no line with %s:\n%s", want, fast)
		}
	}
}

// attrsCounter is a logfmt handler that counts the lines handed to it as attributes.
type attrsCounter struct {
	slog.Handler
	lines atomic.Int32
}

func (c *attrsCounter) HandleAttrs(ctx context.Context, t time.Time, level slog.Level, msg string, attrs []slog.Attr) error {
	c.lines.Add(1)
	return c.Handler.(logfmt.AttrsHandler).HandleAttrs(ctx, t, level, msg, attrs)
}
