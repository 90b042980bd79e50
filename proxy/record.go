package proxy

import (
	"bytes"
	"time"

	"github.com/zest-proxy/zest/replay"
)

// Recorder receives every clean upstream answer of a chat completion with its timing (record
// mode: zest -record). Record runs on the upstream call's goroutine after the clients have the
// answer; it must be safe for concurrent use and quick (replay.Writer buffers). An error is
// logged, never shown to a client.
type Recorder interface {
	Record(rec *replay.Record) error
}

// recording is the record-mode state of one upstream call: the record being built and the
// timing run notes as the answer arrives. Its methods do nothing on a nil recording, so the
// call path costs one nil check when not recording.
type recording struct {
	h      *Handler
	rec    replay.Record
	timing replay.Timing
	gotAny bool
}

// armRecording makes the flight f of c record its clean answer, when a Recorder is set.
func (h *Handler) armRecording(f *flight, c *chatCall, ttl time.Duration) {
	if h.opts.Recorder == nil {
		return
	}
	key := c.key
	if key == "" {
		key = h.cacheKey(c.r, c.ns, c.req)
	}
	f.rec = &recording{h: h, rec: replay.Record{Key: key, Namespace: c.ns, Model: c.ri.model,
		Request: bytes.Clone(c.req.Canonical), TTL: int64(ttl / time.Second)}}
}

// headers notes the arrival of the response headers.
func (r *recording) headers(sent time.Time) {
	if r != nil {
		r.timing.TTFB = time.Since(sent)
	}
}

// read notes bytes read from the body and returns their arrival time from sent.
func (r *recording) read(sent time.Time) time.Duration {
	at := time.Since(sent)
	if !r.gotAny {
		r.gotAny, r.timing.TTFT = true, at
	}
	return at
}

// end notes the end of the answer and the arrival of each SSE event (nil when not SSE).
func (r *recording) end(sent time.Time, events []time.Duration) {
	if r == nil {
		return
	}
	r.timing.Total = time.Since(sent)
	r.timing.Events = events
	r.rec.Stream = events != nil
}

// emit hands the clean answer to the Recorder.
func (r *recording) emit(result []byte) {
	if r == nil {
		return
	}
	r.rec.Completion = result
	r.rec.SetTiming(r.timing)
	r.rec.RecordedAt = r.h.now().UTC()
	if err := r.h.opts.Recorder.Record(&r.rec); err != nil {
		r.h.logger.Warn("replay: recording an answer failed", "error", err)
	}
}
