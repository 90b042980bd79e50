package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/zest-proxy/zest/proxy/sse"
	"github.com/zest-proxy/zest/semantic"
)

// semanticStats counts what the semantic layer did, for /admin/stats and metrics.
type semanticStats struct {
	lookups, hits, shadowHits, errors, stores atomic.Uint64
}

// lookupSemantic asks the semantic cache. Failures fall through (fail open) and are counted.
// In shadow mode a hit is counted and logged but not returned.
// The prompt's embedding is kept in sq for the store that follows a miss.
func (h *Handler) lookupSemantic(ctx context.Context, sq *semQuery) (semantic.Hit, bool) {
	h.sem.lookups.Add(1)
	m := h.opts.Metrics
	if m != nil {
		m.SemanticLookups.Inc()
	}
	hit, ok, err := h.opts.Semantic.Lookup(ctx, sq.q)
	sq.q.Vector, sq.q.Signature, sq.q.Keys, sq.q.Words = hit.Vector, hit.Signature, hit.Keys, hit.Words
	if err != nil {
		h.sem.errors.Add(1)
		if m != nil {
			m.SemanticErrors.Inc()
		}
		h.logger.Warn("semantic lookup failed; going upstream", "error", err)
		return semantic.Hit{}, false
	}
	if !ok {
		return semantic.Hit{}, false
	}
	if hit.Value == nil {
		// The answer lives in the exact cache; gone from there (evicted, expired, purged),
		// the entry is stale.
		e, found := h.exactAnswer(ctx, hit.ID)
		if !found {
			h.opts.Semantic.Forget(hit.ID)
			return semantic.Hit{}, false
		}
		hit.Value = e
	}
	if h.opts.SemanticShadow {
		h.sem.shadowHits.Add(1)
		if m != nil {
			m.SemanticShadowHits.Inc()
		}
		h.logger.Info("semantic shadow hit (not served)", "similarity", hit.Similarity, "entry", hit.ID)
		return semantic.Hit{}, false
	}
	h.sem.hits.Add(1)
	if m != nil {
		m.SemanticHits.Inc()
	}
	return hit, true
}

// exactAnswer is the body the exact cache keeps under key for the semantic cache.
func (h *Handler) exactAnswer(ctx context.Context, key string) ([]byte, bool) {
	if h.opts.Cache == nil {
		return nil, false
	}
	e, ok := h.opts.Cache.GetAnyContext(ctx, key)
	if !ok {
		return nil, false
	}
	return e.Body, true
}

// storeSemantic files a clean answer under the request's prompt, unless it holds tool calls
// and those are not to be served semantically.
// value is what the semantic cache keeps: nil when the exact cache holds the answer under id.
func (h *Handler) storeSemantic(sq semQuery, id string, value, result []byte, ttl time.Duration) {
	if !h.opts.SemanticToolCalls && hasToolCalls(result) {
		return
	}
	ctx := context.Background()
	if h.opts.Semantic.MayBlock() { // a deadline only where there is something to wait for
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	if err := h.opts.Semantic.Store(ctx, sq.q, id, value, ttl); err != nil {
		h.sem.errors.Add(1)
		if m := h.opts.Metrics; m != nil {
			m.SemanticErrors.Inc()
		}
		h.logger.Warn("semantic store failed", "error", err)
		return
	}
	h.sem.stores.Add(1)
}

// hasToolCalls reports whether any choice of a chat.completion calls a tool.
func hasToolCalls(completion []byte) bool {
	if !mentionsToolCalls(completion) {
		return false
	}
	var v struct {
		Choices []struct {
			Message struct {
				ToolCalls    []json.RawMessage `json:"tool_calls"`
				FunctionCall json.RawMessage   `json:"function_call"`
			} `json:"message"`
		} `json:"choices"`
	}
	if json.Unmarshal(completion, &v) != nil {
		return true // unsure: do not serve it by meaning
	}
	for _, c := range v.Choices {
		if len(c.Message.ToolCalls) > 0 || (len(c.Message.FunctionCall) > 0 && string(c.Message.FunctionCall) != "null") {
			return true
		}
	}
	return false
}

// mentionsToolCalls reports whether b holds the member name "tool_calls" or "function_call".
// It stops at underscores, which an answer has far fewer of than the quotes bytes.Index
// would stop at (two bytes.Contains took 7k instructions on a 530-byte answer).
func mentionsToolCalls(b []byte) bool {
	for i := 0; ; i++ {
		j := bytes.IndexByte(b[i:], '_')
		if j < 0 {
			return false
		}
		i += j
		before, after := b[:i], b[i+1:]
		if bytes.HasSuffix(before, []byte(`"tool`)) && bytes.HasPrefix(after, []byte(`calls"`)) ||
			bytes.HasSuffix(before, []byte(`"function`)) && bytes.HasPrefix(after, []byte(`call"`)) {
			return true
		}
	}
}

// writeSemanticHit answers from a semantic hit, as JSON or replayed as SSE.
func (h *Handler) writeSemanticHit(w http.ResponseWriter, hit semantic.Hit, stream, includeUsage bool, setHeaders func(http.Header)) error {
	body := hit.Value
	if stream {
		var err error
		body, err = sse.AppendReplay(nil, hit.Value, sse.ReplayOptions{IncludeUsage: includeUsage})
		if err != nil {
			return err
		}
	}
	w.Header().Set("X-Cache-Similarity", strconv.FormatFloat(float64(hit.Similarity), 'f', 4, 32))
	h.writeCached(w, body, stream, "semantic", hit.ID, hit.Stored, setHeaders)
	return nil
}
