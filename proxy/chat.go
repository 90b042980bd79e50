package proxy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/zest-proxy/zest/cache"
	"github.com/zest-proxy/zest/internal/httphdr"
	"github.com/zest-proxy/zest/ratelimit"
	"github.com/zest-proxy/zest/telemetry"
)

// chatPath is the one path zest parses and caches.
const chatPath = "/chat/completions"

// serveChat answers POST /v1/chat/completions: cache_control, the exact then the semantic
// cache, the rate limit, coalescing of identical misses, and the upstream call whose clean
// answer is stored. It fills ri for the log line, metrics and span.
func (h *Handler) serveChat(w http.ResponseWriter, r *http.Request, ri *reqInfo) {
	// Every chat answer says what the cache did; answers that never reach a cache say BYPASS.
	w.Header()["X-Cache-Status"] = cacheBypass
	ri.cache = "BYPASS"
	buf, aerr := readBody(w, r, h.opts.MaxBodyBytes)
	if aerr != nil {
		ri.status = aerr.Status
		writeError(w, aerr)
		return
	}
	body := buf.Bytes()
	req := reqPool.Get().(*cache.Request)
	var call chatCall // on the stack: a hit allocates no call state
	defer func() {
		reqPool.Put(req)
		if !call.bodyUpstream() {
			putBuf(buf)
		} // else a RoundTripper still holds a body over buf's bytes: they go with it
	}()
	req.Reset()

	if err := cache.ParseRequest(body, req); err != nil {
		// Not ours to judge: the upstream answers malformed JSON, and it is never cached.
		sw := &statusWriter{ResponseWriter: w}
		release, ok := h.admitPassThrough(sw, r, ri)
		if !ok {
			return
		}
		defer release()
		h.forwardBytes(sw, r, bytes.Clone(body))
		ri.status = sw.status
		return
	}
	ri.model = h.models.stringOf(req.Model.Value)
	var ccRaw []byte
	if req.CacheControl.Present && string(req.CacheControl.Value) != "null" {
		ccRaw = req.CacheControl.Value // "cache_control": null is absent (and still removed)
	}
	m, aerr := parseCacheControl(ccRaw, r.Header, h.opts.DefaultType, h.allowed)
	if aerr != nil {
		h.refuse(w, r, req, ri, aerr)
		return
	}
	c := &call
	h.initChatCall(c, w, r, req, body, m, ri)
	if h.opts.Replay != nil {
		h.serveReplay(c, ri) // the recording stands in for the caches and the upstream
		return
	}
	if c.exactRead && c.serveExact(ri) {
		return
	}
	if h.opts.Semantic != nil && (m.semRead || m.semWrite) {
		// Only after an exact miss: a hit never pays for reading the messages.
		c.sq = h.semanticQuery(c.ns, h.cacheTarget(r), body, req, m.similarity)
	}
	if c.m.semRead && c.sq.ok && c.serveSemantic(ri) {
		return
	}
	h.serveMiss(c, ri)
}

// refuse answers a request zest rejects itself (a bad cache_control); it still counts as a
// request against the limits.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, req *cache.Request, ri *reqInfo, aerr *apiError) {
	if lim := h.opts.Limiter; lim != nil {
		d := lim.HitContext(r.Context(), h.limitIdentity(r, req, KeyHash(r)), 0)
		if !d.Allowed {
			h.rejected(w, ri, d)
			return
		}
		ri.limit = telemetry.RateLimitAllow
		d.WriteHeaders(w.Header())
	}
	ri.status = aerr.Status
	writeError(w, aerr)
}

// chatCall is one parsed chat request on its way through the caches and the upstream.
type chatCall struct {
	h    *Handler
	w    http.ResponseWriter
	r    *http.Request
	req  *cache.Request
	body []byte
	m    mode

	stream, includeUsage bool
	ns, key              string
	exactRead            bool
	sq                   semQuery

	limID string
	est   int

	// ri is the heap copy of the request's reqInfo that the miss and replay paths work on
	// (never the caller's own, which stays on the stack for hits); nil before them.
	ri *reqInfo
	// sent counts the upstream bodies over body's own bytes (the leader's flight's counter)
	// not yet closed by the RoundTripper; nil when none was made.
	sent *atomic.Int32
}

