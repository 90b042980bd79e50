// Package proxy is zest's http.Handler: it forwards /v1/... to an OpenAI-compatible upstream,
// answers repeated chat completions from the caches, applies cache_control, and speaks
// OpenAI's error format for what it answers itself.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zest-proxy/zest/cache"
	"github.com/zest-proxy/zest/internal/redisx"
	"github.com/zest-proxy/zest/ratelimit"
	"github.com/zest-proxy/zest/semantic"
	"github.com/zest-proxy/zest/telemetry"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Options configures a Handler. The zero value of every field but Upstream is usable.
type Options struct {
	// Upstream is the OpenAI-style base URL ending in its version path, such as
	// https://api.openai.com/v1; zest serves /v1/X from Upstream/X. Required.
	Upstream string
	// UpstreamAPIKey, when set, replaces the client's bearer token upstream; the client's
	// token then only identifies the tenant.
	UpstreamAPIKey string
	// Timeout bounds each upstream call, streams included. Default 300s; negative = none.
	Timeout time.Duration
	// Transport carries upstream calls. Default: for a plain-http upstream, an h1.Transport
	// (calls on the caller's goroutine) in front of NewTransport(); NewTransport() otherwise.
	// As http.RoundTripper requires, it must not modify the request: chat calls share one
	// parsed upstream URL.
	Transport http.RoundTripper

	// Cache is the exact cache; nil disables exact caching.
	Cache *cache.Cache
	// DefaultType is the cache_control type of a request that names none. Default "default".
	DefaultType string
	// AllowedTypes, when non-empty, are the only types a client may name; others get a 400.
	AllowedTypes []string
	// TTL is the default lifetime of a stored answer (a request's max_age overrides it).
	// Default 1h; capped at 24h.
	TTL time.Duration
	// Namespace decides who shares cached answers: "key" (hashed bearer token, the default),
	// "user" (the body's user, else the key) or "shared" (everyone).
	Namespace string
	// MaxBodyBytes caps a request body; larger bodies get a 413. Default 32 MiB.
	MaxBodyBytes int64
	// BodyTimeout bounds the time a client may take to send its request body; a slower client
	// gets a 408 (or its connection closed). Default 60s; negative = none.
	BodyTimeout time.Duration
	// NoCoalesce turns off the merging of identical concurrent misses.
	NoCoalesce bool
	// MaxResponseBytes caps what zest buffers of one upstream answer (the raw body or SSE
	// events, and the assembled answer). A larger answer is relayed to its clients as it
	// arrives, never stored, and the flight holds at most about this many bytes. Default
	// 4 MiB; negative = no cap.
	MaxResponseBytes int64

	// Semantic is the semantic cache; nil disables it.
	Semantic *semantic.Cache
	// SemanticShadow looks up semantically and counts would-be hits without serving them.
	SemanticShadow bool
	// SemanticToolCalls allows answers that call tools to be served semantically.
	SemanticToolCalls bool

	// Limiter enforces per-identity limits; nil = none.
	Limiter *ratelimit.Limiter
	// RateLimitKey is what a bucket belongs to: "key" (default), "user" or "ip".
	RateLimitKey string
	// TrustedProxies are the peers (load balancers) whose Forwarded / X-Forwarded-For headers
	// name the client for rate limits; from any other peer those headers are ignored. Empty
	// (the default) trusts none.
	TrustedProxies []netip.Prefix
	// TokenLimits makes zest count prompt tokens to reserve them (set when any token limit is
	// configured; counting costs CPU, so it is skipped otherwise).
	TokenLimits bool
	// DefaultMaxTokens is the output assumed for a request that sets no max_tokens. Default 1024.
	DefaultMaxTokens int

	// Metrics receives zest's counters; nil records none. MetricsHandler serves GET /metrics.
	Metrics        *telemetry.Metrics
	MetricsHandler http.Handler
	// TracerProvider makes the spans (nil = no tracing); Propagator reads and writes W3C trace
	// context (default TraceContext + Baggage).
	TracerProvider trace.TracerProvider
	Propagator     propagation.TextMapPropagator
	// Provider is gen_ai.provider.name on spans. Default "openai".
	Provider string

	// AdminToken guards /admin/...; empty turns the admin API off.
	AdminToken string

	// Redis is the client the shared tiers use, reported by /healthz and /admin/stats; nil
	// when zest runs alone. The tiers themselves get it through their own options.
	Redis *redisx.Client

	// Recorder, when set, receives every clean upstream chat answer with its timing (record
	// mode); nil (the default) records nothing and times nothing.
	Recorder Recorder
	// Replay, when set, answers chat completions from a recording and never calls the
	// upstream for them (replay mode; see ReplayOptions). Nil (the default) = off.
	Replay *ReplayOptions

	// Logger receives one line per request and errors; nil discards.
	Logger *slog.Logger
	// Now is the clock for ages, expiry, request durations and the access line's time. Default
	// time.Now.
	Now func() time.Time
}

