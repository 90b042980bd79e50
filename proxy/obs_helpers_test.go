package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zest-proxy/zest/ratelimit"
	"github.com/zest-proxy/zest/semantic"
	"github.com/zest-proxy/zest/telemetry"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// xDim is the dimension of the fake embedder's vectors.
const xDim = 4

// xEmbedder is a deterministic fake embedder: prompts listed in vecs get their vector (so
// paraphrases can share one, or sit at a chosen cosine); any other prompt gets a vector derived
// from its hash, far from every listed one. fail makes Embed return an error; hang makes it
// block until its context ends (the embed deadline).
type xEmbedder struct {
	vecs  map[string][]float32
	fail  atomic.Bool
	hang  atomic.Bool
	calls atomic.Int64
}

var errXEmbed = errors.New("fake embedder down")

// The prompts of the semantic tests. xPromptA and xPromptA2 mean the same (identical vectors);
// xPromptNear sits at cosine 0.95 from them, xPromptFar at 0.85.
const (
	xPromptA    = "What is the capital of France?"
	xPromptA2   = "Tell me the capital city of France."
	xPromptNear = "Which French city is the capital?"
	xPromptFar  = "Name a large city in France."
)

func xNewEmbedder() *xEmbedder {
	at := func(cos float64) []float32 {
		return []float32{float32(cos), float32(math.Sqrt(1 - cos*cos)), 0, 0}
	}
	return &xEmbedder{vecs: map[string][]float32{
		xPromptA:    {1, 0, 0, 0},
		xPromptA2:   {1, 0, 0, 0},
		xPromptNear: at(0.95),
		xPromptFar:  at(0.85),
	}}
}

func (e *xEmbedder) Dim() int { return xDim }

func (e *xEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	e.calls.Add(1)
	if e.fail.Load() {
		return nil, errXEmbed
	}
	if e.hang.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	out := make([][]float32, len(texts))
	for i, t := range texts {
		if v, ok := e.vecs[t]; ok {
			out[i] = append([]float32(nil), v...)
			continue
		}
		// Unlisted prompts live in the last two dimensions, orthogonal to the listed ones.
		h := fnv.New64a()
		h.Write([]byte(t))
		a := float64(h.Sum64()%6283) / 1000
		out[i] = []float32{0, 0, float32(math.Cos(a)), float32(math.Sin(a))}
	}
	return out, nil
}

// xLogBuf is a concurrency-safe buffer for a JSON slog handler.
type xLogBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *xLogBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *xLogBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lines returns the decoded JSON log lines.
func (l *xLogBuf) lines(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(l.String()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, sc.Text())
		}
		out = append(out, m)
	}
	return out
}

// requests returns the access-log lines (msg "request").
func (l *xLogBuf) requests(t testing.TB) []map[string]any {
	var out []map[string]any
	for _, m := range l.lines(t) {
		if m["msg"] == "request" {
			out = append(out, m)
		}
	}
	return out
}

// xTracker wraps zest's upstream transport and counts response bodies not yet closed. zest
// closes an upstream body only after it has finished with the answer (stored it in both
// caches), so zero open bodies means no background work is left.
type xTracker struct {
	inner http.RoundTripper
	open  atomic.Int64
}

func (tr *xTracker) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := tr.inner.RoundTrip(r)
	if err == nil {
		tr.open.Add(1)
		resp.Body = &xTrackedBody{ReadCloser: resp.Body, tr: tr}
	}
	return resp, err
}

type xTrackedBody struct {
	io.ReadCloser
	tr   *xTracker
	once sync.Once
}

func (b *xTrackedBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(func() { b.tr.open.Add(-1) })
	return err
}

// xEnv is an env with the optional layers of these tests: a semantic cache over the fake
// embedder, a limiter on the env's fake clock, metrics, tracing and a JSON log.
type xEnv struct {
	*env
	emb     *xEmbedder
	sem     *semantic.Cache
	lim     *ratelimit.Limiter
	reg     *telemetry.Registry
	spans   *tracetest.InMemoryExporter
	logs    *xLogBuf
	metrics *telemetry.Metrics
	tracker *xTracker
}

// xCfg selects the layers of an xEnv.
type xCfg struct {
	semantic bool
	semOpts  func(*semantic.Options)
	limits   *ratelimit.Limits
	limOpts  func(*ratelimit.Options)
	metrics  bool
	tracing  bool
	mod      func(*Options)
	// cacheBytes is the exact cache's budget; 0 = newEnv's.
	cacheBytes int64
}

