// Package mock is a deterministic stand-in for an OpenAI-compatible upstream.
//
// A Mock is an http.Handler that answers POST /v1/chat/completions (plain and
// streamed, with usage and tool calls), POST /v1/embeddings (deterministic
// vectors) and GET /v1/models, with configurable latency, time to first token,
// tokens per second, and injected errors. The same prompt always gets the same
// answer, so a caching proxy in front of it can be checked byte for byte.
//
// Per-request overrides are read from request headers, so one running mock can
// serve many test cases:
//
//	X-Mock-Status: 500       answer with this status (an OpenAI error envelope; 429 adds Retry-After)
//	X-Mock-Latency: 20ms     delay before a non-streamed answer (overrides Options.Latency)
//	X-Mock-TTFT: 50ms        delay before the first streamed event (overrides Options.TTFT)
//	X-Mock-TPS: 200          streamed tokens per second (overrides Options.TokensPerSecond)
//	X-Mock-Stream-Cut: 3     end a stream after this many content chunks, without [DONE]
//
// Paths are matched by suffix, so the mock works under any base URL that ends
// in /v1 (or none). GET /mock/stats returns the call counters as JSON and
// GET /healthz answers 200.
package mock

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Options configures a Mock. The zero value answers instantly with 32-token
// answers, 4 stream chunks, 64-dimension embeddings and no injected errors.
type Options struct {
	// Latency is the delay before a non-streamed chat answer or an embeddings
	// answer is written. Zero means no delay.
	Latency time.Duration
	// TTFT is the delay before the first event of a streamed answer.
	// Zero means no delay.
	TTFT time.Duration
	// TokensPerSecond paces the streamed chunks after the first one: each chunk
	// waits (its tokens / TokensPerSecond). Zero means unpaced.
	TokensPerSecond float64
	// AnswerTokens is the length of a chat answer in tokens (words), before
	// max_tokens / max_completion_tokens cap it. Zero means 32.
	AnswerTokens int
	// Chunks is the number of content chunks a streamed answer is split into.
	// Zero means 4; it is capped at the answer's token count.
	Chunks int
	// EmbeddingDim is the length of an embedding vector when the request does
	// not ask for `dimensions`. Zero means 64.
	EmbeddingDim int
	// ErrorRate is the fraction (0..1) of requests answered with a 500.
	ErrorRate float64
	// RateLimitRate is the fraction (0..1) of requests answered with a 429.
	RateLimitRate float64
	// Seed varies which requests get injected errors. Injection is a
	// deterministic function of the seed and the request's arrival number.
	Seed uint64
	// Now returns the time used for the `created` field. Nil means time.Now.
	Now func() time.Time
	// Logger receives one debug line per request. Nil discards.
	Logger *slog.Logger
}

// Stats counts the requests a Mock has seen since it was created or Reset.
type Stats struct {
	Requests     int64 `json:"requests"`      // every request, any path
	Chat         int64 `json:"chat"`          // chat completions answered 200, plain
	ChatStream   int64 `json:"chat_stream"`   // chat completions answered 200, streamed
	Embeddings   int64 `json:"embeddings"`    // embeddings answered 200
	Models       int64 `json:"models"`        // GET models
	Errors       int64 `json:"errors"`        // injected or forced non-429 error statuses
	RateLimited  int64 `json:"rate_limited"`  // injected or forced 429s
	BadRequests  int64 `json:"bad_requests"`  // 400s for bodies the mock cannot read
	NotFound     int64 `json:"not_found"`     // unknown paths
	StreamsCut   int64 `json:"streams_cut"`   // streams ended early by X-Mock-Stream-Cut
	PromptTokens int64 `json:"prompt_tokens"` // sum of prompt tokens over answered chats
}

// Mock is the mock upstream. It is safe for concurrent use.
type Mock struct {
	opts   Options
	log    *slog.Logger
	arrive atomic.Uint64

	requests, chat, chatStream, embeddings, models atomic.Int64
	errors, rateLimited, badRequests, notFound     atomic.Int64
	streamsCut, promptTokens                       atomic.Int64
}

