// Package replay records clean chat answers with their pacing to a JSON Lines file and reads
// them back: zest's load-test mode (record once against the real upstream, replay at the
// recorded speed without calling it) and the exact cache's warm start.
//
// The file holds one Record per line. It never holds a raw API key: a record's namespace is
// the proxy's tenant id ("k:<sha256 of the credential>", "u:<user>", "shared"). The package
// reads and writes only the files its callers name (cmd/zest).
package replay

import (
	"encoding/json"
	"math"
	"time"
)

// Record is one clean answer as it was served by the upstream, and how fast.
type Record struct {
	// Key is the exact-cache key of the request (a hex SHA-256; see cache.Key).
	Key string `json:"key"`
	// Namespace is the tenant the answer belongs to, already hashed ("k:<sha256>").
	Namespace string `json:"namespace"`
	Model     string `json:"model,omitempty"`
	// Request is the request body in canonical form (cache_control, stream, stream_options
	// and user left out), for inspection and for filing the answer by meaning on replay.
	Request json.RawMessage `json:"request,omitempty"`
	// Completion is the complete chat.completion JSON.
	Completion json.RawMessage `json:"completion"`
	// Stream says the upstream streamed the answer (SSE); Gaps is then meaningful.
	Stream bool `json:"stream"`
	// TTFB is the time from sending the request to the response headers, in milliseconds.
	TTFB float64 `json:"ttfb_ms"`
	// TTFT is the time to the first SSE event of a stream (the first body byte otherwise).
	TTFT float64 `json:"ttft_ms"`
	// Gaps are, for a stream, the milliseconds before each event after the first ([DONE]
	// included): event i arrived at TTFT + Gaps[0] + ... + Gaps[i-1].
	Gaps []float64 `json:"gaps_ms,omitempty"`
	// Total is the time to the end of the answer, in milliseconds.
	Total float64 `json:"total_ms"`
	// RecordedAt is when the answer was complete; TTL is how long the proxy would have kept it
	// (seconds). A cache preload keeps what is left of it.
	RecordedAt time.Time `json:"recorded_at"`
	TTL        int64     `json:"ttl_s"`
}

// Expires is when the answer's cache lifetime ends: RecordedAt + TTL.
func (r *Record) Expires() time.Time { return r.RecordedAt.Add(time.Duration(r.TTL) * time.Second) }

// Ms converts a duration to the file's milliseconds, to the microsecond.
func Ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// dur converts file milliseconds back to a duration.
func dur(ms float64) time.Duration {
	if ms <= 0 || math.IsNaN(ms) {
		return 0
	}
	return time.Duration(ms * 1e6)
}

// Timing is what the proxy measured of one upstream answer, given to SetTiming.
type Timing struct {
	TTFB, TTFT, Total time.Duration
	// Events are the arrival times of a stream's SSE events, from the request's start.
	Events []time.Duration
}

// SetTiming fills r's timing fields from t.
func (r *Record) SetTiming(t Timing) {
	r.TTFB, r.TTFT, r.Total = Ms(t.TTFB), Ms(t.TTFT), Ms(t.Total)
	r.Gaps = nil
	if len(t.Events) > 0 {
		r.TTFT = Ms(t.Events[0])
		r.Gaps = make([]float64, len(t.Events)-1)
		for i := 1; i < len(t.Events); i++ {
			r.Gaps[i-1] = Ms(t.Events[i] - t.Events[i-1])
		}
	}
}

// eventTimes are the recorded arrival times of the events (the whole answer's end for an
// answer that was not streamed).
func (r *Record) eventTimes() []time.Duration {
	if !r.Stream || r.TTFT <= 0 && len(r.Gaps) == 0 {
		return []time.Duration{max(dur(r.Total), dur(r.TTFT))}
	}
	out := make([]time.Duration, 1+len(r.Gaps))
	out[0] = dur(r.TTFT)
	for i, g := range r.Gaps {
		out[i+1] = out[i] + dur(g)
	}
	return out
}

// Schedule returns when a replay of r sends its response headers and each of its n events,
// as offsets from the request's start, with time divided by speed (speed <= 0 = all at once).
//
// The replayed stream is re-rendered from the completion, so it rarely has as many events as
// the recording: the recorded arrival curve is resampled, event i of n sitting at fraction
// i/(n-1) of the recorded events (linearly interpolated). The first event comes at the
// recorded TTFT and the last at the recorded end; stalls stay where they were. An answer that
// was not streamed sends every event at its recorded total time. Offsets never decrease.
func (r *Record) Schedule(n int, speed float64) (head time.Duration, events []time.Duration) {
	events = make([]time.Duration, n)
	if speed <= 0 || n == 0 {
		return 0, events
	}
	times := r.eventTimes()
	last := len(times) - 1
	for i := range events {
		var t time.Duration
		switch {
		case last == 0:
			t = times[0]
		case n == 1:
			t = times[last]
		default:
			p := float64(i) * float64(last) / float64(n-1)
			j := int(p)
			if j >= last {
				t = times[last]
			} else {
				t = times[j] + time.Duration((p-float64(j))*float64(times[j+1]-times[j]))
			}
		}
		events[i] = time.Duration(float64(t) / speed)
		if i > 0 && events[i] < events[i-1] {
			events[i] = events[i-1]
		}
	}
	head = time.Duration(float64(dur(r.TTFB)) / speed)
	if !r.Stream {
		head = events[0] // the headers of a whole answer come with it
	}
	if n > 0 && head > events[0] {
		head = events[0]
	}
	return head, events
}
