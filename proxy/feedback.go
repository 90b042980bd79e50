package proxy

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/zest-proxy/zest/cache"
)

// feedbackPath is where a client reports a wrong cached answer.
const feedbackPath = "/v1/cache/feedback"

// maxFeedbackBody bounds a feedback request body (a key and a short reason).
const maxFeedbackBody = 64 << 10

// maxReasonLog is how much of a reason the log keeps.
const maxReasonLog = 200

// feedbackStats counts reports, for /admin/stats.
type feedbackStats struct {
	removed, notFound atomic.Uint64
}

// FeedbackStats is the "feedback" member of GET /admin/stats: client reports of a wrong cached
// answer that removed an entry, and reports that named no entry of the caller's tenant.
type FeedbackStats struct {
	Removed  uint64 `json:"removed"`
	NotFound uint64 `json:"not_found"`
}

// feedbackRequest is the body of POST /v1/cache/feedback. User is read only when
// cache.namespace = "user", as for a chat request.
type feedbackRequest struct {
	CacheKey string          `json:"cache_key"`
	Reason   string          `json:"reason"`
	User     json.RawMessage `json:"user"`
}

// FeedbackResult is the answer to a successful report.
type FeedbackResult struct {
	CacheKey string `json:"cache_key"`
	Exact    bool   `json:"exact_removed"`
	Semantic bool   `json:"semantic_removed"`
}

// serveFeedback answers POST /v1/cache/feedback: {"cache_key": "<X-Cache-Key>", "reason": "..."}
// (or the key in an X-Cache-Key header). Only the tenant (namespace) the entry belongs to may
// report it; for anyone else the answer is the same 404 as for a key that never existed. The
// entry leaves the exact and the semantic cache, and the semantic cache refuses the (query,
// stored prompt) pairs it was served for from then on.
func (h *Handler) serveFeedback(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Type: "invalid_request_error",
			Message: r.Method + " is not allowed on " + feedbackPath + "; use POST."})
		return
	}
	fb, e := readFeedback(w, r)
	if e != nil {
		writeError(w, e)
		return
	}
	var req cache.Request
	req.User.Value = fb.User
	ns := h.namespace(&req, h.keyNamespace(r))
	res := FeedbackResult{CacheKey: fb.CacheKey}
	ctx := r.Context()
	if c := h.opts.Cache; c != nil {
		// Through the Redis tier too: the entry may have been stored and served by another replica.
		if entry, ok := c.GetAnyContext(ctx, fb.CacheKey); ok && entry.Namespace == ns {
			res.Exact = c.Delete(fb.CacheKey)
		}
	}
	if s := h.opts.Semantic; s != nil {
		res.Semantic = s.Report(ctx, ns, fb.CacheKey)
		if !res.Semantic && res.Exact {
			s.Delete(fb.CacheKey) // a semantic entry another replica holds but never served
		}
	}
	m := h.opts.Metrics
	if !res.Exact && !res.Semantic {
		h.feedback.notFound.Add(1)
		if m != nil {
			m.CacheFeedback.WithLabelValues("not_found").Inc()
		}
		writeError(w, &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "cache_entry_not_found",
			Param: "cache_key", Message: "No cached answer with this cache_key for your API key (it may have expired or been removed)."})
		return
	}
	h.feedback.removed.Add(1)
	if m != nil {
		m.CacheFeedback.WithLabelValues("removed").Inc()
	}
	h.logger.Info("cache feedback: entry removed", "entry", shortID(fb.CacheKey), "exact", res.Exact,
		"semantic", res.Semantic, "reason", truncate(fb.Reason, maxReasonLog))
	writeJSON(w, http.StatusOK, res)
}

// readFeedback reads and checks the report. The key may come in the body or the X-Cache-Key
// header; given in both, they must agree.
func readFeedback(w http.ResponseWriter, r *http.Request) (feedbackRequest, *apiError) {
	var fb feedbackRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFeedbackBody))
	if err != nil {
		if isMaxBytes(err) {
			return fb, tooLarge(maxFeedbackBody)
		}
		return fb, badRequest("", "Could not read the request body.")
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := json.Unmarshal(body, &fb); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				return fb, badRequest(te.Field, "The field "+te.Field+" has the wrong type.")
			}
			return fb, badRequest("", "The body must be a JSON object such as {\"cache_key\": \"...\", \"reason\": \"...\"}.")
		}
	}
	header := r.Header.Get("X-Cache-Key")
	switch {
	case fb.CacheKey == "" && header == "":
		return fb, badRequest("cache_key", "Name the answer: {\"cache_key\": \"<the X-Cache-Key response header>\"} or an X-Cache-Key request header.")
	case fb.CacheKey == "":
		fb.CacheKey = header
	case header != "" && header != fb.CacheKey:
		return fb, badRequest("cache_key", "The cache_key in the body and the X-Cache-Key header differ.")
	}
	return fb, nil
}

// shortID is the first 12 characters of an entry id, enough to find it in logs.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// truncate cuts s to at most n bytes at a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
