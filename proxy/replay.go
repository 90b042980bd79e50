package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"strconv"
	"time"

	"github.com/zest-proxy/zest/cache"
	"github.com/zest-proxy/zest/proxy/sse"
	"github.com/zest-proxy/zest/ratelimit"
	"github.com/zest-proxy/zest/replay"
	"github.com/zest-proxy/zest/telemetry"
)

// What replay mode does with a request that has no recording (ReplayOptions.Miss).
const (
	ReplayMissError     = "error"     // a 404 OpenAI error, code "not_recorded" (the default)
	ReplayMissSemantic  = "semantic"  // the nearest recording by meaning, when the semantic cache is on
	ReplayMissSynthetic = "synthetic" // a synthetic answer paced like a recorded one
)

// ReplayOptions configures replay mode: chat completions are answered from a recording, at
// its recorded pace, and never sent upstream. Rate limits, headers, metrics and logs work as
// for live answers (a replayed answer takes a concurrency slot while it plays and is charged
// its recorded usage). Other /v1/ paths are still forwarded.
type ReplayOptions struct {
	// Book is the loaded recording. Required.
	Book *replay.Book
	// Speed divides the recorded times: 1 replays at the recorded pace, 2 twice as fast;
	// 0 (the zero value) sends every answer at once.
	Speed float64
	// Miss is what a request without a recording gets: ReplayMissError (also for ""),
	// ReplayMissSemantic (falls back to the error when nothing is close enough) or
	// ReplayMissSynthetic.
	Miss string
	// Sleep waits d or until ctx ends (then returning its error). Default: a timer. Tests
	// inject one that advances a fake clock (Options.Now), so pacing is checked without
	// waiting.
	Sleep func(ctx context.Context, d time.Duration) error
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// initReplay checks the replay options and, for Miss = semantic, files every recorded answer
// in the semantic cache under its prompt.
func (h *Handler) initReplay() error {
	ro := h.opts.Replay
	if ro.Book == nil {
		return fmt.Errorf("proxy: replay without a recording")
	}
	switch ro.Miss {
	case "":
		ro.Miss = ReplayMissError
	case ReplayMissError, ReplayMissSemantic, ReplayMissSynthetic:
	default:
		return fmt.Errorf("proxy: replay miss %q: want error, semantic or synthetic", ro.Miss)
	}
	if ro.Sleep == nil {
		ro.Sleep = sleepCtx
	}
	if ro.Miss != ReplayMissSemantic || h.opts.Semantic == nil {
		return nil
	}
	var req cache.Request
	for _, rec := range ro.Book.Records() {
		req.Reset()
		if cache.ParseRequest(rec.Request, &req) != nil {
			continue
		}
		sq := h.semanticQuery(rec.Namespace, h.chatTarget, rec.Request, &req, 0)
		if sq.ok {
			h.storeSemantic(sq, rec.Key, rec.Completion, rec.Completion, MaxAgeLimit)
		}
	}
	return nil
}

// serveReplay answers a chat request in replay mode: the recording of its key, else what
// ReplayOptions.Miss says. It takes the place of the caches and the upstream call.
func (h *Handler) serveReplay(c *chatCall, outer *reqInfo) {
	ri := new(reqInfo) // see serveMiss
	*ri = *outer
	defer func() { *outer = *ri }()
	c.ri = ri
	ro := h.opts.Replay
	key := c.key
	if key == "" {
		key = h.cacheKey(c.r, c.ns, c.req)
	}
	var dec ratelimit.Decision
	var ticket ratelimit.Ticket
	spent, known := 0, true // what the ticket is settled with: a refund unless an answer plays
	if lim := h.opts.Limiter; lim != nil {
		dec, ticket = lim.AdmitContext(c.r.Context(), c.limID, c.est)
		if !dec.Allowed {
			h.rejected(c.w, ri, dec)
			return
		}
		defer func() { ticket.Done(spent, known) }()
		ri.limit = telemetry.RateLimitAllow
		dec.WriteHeaders(c.w.Header())
	}

	hdr := c.w.Header()
	rec, how := h.findReplay(c, key)
	var body []byte
	switch {
	case rec == nil:
		ri.cache = "MISS"
		hdr.Set("X-Cache-Status", "MISS")
		hdr.Set("X-Zest-Replay", "not_recorded")
		ri.status = http.StatusNotFound
		writeError(c.w, &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "not_recorded",
			Message: "zest is in replay mode and this request was not recorded (no recorded answer has its cache key " + key + ")."})
		return
	case how == ReplayMissSynthetic:
		body = syntheticAnswer(key, ri.model, rec.Completion, h.now())
		ri.cache, ri.layer = "MISS", "replay-synthetic"
	default:
		body = rec.Completion
		ri.cache, ri.layer, ri.key = "HIT", "replay", rec.Key
		hdr.Set("X-Cache-Type", "replay")
		hdr.Set("X-Cache-Key", rec.Key)
		hdr.Set("Age", strconv.FormatInt(max(int64(h.now().Sub(rec.RecordedAt)/time.Second), 0), 10))
	}
	hdr.Set("X-Cache-Status", ri.cache)
	hdr.Set("X-Zest-Replay", how)
	p, cpl, ok := usageOf(body)
	if ok {
		spent, ri.inTok, ri.outTok = p+cpl, p, cpl
	} else {
		known = false
	}
	ri.status = h.playRecord(c, rec, body, ro)
}