func xNewEnv(t testing.TB, up *upstream, cfg xCfg) *xEnv {
	t.Helper()
	x := &xEnv{logs: &xLogBuf{}}
	if cfg.cacheBytes == 0 {
		cfg.cacheBytes = 4 << 20
	}
	e := newEnvSized(t, up, cfg.cacheBytes, func(o *Options) {
		x.tracker = &xTracker{inner: o.Transport}
		o.Transport = x.tracker
		o.Logger = slog.New(slog.NewJSONHandler(x.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		if cfg.semantic {
			x.emb = xNewEmbedder()
			so := semantic.Options{Embedder: x.emb, Now: o.Now, EmbedTimeout: 2 * time.Second}
			if cfg.semOpts != nil {
				cfg.semOpts(&so)
			}
			s, err := semantic.New(so)
			if err != nil {
				t.Fatal(err)
			}
			x.sem, o.Semantic = s, s
		}
		if cfg.limits != nil {
			lo := ratelimit.Options{Default: *cfg.limits, Now: o.Now}
			if cfg.limOpts != nil {
				cfg.limOpts(&lo)
			}
			l, err := ratelimit.New(lo)
			if err != nil {
				t.Fatal(err)
			}
			x.lim, o.Limiter = l, l
			o.TokenLimits = cfg.limits.TokensPerMinute > 0 || len(lo.Overrides) > 0
		}
		if cfg.metrics {
			x.reg = telemetry.NewRegistry(nil)
			x.metrics = telemetry.NewMetrics(x.reg, nil)
			o.Metrics, o.MetricsHandler = x.metrics, x.reg.Handler()
		}
		if cfg.tracing {
			x.spans = tracetest.NewInMemoryExporter()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(x.spans))
			t.Cleanup(func() { tp.Shutdown(context.Background()) })
			o.TracerProvider = tp
		}
		if cfg.mod != nil {
			cfg.mod(o)
		}
	})
	x.env = e
	return x
}

// xEventually polls cond until it holds or 10 s pass (background work of the proxy: the
// semantic store after a response, the access log line, the server span).
func xEventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// settle waits until every request so far has finished inside zest: its access log line is
// written (the limiter's ticket is released before it), no flight is left and every upstream
// body is closed (zest closes it after the semantic store).
func (x *xEnv) settle(t testing.TB, requests int) {
	t.Helper()
	xEventually(t, strconv.Itoa(requests)+" access log lines", func() bool { return len(x.logs.requests(t)) >= requests })
	xEventually(t, "flights to end", func() bool {
		x.h.flights.mu.Lock()
		defer x.h.flights.mu.Unlock()
		return len(x.h.flights.m) == 0
	})
	xEventually(t, "upstream bodies to be closed", func() bool { return x.tracker.open.Load() == 0 })
}

// xSemStores is the number of answers the proxy filed in the semantic cache.
func (x *xEnv) semStores() uint64 { return x.h.Stats().Semantic.Stores }

// xChat is a chat body with the given last user message and extra members.
func xChat(prompt, extra string) string {
	p, _ := json.Marshal(prompt)
	if extra != "" {
		extra += ","
	}
	return `{"model":"gpt-4o-mini",` + extra + `"messages":[{"role":"user","content":` + string(p) + `}]}`
}

// xKeyHash is proxy.KeyHash of a request carrying bearer token tok.
func xKeyHash(tok string) string {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return KeyHash(r)
}

// xCompletion is a chat.completion with the given content and usage.
func xCompletion(content string, prompt, completion int) string {
	c, _ := json.Marshal(content)
	return `{"id":"chatcmpl-x","object":"chat.completion","created":1753958400,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":` +
		string(c) + `},"finish_reason":"stop"}],"usage":{"prompt_tokens":` + strconv.Itoa(prompt) +
		`,"completion_tokens":` + strconv.Itoa(completion) + `,"total_tokens":` + strconv.Itoa(prompt+completion) + `}}`
}

// xMetrics parses Prometheus text exposition: series text (name{labels} exactly as written,
// labels in the order written) → value. Comments and blank lines are skipped; a malformed
// line fails the test.
func xMetrics(t testing.TB, text string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i <= 0 {
			t.Fatalf("malformed metrics line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("malformed metrics value in %q: %v", line, err)
		}
		series := line[:i]
		if j := strings.IndexByte(series, '{'); j >= 0 && !strings.HasSuffix(series, "}") {
			t.Fatalf("malformed metrics labels in %q", line)
		}
		if _, dup := out[series]; dup {
			t.Fatalf("series %s appears twice", series)
		}
		out[series] = v
	}
	return out
}

// scrape GETs /metrics through zest and parses it.
func (x *xEnv) scrape(t testing.TB) map[string]float64 {
	t.Helper()
	r := x.do(http.MethodGet, "/metrics", "")
	if r.err != nil || r.status != http.StatusOK {
		t.Fatalf("GET /metrics: %v %d %s", r.err, r.status, r.body)
	}
	return xMetrics(t, string(r.body))
}

// xSeries formats a series name with its labels as the exposition writes them: sorted by
// label name.
func xSeries(name string, kv ...string) string {
	if len(kv) == 0 {
		return name
	}
	pairs := make([][2]string, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		pairs = append(pairs, [2]string{kv[i], kv[i+1]})
	}
	slices.SortFunc(pairs, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	kv = kv[:0:0]
	for _, p := range pairs {
		kv = append(kv, p[0], p[1])
	}
	var b strings.Builder
	b.WriteString(name + "{")
	for i := 0; i < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(kv[i] + `="` + kv[i+1] + `"`)
	}
	b.WriteByte('}')
	return b.String()
}

// xGate holds upstream answers while closed; open releases every held and later call.
type xGate struct {
	mu sync.Mutex
	ch chan struct{}
}

func (g *xGate) close() { g.mu.Lock(); g.ch = make(chan struct{}); g.mu.Unlock() }
func (g *xGate) open() {
	g.mu.Lock()
	if g.ch != nil {
		close(g.ch)
		g.ch = nil
	}
	g.mu.Unlock()
}
func (g *xGate) wait() {
	g.mu.Lock()
	ch := g.ch
	g.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

// xGatedUpstream answers JSON requests with body after the gate opens, and streaming ones
// with the text.sse golden stream whose first event goes out at once and the rest after the
// gate opens.
func xGatedUpstream(t *testing.T, g *xGate, body string) *upstream {
	f := loadSSE(t, "text.sse")
	return newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if !isStreamRequest(b) {
			g.wait()
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, body)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		fl := w.(http.Flusher)
		for i, ev := range f.events {
			if i == 1 {
				g.wait()
			}
			io.WriteString(w, ev)
			fl.Flush()
		}
	})
}