// bodyUpstream reports whether an upstream body over c.body's bytes is still open: a
// RoundTripper may read a body after RoundTrip returns (net/http's writes it on a goroutine
// of its own) and closes it when done.
func (c *chatCall) bodyUpstream() bool { return c.sent != nil && c.sent.Load() > 0 }

func (h *Handler) initChatCall(c *chatCall, w http.ResponseWriter, r *http.Request, req *cache.Request, body []byte, m mode, ri *reqInfo) {
	*c = chatCall{h: h, w: w, r: r, req: req, body: body, m: m}
	c.stream = string(req.Stream.Value) == "true"
	ri.stream = c.stream
	c.includeUsage = c.stream && wantsUsage(req.StreamOptions.Value)
	keyNS := h.keyNamespace(r)
	keyHash := ""
	if keyNS != "" {
		keyHash = keyNS[2:]
	}
	c.ns = h.namespace(req, keyNS)
	if len(keyHash) >= 8 {
		ri.tenant = keyHash[:8]
	}
	semOn := h.opts.Semantic != nil && (m.semRead || m.semWrite)
	if (h.opts.Cache != nil && (m.exactRead || m.exactWrite)) || semOn {
		c.key = h.cacheKey(r, c.ns, req)
	}
	c.exactRead = m.exactRead && h.opts.Cache != nil
	if h.opts.Limiter != nil {
		c.limID = h.limitIdentity(r, req, keyHash)
		c.est = h.estimate(req)
		ri.reserved = c.est
	}
}

// hitAllowed counts a hit against the limits; false means a 429 was written.
func (c *chatCall) hitAllowed(ri *reqInfo) (func(http.Header), bool) {
	lim := c.h.opts.Limiter
	if lim == nil {
		return nil, true
	}
	d := lim.HitContext(c.r.Context(), c.limID, c.est)
	if !d.Allowed {
		c.h.rejected(c.w, ri, d)
		return nil, false
	}
	ri.limit = telemetry.RateLimitAllow
	return d.WriteHeaders, true
}

// serveExact answers from the exact cache; false when it holds nothing for the request.
func (c *chatCall) serveExact(ri *reqInfo) bool {
	h := c.h
	_, span := h.childSpan(c.r.Context(), telemetry.SpanCacheLookup)
	e, ok := h.opts.Cache.GetContext(c.r.Context(), c.key)
	span.End()
	if !ok {
		return false
	}
	ri.cache, ri.layer, ri.key = "HIT", "exact", c.key
	setLimit, ok := c.hitAllowed(ri)
	if !ok {
		return true
	}
	if err := h.writeHit(c.w, e, c.stream, c.includeUsage, setLimit); err != nil {
		ri.cache, ri.layer, ri.key = "MISS", "", ""
		return false
	}
	ri.status, ri.inTok, ri.outTok = http.StatusOK, e.PromptTokens, e.CompletionTokens
	return true
}

// serveSemantic answers from the semantic cache; false when it has no match.
func (c *chatCall) serveSemantic(ri *reqInfo) bool {
	h := c.h
	ctx, span := h.childSpan(c.r.Context(), telemetry.SpanSemanticSearch)
	hit, ok := h.lookupSemantic(ctx, &c.sq)
	span.End()
	if !ok {
		return false
	}
	ri.cache, ri.layer, ri.key, ri.similarity = "HIT", "semantic", hit.ID, hit.Similarity
	setLimit, ok := c.hitAllowed(ri)
	if !ok {
		return true
	}
	if err := h.writeSemanticHit(c.w, hit, c.stream, c.includeUsage, setLimit); err != nil {
		ri.cache, ri.layer, ri.key, ri.similarity = "MISS", "", "", 0
		return false
	}
	ri.status = http.StatusOK
	ri.inTok, ri.outTok, _ = usageOf(hit.Value)
	return true
}