// findReplay finds the record that answers c: its own ("recorded"), the nearest by meaning
// ("semantic", with X-Cache-Similarity set), or one whose pacing a synthetic answer borrows
// ("synthetic"). Nil when the request gets the not-recorded error.
func (h *Handler) findReplay(c *chatCall, key string) (*replay.Record, string) {
	ro := h.opts.Replay
	if rec, ok := ro.Book.Lookup(key); ok {
		return rec, "recorded"
	}
	switch ro.Miss {
	case ReplayMissSemantic:
		if h.opts.Semantic != nil {
			c.sq = h.semanticQuery(c.ns, h.cacheTarget(c.r), c.body, c.req, c.m.similarity)
		}
		if h.opts.Semantic == nil || !c.sq.ok {
			return nil, ""
		}
		hit, ok := h.lookupSemantic(c.r.Context(), &c.sq)
		if !ok {
			return nil, ""
		}
		rec, ok := ro.Book.Lookup(hit.ID)
		if !ok {
			return nil, ""
		}
		c.ri.similarity = hit.Similarity
		c.w.Header().Set("X-Cache-Similarity", strconv.FormatFloat(float64(hit.Similarity), 'f', 4, 32))
		return rec, "semantic"
	case ReplayMissSynthetic:
		hs := fnv.New64a()
		hs.Write([]byte(key))
		if rec := ro.Book.Pick(hs.Sum64(), c.stream); rec != nil {
			return rec, "synthetic"
		}
	}
	return nil, ""
}

// playRecord writes body (a chat.completion) in the client's form at rec's recorded pace and
// returns the status written (499 when the client left first).
func (h *Handler) playRecord(c *chatCall, rec *replay.Record, body []byte, ro *ReplayOptions) int {
	w, ctx := c.w, c.r.Context()
	start := c.ri.start
	wait := func(at time.Duration) error {
		if d := at - h.now().Sub(start); d > 0 {
			return ro.Sleep(ctx, d)
		}
		return nil
	}
	hdr := w.Header()
	if !c.stream {
		_, at := rec.Schedule(1, ro.Speed)
		if err := wait(at[0]); err != nil {
			return statusClientClosed
		}
		hdr.Set("Content-Type", "application/json")
		hdr.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		w.Write(body)
		return http.StatusOK
	}
	stream, err := sse.AppendReplay(nil, body, sse.ReplayOptions{IncludeUsage: c.includeUsage})
	if err != nil {
		writeError(w, &apiError{Status: http.StatusInternalServerError, Type: "server_error", Code: "replay_error",
			Message: "zest could not replay the recorded answer: " + err.Error()})
		return http.StatusInternalServerError
	}
	events := splitEvents(stream)
	head, at := rec.Schedule(len(events), ro.Speed)
	if err := wait(head); err != nil {
		return statusClientClosed
	}
	hdr.Set("Content-Type", "text/event-stream; charset=utf-8")
	hdr.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	rc.Flush()
	for i, ev := range events {
		if err := wait(at[i]); err != nil {
			return statusClientClosed
		}
		if _, err := w.Write(ev); err != nil {
			return statusClientClosed
		}
		if err := rc.Flush(); err != nil {
			return statusClientClosed
		}
	}
	return http.StatusOK
}

// splitEvents cuts an SSE stream into its events, each with its blank line.
func splitEvents(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := bytes.Index(b, []byte("\n\n"))
		if i < 0 {
			return append(out, b)
		}
		out = append(out, b[:i+2])
		b = b[i+2:]
	}
	return out
}

// syntheticAnswer is the chat.completion replay mode invents for an unrecorded request: one
// assistant message saying so, with the usage of the record whose pacing it borrows.
func syntheticAnswer(key, model string, borrowed []byte, now time.Time) []byte {
	p, c, _ := usageOf(borrowed)
	if model == "" {
		model = "zest-replay"
	}
	v := map[string]any{
		"id": "chatcmpl-zest-synthetic-" + key[:min(12, len(key))], "object": "chat.completion",
		"created": now.Unix(), "model": model,
		"choices": []any{map[string]any{"index": 0, "finish_reason": "stop", "logprobs": nil,
			"message": map[string]any{"role": "assistant", "refusal": nil,
				"content": "This is a synthetic answer from zest in replay mode: this request was not recorded."}}},
		"usage": map[string]int{"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c},
	}
	b, _ := json.Marshal(v)
	return b
}