// xWantLimitHeaders checks the rate-limit headers of a response against the limits and the
// requests used so far (the clock is frozen, so remaining is exact).
func xWantLimitHeaders(t *testing.T, h http.Header, rpm, tpm, usedRequests int) {
	t.Helper()
	if got := h.Get("x-ratelimit-limit-requests"); got != strconv.Itoa(rpm) {
		t.Errorf("x-ratelimit-limit-requests = %q, want %d", got, rpm)
	}
	if got := h.Get("x-ratelimit-remaining-requests"); got != strconv.Itoa(rpm-usedRequests) {
		t.Errorf("x-ratelimit-remaining-requests = %q, want %d", got, rpm-usedRequests)
	}
	for _, k := range []string{"x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"} {
		if _, err := time.ParseDuration(h.Get(k)); err != nil {
			t.Errorf("%s = %q is not a Go duration: %v", k, h.Get(k), err)
		}
	}
	if got := h.Get("x-ratelimit-limit-tokens"); got != strconv.Itoa(tpm) {
		t.Errorf("x-ratelimit-limit-tokens = %q, want %d", got, tpm)
	}
	if n, err := strconv.Atoi(h.Get("x-ratelimit-remaining-tokens")); err != nil || n < 0 || n > tpm {
		t.Errorf("x-ratelimit-remaining-tokens = %q, want 0..%d", h.Get("x-ratelimit-remaining-tokens"), tpm)
	}
	pol := h.Get("RateLimit-Policy")
	if !strings.Contains(pol, `"requests";q=`+strconv.Itoa(rpm)+";w=60") || !strings.Contains(pol, `"tokens";q=`+strconv.Itoa(tpm)) {
		t.Errorf("RateLimit-Policy = %q", pol)
	}
	if rl := h.Get("RateLimit"); !strings.Contains(rl, `"requests";r=`+strconv.Itoa(rpm-usedRequests)+";t=") {
		t.Errorf("RateLimit = %q, want requests remaining %d", rl, rpm-usedRequests)
	}
	for _, k := range []string{"x-ratelimit-remaining-requests", "x-ratelimit-limit-requests"} {
		if vs := h.Values(k); len(vs) != 1 {
			t.Errorf("%s has %d values %q, want exactly zest's one", k, len(vs), vs)
		}
	}
}
