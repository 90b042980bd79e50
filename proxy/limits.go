package proxy

import (
	"net/http"

	"github.com/zest-proxy/zest/cache"
	"github.com/zest-proxy/zest/ratelimit"
	"github.com/zest-proxy/zest/telemetry"
)

// limitIdentity is the rate-limit bucket of a request under Options.RateLimitKey: the hashed
// key, the body's user, or the client IP. A request without the chosen identity falls back to
// the next one (user → key → ip), so anonymous clients never share one bucket.
func (h *Handler) limitIdentity(r *http.Request, req *cache.Request, keyHash string) string {
	switch h.opts.RateLimitKey {
	case "ip":
		return h.clientIP(r)
	case "user":
		if req != nil {
			if u := jsonString(req.User.Value); u != "" {
				return u
			}
		}
	}
	if keyHash != "" {
		return keyHash
	}
	return h.clientIP(r)
}

// reject writes a 429 for a rate-limit decision, in OpenAI's envelope.
func rejectLimited(w http.ResponseWriter, d ratelimit.Decision) {
	d.WriteHeaders(w.Header())
	typ := d.Reason
	if typ == ratelimit.ReasonConcurrency {
		typ = ratelimit.ReasonRequests
	}
	writeError(w, &apiError{Status: http.StatusTooManyRequests, Type: typ, Code: "rate_limit_exceeded", Message: d.Message()})
}

// estimate is the request's token reservation: prompt tokens counted offline plus its output cap.
// It is computed only when a token limit is configured.
func (h *Handler) estimate(req *cache.Request) int {
	if !h.countTokens {
		return 0
	}
	ms := parseMessages(req.Messages.Value)
	return ratelimit.EstimateTokens(jsonString(req.Model.Value), promptTexts(ms), maxOutput(req, h.opts.DefaultMaxTokens))
}

// limitHeaderNames are the response headers a rate-limit decision writes.
var limitHeaderNames = []string{
	"X-Ratelimit-Limit-Requests", "X-Ratelimit-Remaining-Requests", "X-Ratelimit-Reset-Requests",
	"X-Ratelimit-Limit-Tokens", "X-Ratelimit-Remaining-Tokens", "X-Ratelimit-Reset-Tokens",
	"Ratelimit-Policy", "Ratelimit",
}

// replaceLimitHeaders drops the upstream's rate-limit headers and writes zest's: a client sees
// one consistent set, the limits it is actually held to.
func replaceLimitHeaders(h http.Header, d ratelimit.Decision) {
	for _, k := range limitHeaderNames {
		h.Del(k)
	}
	d.WriteHeaders(h)
}

// admitPassThrough applies the request limit to a request forwarded unchanged (no tokens are
// counted). On a rejection it writes the 429 and reports false; otherwise the caller runs
// release when the request is done. zest's limit headers replace the upstream's own.
func (h *Handler) admitPassThrough(sw *statusWriter, r *http.Request, ri *reqInfo) (release func(), ok bool) {
	lim := h.opts.Limiter
	if lim == nil {
		return func() {}, true
	}
	d, ticket := lim.AdmitContext(r.Context(), h.limitIdentity(r, nil, KeyHash(r)), 0)
	if !d.Allowed {
		h.rejected(sw, ri, d)
		return nil, false
	}
	ri.limit = telemetry.RateLimitAllow
	sw.before = func(hd http.Header) { replaceLimitHeaders(hd, d) }
	return func() { ticket.Done(0, false) }, true
}