// New returns a Mock with the options' zero fields set to their defaults.
func New(opts Options) *Mock {
	if opts.AnswerTokens <= 0 {
		opts.AnswerTokens = 32
	}
	if opts.Chunks <= 0 {
		opts.Chunks = 4
	}
	if opts.EmbeddingDim <= 0 {
		opts.EmbeddingDim = 64
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Mock{opts: opts, log: log}
}

// Stats returns a snapshot of the counters.
func (m *Mock) Stats() Stats {
	return Stats{
		Requests:     m.requests.Load(),
		Chat:         m.chat.Load(),
		ChatStream:   m.chatStream.Load(),
		Embeddings:   m.embeddings.Load(),
		Models:       m.models.Load(),
		Errors:       m.errors.Load(),
		RateLimited:  m.rateLimited.Load(),
		BadRequests:  m.badRequests.Load(),
		NotFound:     m.notFound.Load(),
		StreamsCut:   m.streamsCut.Load(),
		PromptTokens: m.promptTokens.Load(),
	}
}

// Reset sets every counter to zero.
func (m *Mock) Reset() {
	for _, c := range []*atomic.Int64{&m.requests, &m.chat, &m.chatStream, &m.embeddings,
		&m.models, &m.errors, &m.rateLimited, &m.badRequests, &m.notFound, &m.streamsCut,
		&m.promptTokens} {
		c.Store(0)
	}
}

// ServeHTTP routes a request to the chat, embeddings or models answer.
func (m *Mock) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.requests.Add(1)
	n := m.arrive.Add(1)
	path := r.URL.Path
	m.log.Debug("mock request", "method", r.Method, "path", path)
	switch {
	case path == "/healthz":
		w.WriteHeader(http.StatusOK)
		return
	case strings.HasSuffix(path, "/mock/stats") && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(m.Stats())
		return
	case strings.HasSuffix(path, "/mock/reset") && r.Method == http.MethodPost:
		m.Reset()
		w.WriteHeader(http.StatusNoContent)
		return
	}
	route := ""
	switch {
	case strings.HasSuffix(path, "/chat/completions") && r.Method == http.MethodPost:
		route = "chat"
	case strings.HasSuffix(path, "/embeddings") && r.Method == http.MethodPost:
		route = "embeddings"
	case strings.HasSuffix(path, "/models") && r.Method == http.MethodGet:
		route = "models"
	default:
		m.notFound.Add(1)
		writeError(w, http.StatusNotFound, "Unknown request URL: "+r.Method+" "+path, "invalid_request_error", "unknown_url")
		return
	}
	if status := m.injectedStatus(r, n); status != 0 {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		m.writeInjected(w, status)
		return
	}
	switch route {
	case "chat":
		m.serveChat(w, r)
	case "embeddings":
		m.serveEmbeddings(w, r)
	case "models":
		m.serveModels(w)
	}
}

// injectedStatus returns the status forced by X-Mock-Status or drawn from the
// injection rates for arrival n, or 0 for a normal answer.
func (m *Mock) injectedStatus(r *http.Request, n uint64) int {
	if h := r.Header.Get("X-Mock-Status"); h != "" {
		if s, err := strconv.Atoi(h); err == nil && s >= 400 && s <= 599 {
			return s
		}
	}
	if m.opts.ErrorRate <= 0 && m.opts.RateLimitRate <= 0 {
		return 0
	}
	u := float64(splitmix(m.opts.Seed^n)>>11) / (1 << 53)
	switch {
	case u < m.opts.RateLimitRate:
		return http.StatusTooManyRequests
	case u < m.opts.RateLimitRate+m.opts.ErrorRate:
		return http.StatusInternalServerError
	}
	return 0
}

func (m *Mock) writeInjected(w http.ResponseWriter, status int) {
	if status == http.StatusTooManyRequests {
		m.rateLimited.Add(1)
		h := w.Header()
		h.Set("Retry-After", "1")
		h.Set("retry-after-ms", "1000")
		h.Set("x-ratelimit-limit-requests", "60")
		h.Set("x-ratelimit-remaining-requests", "0")
		h.Set("x-ratelimit-reset-requests", "1s")
		writeError(w, status, "Rate limit reached for requests (mock). Please try again in 1s.", "requests", "rate_limit_exceeded")
		return
	}
	m.errors.Add(1)
	typ := "server_error"
	if status < 500 {
		typ = "invalid_request_error"
	}
	writeError(w, status, "mock: injected error with status "+strconv.Itoa(status), typ, "mock_injected")
}

func (m *Mock) serveModels(w http.ResponseWriter) {
	m.models.Add(1)
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"object":"list","data":[`+
		`{"id":"gpt-4o-mini","object":"model","created":1700000000,"owned_by":"mock"},`+
		`{"id":"text-embedding-3-small","object":"model","created":1700000000,"owned_by":"mock"}]}`)
}

// writeError writes an OpenAI error envelope with the given status.
func writeError(w http.ResponseWriter, status int, msg, typ, code string) {
	body, _ := json.Marshal(map[string]any{"error": map[string]any{
		"message": msg, "type": typ, "param": nil, "code": code,
	}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// headerDuration returns the duration in header h, or def when it is absent
// or unparsable.
func headerDuration(r *http.Request, h string, def time.Duration) time.Duration {
	if v := r.Header.Get(h); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d >= 0 {
			return d
		}
	}
	return def
}

// sleep waits d or until the request is cancelled; it reports whether the
// full delay passed.
func sleep(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// splitmix is the SplitMix64 finaliser: a cheap, well-mixed hash of x.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