// serveMiss admits the request, joins or starts the upstream call, and relays its answer. The
// concurrency slot and token reservation are settled by defer, whatever way the request ends.
func (h *Handler) serveMiss(c *chatCall, outer *reqInfo) {
	// The miss path's closures keep reqInfo on the heap; a copy, written back on the way out,
	// keeps the caller's on the stack, so a hit allocates none.
	ri := new(reqInfo)
	*ri = *outer
	defer func() { *outer = *ri }()
	c.ri = ri
	m := c.m
	lim := h.opts.Limiter
	var limDecision ratelimit.Decision
	var ticket ratelimit.Ticket
	if lim != nil {
		limDecision, ticket = lim.AdmitContext(c.r.Context(), c.limID, c.est)
		if !limDecision.Allowed {
			h.rejected(c.w, ri, limDecision)
			return
		}
		ri.limit = telemetry.RateLimitAllow
	}

	ri.cache = "MISS"
	if !c.exactRead && !(m.semRead && c.sq.ok) {
		ri.cache = "BYPASS"
	}
	store := m.exactWrite && h.opts.Cache != nil
	semStore := m.semWrite && c.sq.ok
	var f *flight
	var cur *cursor
	leader := false
	// stopLeave, set while an inline call runs, stops the watch that leaves the flight for a
	// client hanging up; false means the watch has left it already.
	var stopLeave func() bool
	defer func() { // registered before the flight starts, so a panic there still settles
		if lim != nil {
			h.settle(ticket, f, leader, ri)
		}
		if f != nil && (stopLeave == nil || stopLeave()) {
			f.leave(cur)
		}
	}()
	var call *http.Request
	f, cur, leader, call = h.startFlight(c, ri, store, semStore)
	if !leader {
		ri.cache, ri.layer = "HIT", "coalesced"
	}
	p := c.participant(cur, leader, store || semStore, limDecision)
	var live *liveRelay
	if call != nil {
		// The call runs here, before the answer is written (or, streamed, while it is): a
		// client hanging up meanwhile leaves the flight as it would while waiting for it (the
		// last one out cancels it). A private call's context is the client's own: nothing to
		// watch.
		if f.group != nil {
			lf, lc := f, cur // copies: the closure keeps these two, not serveMiss's variables
			stopLeave = context.AfterFunc(c.r.Context(), func() { lf.leave(lc) })
		}
		var step func() bool
		if c.stream {
			live = &liveRelay{w: c.w, r: c.r, f: f, p: p}
			step = live.step
		}
		f.run(h, call, step)
		if stopLeave != nil {
			if !stopLeave() {
				// The client left while the call ran, and the watcher left the flight with its
				// cursor: this goroutine must not read the answer from that cursor any more.
				// (The deferred stopLeave() reports false again: no second leave.)
				ri.status = statusClientClosed
				return
			}
			stopLeave = nil // stopped: the deferred leave is this client's
		}
	}
	switch {
	case live != nil && live.left:
		ri.status = statusClientClosed
	case live != nil && live.rl != nil:
		ri.status = live.finish()
	default:
		ri.status = h.serveFlight(c.w, c.r, f, p)
	}
	if ri.status != http.StatusOK && !leader && ri.cache == "HIT" {
		ri.cache, ri.layer = "MISS", ""
	}
	if p, cpl, known := f.usage(); known {
		ri.inTok, ri.outTok = p, cpl
	}
}

