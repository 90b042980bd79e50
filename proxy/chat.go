package proxy

import (
	"bytes"
	"context"
	"io"
	"net/http"

	"github.com/zest-proxy/zest/cache"
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
	w.Header()["X-Cache-Status"] = []string{"BYPASS"}
	ri.cache = "BYPASS"
	buf, aerr := readBody(w, r, h.opts.MaxBodyBytes)
	if aerr != nil {
		ri.status = aerr.Status
		writeError(w, aerr)
		return
	}
	body := buf.Bytes()
	req := reqPool.Get().(*cache.Request)
	defer func() {
		reqPool.Put(req)
		putBuf(buf)
	}()
	req.Reset()

	if err := cache.ParseRequest(body, req); err != nil {
		// Not ours to judge: the upstream answers malformed JSON, and it is never cached.
		ri.cache = "BYPASS"
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
	ri.model = jsonString(req.Model.Value)
	var ccRaw []byte
	if req.CacheControl.Present && string(req.CacheControl.Value) != "null" {
		ccRaw = req.CacheControl.Value // "cache_control": null is absent (and still removed)
	}
	m, aerr := parseCacheControl(ccRaw, r.Header, h.opts.DefaultType, h.allowed)
	if aerr != nil {
		if lim := h.opts.Limiter; lim != nil {
			// A request zest refuses itself still counts as a request.
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
		return
	}
	stream := string(req.Stream.Value) == "true"
	ri.stream = stream
	includeUsage := stream && wantsUsage(req.StreamOptions.Value)
	keyNS := keyNamespace(r)
	keyHash := ""
	if keyNS != "" {
		keyHash = keyNS[2:]
	}
	ns := h.namespace(req, keyNS)
	if len(keyHash) >= 8 {
		ri.tenant = keyHash[:8]
	}

	semOn := h.opts.Semantic != nil && (m.semRead || m.semWrite)
	key := ""
	if (h.opts.Cache != nil && (m.exactRead || m.exactWrite)) || semOn {
		key = cache.Key(ns, h.base, chatPath, req.Canonical)
	}
	exactRead := m.exactRead && h.opts.Cache != nil

	lim := h.opts.Limiter
	var limID string
	var est int
	if lim != nil {
		limID = h.limitIdentity(r, req, keyHash)
		est = h.estimate(req)
		ri.reserved = est
	}
	// hitAllowed counts a hit against the limits; false means a 429 was written.
	hitAllowed := func() (func(http.Header), bool) {
		if lim == nil {
			return nil, true
		}
		d := lim.HitContext(r.Context(), limID, est)
		if !d.Allowed {
			h.rejected(w, ri, d)
			return nil, false
		}
		ri.limit = telemetry.RateLimitAllow
		return d.WriteHeaders, true
	}

	if exactRead {
		_, span := h.childSpan(r.Context(), telemetry.SpanCacheLookup)
		e, ok := h.opts.Cache.GetContext(r.Context(), key)
		span.End()
		if ok {
			ri.cache, ri.layer, ri.key = "HIT", "exact", key
			setLimit, ok := hitAllowed()
			if !ok {
				return
			}
			if err := h.writeHit(w, e, stream, includeUsage, setLimit); err == nil {
				ri.status, ri.inTok, ri.outTok = http.StatusOK, e.PromptTokens, e.CompletionTokens
				return
			}
		}
	}
	var sq semQuery
	if semOn {
		sq = h.semanticQuery(ns, body, req, m.similarity)
	}
	semRead := m.semRead && sq.ok
	if semRead {
		ctx, span := h.childSpan(r.Context(), telemetry.SpanSemanticSearch)
		hit, ok := h.lookupSemantic(ctx, &sq)
		span.End()
		if ok {
			ri.cache, ri.layer, ri.key, ri.similarity = "HIT", "semantic", hit.ID, hit.Similarity
			setLimit, ok := hitAllowed()
			if !ok {
				return
			}
			if err := h.writeSemanticHit(w, hit, stream, includeUsage, setLimit); err == nil {
				ri.status = http.StatusOK
				ri.inTok, ri.outTok, _ = usageOf(hit.Value)
				return
			}
		}
	}
	var limDecision ratelimit.Decision
	var ticket ratelimit.Ticket
	if lim != nil {
		limDecision, ticket = lim.AdmitContext(r.Context(), limID, est)
		if !limDecision.Allowed {
			h.rejected(w, ri, limDecision)
			return
		}
		ri.limit = telemetry.RateLimitAllow
	}

	ri.cache = "MISS"
	if !exactRead && !semRead {
		ri.cache = "BYPASS"
	}
	store := m.exactWrite && h.opts.Cache != nil
	semStore := m.semWrite && sq.ok
	fwd, _ := upstreamBody(body, req, !m.keepBody, stream && !includeUsage)
	ttl := h.opts.TTL
	if m.maxAge > 0 {
		ttl = m.maxAge
	}

	f := newFlight(context.WithoutCancel(r.Context()), h.opts.Timeout)
	f.expires = h.now().Add(ttl)
	if store {
		model := ri.model
		f.done = func(f *flight) {
			now := h.now()
			p, c, _ := f.usage()
			h.opts.Cache.Set(&cache.Entry{Key: key, Namespace: ns, Model: model, Body: f.result,
				Stored: now, Expires: now.Add(ttl), PromptTokens: p, CompletionTokens: c})
		}
	}
	// After the clients have their answer: make the exact entry visible (the flight stays
	// joinable until then), and file the answer by meaning.
	f.after = func(f *flight) {
		if store {
			h.opts.Cache.Wait()
		}
		if semStore {
			h.storeSemantic(sq, key, f.result, ttl)
		}
	}
	leader := true
	if (store || semStore) && !h.opts.NoCoalesce {
		mine := f
		if f, leader = h.flights.join(key, mine, h.now()); !leader {
			mine.cancel()
		}
	}
	if leader {
		f.model = ri.model
		h.background.Add(1)
		go func(req *http.Request) {
			defer h.background.Done()
			f.run(h, req)
		}(h.upstreamRequest(f.ctx, r, fwd))
	} else {
		ri.cache, ri.layer = "HIT", "coalesced"
	}
	if store || semStore {
		ri.key = key
	}
	defer f.leave()

	ri.status = h.serveFlight(w, r, f, participant{
		stream:       stream,
		includeUsage: includeUsage,
		setHeaders: func(hd http.Header) {
			hd.Set("X-Cache-Status", ri.cache)
			if ri.layer != "" {
				hd.Set("X-Cache-Type", ri.layer)
				hd.Set("Age", "0")
			}
			if ri.key != "" {
				hd.Set("X-Cache-Key", ri.key)
			}
			if lim != nil {
				replaceLimitHeaders(hd, limDecision)
			}
		},
	})
	p, c, known := f.usage()
	if known {
		ri.inTok, ri.outTok = p, c
	}
	if lim != nil {
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
	u := *h.upstream
	u.Path = upstreamPath(h.upstream, r.URL.Path)
	u.RawPath = ""
	u.RawQuery = r.URL.RawQuery
	out, _ := http.NewRequestWithContext(ctx, r.Method, u.String(), bytes.NewReader(body))
	copyHeader(out.Header, r.Header)
	removeHopByHop(out.Header)
	for _, k := range []string{"Accept-Encoding", "Cache-Control", "X-Cache-Min-Similarity", "Content-Length",
		"Traceparent", "Tracestate", "Baggage"} {
		out.Header.Del(k) // the transport negotiates gzip itself and hands us plain bytes
	}
	out.ContentLength = int64(len(body))
	if h.opts.UpstreamAPIKey != "" {
		out.Header.Set("Authorization", "Bearer "+h.opts.UpstreamAPIKey)
	}
	if ip := ClientIP(r); ip != "" {
		if prior := r.Header.Get("X-Forwarded-For"); prior != "" {
			ip = prior + ", " + ip
		}
		out.Header.Set("X-Forwarded-For", ip)
	}
	out.Header.Set("X-Forwarded-Host", r.Host)
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	out.Header.Set("X-Forwarded-Proto", proto)
	if !h.tracing {
		// Without tracing of our own, the client's trace context passes through as it came.
		for _, k := range []string{"Traceparent", "Tracestate", "Baggage"} {
			if v := r.Header.Values(k); len(v) > 0 {
				out.Header[k] = v
			}
		}
	}
	return out
}

// forwardBytes passes a request whose body was already read on to the upstream unchanged.
func (h *Handler) forwardBytes(w http.ResponseWriter, r *http.Request, body []byte) {
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	r2, cancel := h.withTimeout(r2)
	defer cancel()
	h.rp.ServeHTTP(w, r2)
}