// Handler is the proxy. Make one with New.
type Handler struct {
	opts       Options
	upstream   *url.URL
	base       string   // upstream base URL for display (credentials redacted)
	chatTarget string   // the cache target of a plain chat request (see cacheTarget)
	chatURL    *url.URL // the upstream URL of a plain chat request (no query, path as is); read-only
	transport  http.RoundTripper
	rp         *httputil.ReverseProxy
	logger     *slog.Logger
	now        func() time.Time
	allowed    map[string]bool
	flights    flightGroup
	models     interner // model names as logged and measured
	tenants    interner // key namespaces ("k:" + the credential's hash) of the first tenants seen

	countTokens bool
	background  sync.WaitGroup // upstream calls and their stores, which outlive handlers
	idle        chan func()    // hands background work to an idle worker (goBackground)
	bg          func(func())   // h.goBackground, bound once: a flight's bg without an allocation per miss
	tracing     bool
	tracer      trace.Tracer
	provider    string
	started     time.Time
	sem         semanticStats
	feedback    feedbackStats

	peakFlightBytes atomic.Int64 // the most bytes one upstream answer held in a flight
}

// New checks opts and returns a ready Handler.
func New(opts Options) (*Handler, error) {
	u, err := url.Parse(opts.Upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("proxy: upstream %q is not an http(s) URL", opts.Upstream)
	}
	if opts.Timeout == 0 {
		opts.Timeout = 300 * time.Second
	}
	if opts.DefaultType == "" {
		opts.DefaultType = TypeDefault
	}
	if !ValidType(opts.DefaultType) {
		return nil, fmt.Errorf("proxy: unknown default cache type %q", opts.DefaultType)
	}
	if opts.TTL <= 0 {
		opts.TTL = time.Hour
	}
	opts.TTL = min(opts.TTL, MaxAgeLimit)
	switch opts.Namespace {
	case "":
		opts.Namespace = "key"
	case "key", "user", "shared":
	default:
		return nil, fmt.Errorf("proxy: namespace %q: want key, user or shared", opts.Namespace)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 32 << 20
	}
	switch {
	case opts.MaxResponseBytes == 0:
		opts.MaxResponseBytes = 4 << 20
	case opts.MaxResponseBytes < 0:
		opts.MaxResponseBytes = 0
	}
	if opts.BodyTimeout == 0 {
		opts.BodyTimeout = 60 * time.Second
	}
	switch opts.RateLimitKey {
	case "":
		opts.RateLimitKey = "key"
	case "key", "user", "ip":
	default:
		return nil, fmt.Errorf("proxy: rate-limit key %q: want key, user or ip", opts.RateLimitKey)
	}
	if opts.DefaultMaxTokens <= 0 {
		opts.DefaultMaxTokens = 1024
	}
	if opts.Transport == nil {
		opts.Transport = upstreamTransport(u)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{
		opts:      opts,
		upstream:  u,
		base:      strings.TrimSuffix(u.Redacted(), "/"),
		transport: opts.Transport,
		logger:    opts.Logger,
		now:       opts.Now,
		started:   time.Now(),
		idle:      make(chan func()),
	}
	if len(opts.AllowedTypes) > 0 {
		h.allowed = map[string]bool{}
		for _, t := range opts.AllowedTypes {
			if !ValidType(t) {
				return nil, fmt.Errorf("proxy: allowed type %q is not a cache_control type", t)
			}
			h.allowed[t] = true
		}
	}
	h.bg = h.goBackground
	h.chatURL = upstreamURL(u, &url.URL{Path: "/v1" + chatPath})
	h.chatTarget = http.MethodPost + " " + h.chatURL.String()
	h.flights.m = map[string]*flight{}
	h.countTokens = opts.Limiter != nil && opts.TokenLimits
	h.provider = opts.Provider
	if h.provider == "" {
		h.provider = telemetry.ProviderOpenAI
	}
	if opts.TracerProvider != nil {
		h.tracer = opts.TracerProvider.Tracer(telemetry.TracerName)
		_, probe := h.tracer.Start(context.Background(), "probe")
		h.tracing = probe.IsRecording() || probe.SpanContext().IsValid()
		probe.End()
		if h.opts.Propagator == nil {
			h.opts.Propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
		}
	}
	h.rp = h.newReverseProxy()
	if opts.Replay != nil {
		ro := *opts.Replay
		h.opts.Replay = &ro
		if err := h.initReplay(); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// Wait blocks until every upstream call the handler started has finished and its answer has
// been stored, or ctx ends. Call it after http.Server.Shutdown and before closing the caches:
// a call whose clients all left is cancelled, but one still storing its answer runs on. It also
// waits for the semantic cache's background writes to Redis.
func (h *Handler) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		h.background.Wait()
		if s := h.opts.Semantic; s != nil {
			s.Wait()
		}
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ServeHTTP routes: zest's own endpoints, chat completions, and everything else under /v1/
// forwarded unchanged.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case p == feedbackPath:
		h.serveFeedback(w, r)
	case p == "/v1/chat/completions" && r.Method == http.MethodPost:
		ri := reqInfo{start: h.now()}
		r = h.startSpan(r, &ri)
		defer h.finishOnExit(r, &ri, nil)
		h.bodyDeadline(w, r)
		h.serveChat(w, r, &ri)
	case strings.HasPrefix(p, "/v1/"):
		ri := reqInfo{start: h.now()}
		r = h.startSpan(r, &ri)
		sw := &statusWriter{ResponseWriter: w}
		defer h.finishOnExit(r, &ri, sw)
		h.bodyDeadline(w, r)
		h.forward(sw, r, &ri)
	case p == "/admin" && h.opts.AdminToken != "":
		http.Redirect(w, r, "/admin/", http.StatusFound) // the dashboard page
	case strings.HasPrefix(p, "/admin/"):
		h.serveAdmin(w, r)
	case p == "/metrics" && h.opts.MetricsHandler != nil:
		h.opts.MetricsHandler.ServeHTTP(w, r)
	case p == "/healthz":
		h.serveHealth(w)
	default:
		writeError(w, &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "unknown_url",
			Message: fmt.Sprintf("Unknown request URL: %s %s. zest serves the OpenAI API under /v1/.", r.Method, p)})
	}
}