// participant is how the client of c takes part in its flight: its cursor, the form it wants
// the answer in, and the headers zest adds to it (willStore: a clean answer is stored, under
// the key the client is told).
func (c *chatCall) participant(cur *cursor, leader, willStore bool, lim ratelimit.Decision) participant {
	ri, key := c.ri, c.key // the closure keeps these, not c: a hit's chatCall stays on the stack
	// The admission, for the limit headers: copied only with a limiter, so that a miss without
	// one keeps no Decision on the heap.
	var limits *ratelimit.Decision
	if c.h.opts.Limiter != nil {
		d := lim
		limits = &d
	}
	return participant{
		stream:       c.stream,
		includeUsage: c.includeUsage,
		follower:     !leader,
		cursor:       cur,
		status:       &ri.status,
		setHeaders: func(hd http.Header, clean bool) {
			if !leader && !clean {
				// A follower of a call that failed got what the upstream said: a miss.
				ri.cache, ri.layer = "MISS", ""
			}
			// One backing array for these values (as Header.Set, each key gets one value).
			vals := make([]string, 0, 4)
			set := func(k, v string) {
				vals = append(vals, v)
				hd[k] = vals[len(vals)-1 : len(vals) : len(vals)]
			}
			set("X-Cache-Status", ri.cache)
			if ri.layer != "" {
				set("X-Cache-Type", ri.layer)
				set("Age", "0")
			}
			if willStore && clean {
				ri.key = key
				set("X-Cache-Key", key)
			}
			if limits != nil {
				replaceLimitHeaders(hd, *limits)
			}
		},
	}
}

// startFlight joins a live identical call (as a follower) or starts the upstream call (as
// the leader), and returns the client's cursor in it. A refresh never joins: it wants a fresh
// answer. A leader gets its call back (inline) to run on its own goroutine: a client that does
// not stream is written to once the answer is complete, a streaming one as it arrives (live).
func (h *Handler) startFlight(c *chatCall, ri *reqInfo, store, semStore bool) (f *flight, cur *cursor, leader bool, inline *http.Request) {
	m := c.m
	fwd, _ := upstreamBody(c.body, c.req, !m.keepBody, c.stream && !c.includeUsage)
	ttl := h.opts.TTL
	if m.maxAge > 0 {
		ttl = m.maxAge
	}
	semStore = semStore && h.opts.Semantic != nil
	joinable := (store || semStore) && !h.opts.NoCoalesce && !m.refresh
	parent := context.WithoutCancel(c.r.Context()) // a call others may join outlives its client
	if !joinable {
		parent = c.r.Context() // a private call ends with its one client
	}
	f = newFlight(parent, h.opts.Timeout)
	f.expires = h.now().Add(ttl)
	f.maxBuffer = h.opts.MaxResponseBytes
	h.armStore(f, c, ri.model, store, semStore, ttl)
	leader, cur = true, f.cursors[0]
	if joinable {
		mine := f
		if f, cur, leader = h.flights.join(c.key, mine, h.now(), m.semRead); !leader {
			mine.cancel()
		}
	}
	if !leader {
		return f, cur, false, nil
	}
	f.model = ri.model
	h.armRecording(f, c, ttl)
	// Nobody joins a call that stores nothing: a plain answer then goes to its one plain
	// client as it came, without being checked for storing.
	f.wantResult = store || semStore || f.rec != nil || c.stream
	f.wantUsage = h.opts.Limiter != nil || ri.span != nil
	req := h.upstreamRequest(f.ctx, c.r, fwd)
	if bb, ok := req.Body.(*byteBody); ok && aliases(fwd, c.body) {
		bb.open, c.sent = &f.bodiesOpen, &f.bodiesOpen
		f.bodiesOpen.Add(1)
	}
	f.bg = h.bg
	return f, cur, true, req
}

// armStore gives a leader's flight what it does with a clean answer (a storePlan): store it in
// the exact cache before any client sees it end (done), then wait for the Redis tier's write
// and file it by meaning (after). The flight stays joinable until after returns, so an
// identical request finds it. The exact cache keeps every stored answer once: the semantic
// cache refers to it by key (an answer only filed by meaning is kept there as SemanticOnly,
// which exact reads skip).
func (h *Handler) armStore(f *flight, c *chatCall, model string, store, semStore bool, ttl time.Duration) {
	f.semStore = semStore
	keep := h.opts.Cache != nil && (store || semStore)
	waitRemote := keep && h.opts.Cache.HasRemote()
	if !keep && !semStore {
		return
	}
	// One allocation for the plan, where closures over its parts had cost three per miss.
	f.plan = &storePlan{h: h, key: c.key, ns: c.ns, model: model, ttl: ttl,
		store: store, semStore: semStore, keep: keep, waitRemote: waitRemote}
	if semStore {
		f.plan.sq = c.sq // copied only for the filing: an exact-only miss keeps none
	}
}

// storePlan is what a leader's flight does with a clean answer (see armStore).
type storePlan struct {
	h                                 *Handler
	key, ns, model                    string
	ttl                               time.Duration
	store, semStore, keep, waitRemote bool
	sq                                semQuery
}

// done stores the answer in the exact cache, when the plan keeps it there: before any client
// sees the flight finish.
func (p *storePlan) done(f *flight) {
	if !p.keep {
		return
	}
	now := p.h.now()
	prompt, completion := f.answerUsage()
	p.h.opts.Cache.Set(&cache.Entry{Key: p.key, Namespace: p.ns, Model: p.model, Body: f.result,
		Stored: now, Expires: now.Add(p.ttl), PromptTokens: prompt, CompletionTokens: completion,
		SemanticOnly: !p.store})
}

// hasAfter reports whether after has work: the Redis tier's write to wait for, or a filing.
func (p *storePlan) hasAfter() bool { return p != nil && (p.waitRemote || p.semStore) }

// after waits for the Redis tier's write and files the answer by meaning, once waiters have
// seen the flight finish.
func (p *storePlan) after(f *flight) {
	if p.waitRemote {
		p.h.opts.Cache.WaitRemote()
	}
	if p.semStore {
		var value []byte // kept by the exact cache under key
		if !p.keep {
			value = f.result
		}
		p.h.storeSemantic(p.sq, p.key, value, f.result, p.ttl)
	}
}

// settle gives back a request's concurrency slot and reconciles its token reservation with
// what the upstream call spent. It runs on every path out of serveMiss, panics included.
// f is nil when the flight never started (nothing was sent upstream: a refund).
func (h *Handler) settle(ticket ratelimit.Ticket, f *flight, leader bool, ri *reqInfo) {
	if f == nil {
		ticket.Done(0, true)
		return
	}
	p, c, known := f.usage()
	switch {
	case !leader:
		ticket.Done(0, true) // a coalesced follower cost the upstream nothing
	case known:
		ticket.Done(p+c, true)
		ri.reconciled = p + c
	case f.spentNothing():
		ticket.Done(0, true) // refused or unreachable: refund the reservation
	default:
		ticket.Done(0, false) // cut or unknown: the estimate stands
	}
}

// rejected writes a 429 and notes it.
func (h *Handler) rejected(w http.ResponseWriter, ri *reqInfo, d ratelimit.Decision) {
	rejectLimited(w, d)
	ri.status, ri.limit, ri.limitType = http.StatusTooManyRequests, telemetry.RateLimitReject, d.Reason
	if ri.cache != "" {
		ri.cache, ri.layer, ri.key, ri.similarity = "BYPASS", "", "", 0
	}
}