// finishOnExit writes the request's log line, metrics and span on every way out of a handler,
// a panic included (which it notes and passes on). sw, when set, supplies the status written.
func (h *Handler) finishOnExit(r *http.Request, ri *reqInfo, sw *statusWriter) {
	p := recover()
	if ri.status == 0 && sw != nil {
		ri.status = sw.status
	}
	// A client whose request ended first (it hung up, or half-closed its side) gets its
	// connection broken rather than a response net/http would end as if it were complete (an
	// empty 200, or the clean end of a truncated stream) while it may still be reading.
	clientGone := p == nil && ri.status == statusClientClosed
	if clientGone {
		p = http.ErrAbortHandler // net/http closes the connection and logs nothing
	}
	if p != nil {
		switch {
		case clientGone:
			if ri.failure == "" {
				ri.failure = "client closed the request"
			}
		case p == errStreamCut:
			ri.failure = "upstream stream cut"
		default:
			ri.failure = fmt.Sprint("panic: ", p)
			h.logger.Error("panic serving request", "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
		}
		if ri.status == 0 {
			ri.status = http.StatusInternalServerError
		}
	}
	h.finish(r, ri)
	if p != nil {
		panic(p)
	}
}

// bodyDeadline bounds how long the client may take to send its request body
// (Options.BodyTimeout). net/http lifts the deadline itself once the body has been read.
func (h *Handler) bodyDeadline(w http.ResponseWriter, r *http.Request) {
	if h.opts.BodyTimeout <= 0 || r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return
	}
	if b, ok := r.Body.(interface{ Buffered() bool }); ok && b.Buffered() {
		return // the whole body came with the head (package h1): nothing to wait for
	}
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(h.opts.BodyTimeout))
}

// forward passes a request through unchanged.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, ri *reqInfo) {
	if r.ContentLength > h.opts.MaxBodyBytes {
		drainBody(w, r, r.Body)
		writeError(w, tooLarge(h.opts.MaxBodyBytes))
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &limitedBody{ReadCloser: http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes), raw: r.Body}
	}
	sw, ok := w.(*statusWriter)
	if !ok {
		sw = &statusWriter{ResponseWriter: w}
	}
	release, ok := h.admitPassThrough(sw, r, ri)
	if !ok {
		return
	}
	defer release()
	r, cancel := h.withTimeout(r)
	defer cancel()
	h.rp.ServeHTTP(sw, r)
}

// limitedBody is a forwarded request body under MaxBodyBytes; raw is the body beneath, which
// the error handler drains after a 413.
type limitedBody struct {
	io.ReadCloser
	raw io.Reader
}

func tooLarge(limit int64) *apiError {
	return &apiError{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error", Code: "request_too_large",
		Message: fmt.Sprintf("Request body is larger than this proxy's limit of %d bytes.", limit)}
}

func isMaxBytes(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

func levelFor(status int) slog.Level {
	if status >= 500 {
		return slog.LevelWarn
	}
	return slog.LevelInfo
}