// upstreamRequest builds the upstream call for a chat request: same method, path under the
// upstream base, query and headers less hop-by-hop and zest's own, the given body.
func (h *Handler) upstreamRequest(ctx context.Context, r *http.Request, body []byte) *http.Request {
	var u *url.URL
	if in := r.URL; in.Path == "/v1"+chatPath && in.RawPath == "" && in.RawQuery == "" {
		// The common case, worked out once and shared: a RoundTripper never modifies the
		// request it is given, its URL included.
		u = h.chatURL
	} else {
		u = upstreamURL(h.upstream, r.URL)
	}
	// What http.NewRequestWithContext makes of a body of bytes, without parsing a URL (the one
	// given is already parsed) or making a header map only to replace it.
	out := &http.Request{Method: r.Method, URL: u, Host: strings.TrimSuffix(u.Host, ":"),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: make(http.Header, len(r.Header)+3),
		Body: http.NoBody, GetBody: noBody}
	if len(body) > 0 {
		bb := &byteBody{src: body}
		bb.Reset(body)
		out.Body, out.GetBody = bb, bb.rewound
	}
	*out = *out.WithContext(ctx) // in place: the copy WithContext makes stays on the stack
	for k, vv := range r.Header {
		if !upstreamDropped(k) {
			out.Header[k] = vv // shared, never modified: only ever replaced below
		}
	}
	for _, f := range r.Header["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = strings.TrimSpace(sf); sf != "" {
				out.Header.Del(sf)
			}
		}
	}
	out.ContentLength = int64(len(body))
	h.setUpstreamAuth(out.Header)
	fwd := make([]string, 2) // one backing array for X-Forwarded-Host and -For
	fwd[0] = r.Host
	out.Header["X-Forwarded-Host"] = fwd[0:1:1]
	if ip := ClientIP(r); ip != "" {
		if prior := httphdr.Get(r.Header, "X-Forwarded-For"); prior != "" {
			ip = prior + ", " + ip
		}
		fwd[1] = ip
		out.Header["X-Forwarded-For"] = fwd[1:2:2]
	}
	out.Header["X-Forwarded-Proto"] = forwardedHTTP // shared, never modified
	if r.TLS != nil {
		out.Header["X-Forwarded-Proto"] = forwardedHTTPS
	}
	if !h.tracing {
		// Without tracing of our own, the client's trace context passes through as it came.
		for _, k := range []string{"Traceparent", "Tracestate", "Baggage"} {
			if v := r.Header[k]; len(v) > 0 {
				out.Header[k] = v
			}
		}
	}
	return out
}

// byteBody is an upstream request body of bytes: a ReadCloser in one allocation.
type byteBody struct {
	bytes.Reader
	src []byte
	// open, when set, counts the bodies over src not yet closed (src is the client's buffer,
	// recycled once none is open); closed makes Close count once.
	open   *atomic.Int32
	closed atomic.Bool
}

func (b *byteBody) Close() error {
	if b.open != nil && b.closed.CompareAndSwap(false, true) {
		b.open.Add(-1)
	}
	return nil
}

// rewound is the request's GetBody: the same bytes from their start.
func (b *byteBody) rewound() (io.ReadCloser, error) {
	r := &byteBody{src: b.src, open: b.open}
	if r.open != nil {
		r.open.Add(1)
	}
	r.Reset(b.src)
	return r, nil
}

func noBody() (io.ReadCloser, error) { return http.NoBody, nil }

// The X-Forwarded-Proto values, one slice each for every upstream request.
var forwardedHTTP, forwardedHTTPS = []string{"http"}, []string{"https"}

// cacheBypass is every chat answer's X-Cache-Status until the caches say otherwise: one slice
// shared by all, never modified (a header set later replaces it; one added appends to a copy,
// as its capacity is its length).
var cacheBypass = []string{"BYPASS"}

// upstreamDropped names the client headers a chat call never takes upstream as they came:
// hop-by-hop ones, the encoding (zest reads the answer itself: package h1 asks for none, and
// net/http's Transport negotiates gzip itself and hands over plain bytes), zest's own cache directives, the length (of the edited body) and the trace context
// (zest's own, or passed through by upstreamRequest).
func upstreamDropped(canonicalKey string) bool {
	switch canonicalKey {
	case "Accept-Encoding", "Cache-Control", "X-Cache-Min-Similarity", "Content-Length",
		"Traceparent", "Tracestate", "Baggage":
		return true
	}
	return slices.Contains(hopByHop, canonicalKey)
}

// forwardBytes passes a request whose body was already read on to the upstream unchanged.
func (h *Handler) forwardBytes(w http.ResponseWriter, r *http.Request, body []byte) {
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil } // in memory
	r2.ContentLength = int64(len(body))
	r2, cancel := h.withTimeout(r2)
	defer cancel()
	h.rp.ServeHTTP(w, r2)
}
