package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/zest-proxy/zest/bench/hdr"
	"github.com/zest-proxy/zest/bench/load"
	"github.com/zest-proxy/zest/bench/report"
	"github.com/zest-proxy/zest/replay"
)

// The load-test scenario records over replayRecordConns connections and replays over
// replayFactor times as many.
const (
	replayRecordConns = 2
	replayFactor      = 100
)

// replayWorkload is the load-test scenario's streamed workload: the mock holds prompt k's
// first event for ttft0 + k·step, then streams at tps tokens per second, so the recording
// holds a spread of times to first token.
type replayWorkload struct {
	prompts     int
	ttft0, step time.Duration
	tps         int
}

// newReplayWorkload is 15 prompts with upstream TTFTs of 40–180 ms, or 5 of 20–60 ms for
// -smoke (recorded in a fraction of a second). The counts are such that p50, p90 and p99 each
// fall inside one prompt's share of the requests (15: the 8th, 14th and 15th prompt; 5: the
// 3rd, 5th and 5th), not on the edge between two, where the slightly unequal mix of a timed
// replay would move a percentile by a whole step.
func newReplayWorkload(smoke bool) replayWorkload {
	if smoke {
		return replayWorkload{prompts: 5, ttft0: 20 * time.Millisecond, step: 10 * time.Millisecond, tps: 2000}
	}
	return replayWorkload{prompts: 15, ttft0: 40 * time.Millisecond, step: 10 * time.Millisecond, tps: 400}
}

// gen returns request i of s against host: prompt i mod prompts, with its pacing headers
// for the mock (zest forwards them while recording; they are not part of the cache key).
func (w replayWorkload) gen(s *scenario, host string) load.Gen {
	return func(i uint64, dst []byte) []byte {
		k := i % uint64(w.prompts)
		ttft := w.ttft0 + time.Duration(k)*w.step
		headers := []string{authHeader, "X-Mock-TTFT: " + ttft.String(), "X-Mock-TPS: " + strconv.Itoa(w.tps)}
		return load.BuildRequest(dst, "POST", host, "/v1/chat/completions", headers, s.body(k))
	}
}

// once is a closed loop that sends every prompt of w once over replayRecordConns
// connections, as the recording does.
func (w replayWorkload) once(s *scenario, addr string) load.Config {
	return load.Config{Gen: w.gen(s, addr), NewDoer: func() load.Doer { return &load.Conn{Addr: addr, Stream: true} },
		Conns: replayRecordConns, Duration: time.Minute, MaxRequests: uint64(w.prompts)}
}

// runReplay is the load-test scenario. zest -record in front of the paced mock takes the
// workload once over replayRecordConns connections (stopping it flushes the file); then a
// zest -replay of that file serves it (see replayRun) and the clients' time to first token is
// set against the recorded one.
func (e *env) runReplay(ctx context.Context, s *scenario, out *report.Scenario) {
	if e.zestSkip != "" {
		out.Skipped = e.zestSkip
		return
	}
	w := newReplayWorkload(e.o.smoke)
	file := filepath.Join(e.dir, "zest-replay.jsonl")
	recClient, recorded, err := e.recordWorkload(ctx, s, w, file)
	if err != nil {
		out.Skipped = err.Error()
		return
	}
	r, err := e.replayRun(ctx, s, w, file)
	if err != nil {
		out.Skipped = err.Error()
		return
	}
	res := r.high
	out.Open = phaseOf(res, 0)
	out.HitRate = hitRate(out.Open)
	out.UpstreamCalls = r.calls
	if res.Requests > 0 {
		out.UpstreamSaved = 1 - float64(max(r.calls, 0))/float64(res.Requests)
		out.ProxyCPUPerReq = report.Dur(r.cpu / time.Duration(res.Requests))
	}
	out.ProxyPeakRSS = r.rss
	rp := &report.Replay{Prompts: w.prompts, RecordConns: replayRecordConns, ReplayConns: r.conns, Speed: 1,
		Streams: res.FirstToken.Count(), Recorded: ttftOf(recorded), RecordClient: ttftOf(recClient),
		AtRecordConns: ttftOf(&r.low.FirstToken), Achieved: ttftOf(&res.FirstToken), UpstreamCalls: r.calls}
	rp.Ratio = rp.Achieved.Over(rp.Recorded)
	out.Replay = rp
	if r.calls < 0 {
		out.Notes = append(out.Notes, "the mock's counters could not be read: upstream calls in replay unknown")
	}
	out.Notes = append(out.Notes, fmt.Sprintf("zest config: `%s`; mock pacing per prompt k: X-Mock-TTFT %s + k·%s, X-Mock-TPS %d",
		oneLine(s.zestConfig), w.ttft0, w.step, w.tps))
	fmt.Fprintf(os.Stderr, "  %-16s TTFT p50/p90/p99 recorded %s/%s/%s, replayed @%d %s/%s/%s (×%.2f/%.2f/%.2f), %d streams, upstream calls %d\n",
		s.name, rp.Recorded.P50, rp.Recorded.P90, rp.Recorded.P99, r.conns, rp.Achieved.P50, rp.Achieved.P90, rp.Achieved.P99,
		rp.Ratio.P50, rp.Ratio.P90, rp.Ratio.P99, rp.Streams, r.calls)
}

// replayResult is what replayRun measured.
type replayResult struct {
	low, high *load.Result  // at the recorded concurrency, and at conns
	conns     int           // replayRecordConns × replayFactor
	calls     int64         // requests the mock answered meanwhile; -1 when its counters could not be read
	cpu       time.Duration // zest's CPU time over the high-concurrency phase
	rss       uint64        // zest's peak RSS
}

// replayRun starts zest -replay on file and replays the workload once at the recorded
// concurrency (the reference of replay's own fidelity), then over replayFactor times as many
// connections, opened beforehand, for the run's -duration. It counts the requests the mock
// answers while that zest runs, which must be none.
func (e *env) replayRun(ctx context.Context, s *scenario, w replayWorkload, file string) (*replayResult, error) {
	r := &replayResult{conns: replayRecordConns * replayFactor}
	before := e.mockStats(ctx)
	z, addr, err := e.startZest(ctx, s, "replay", "-replay", file)
	if err != nil {
		return nil, err
	}
	defer z.stop()
	if r.low, err = load.Run(ctx, w.once(s, addr)); err != nil {
		return nil, err
	}
	doers := warmConns(ctx, addr, w.gen(s, addr), r.conns)
	cpu0 := z.cpuTime()
	r.high, err = load.Run(ctx, load.Config{Gen: w.gen(s, addr), NewDoer: func() load.Doer { return <-doers },
		Conns: r.conns, Duration: e.o.duration, Progress: progress(s.name, "replay", e.o.duration)})
	if err != nil {
		return nil, err
	}
	r.cpu, r.rss = z.cpuTime()-cpu0, z.peakRSS()
	after := e.mockStats(ctx)
	r.calls = mockServed(after) - mockServed(before)
	if before.Requests == 0 || after.Requests == 0 {
		r.calls = -1 // each read counts itself, so a zero means it failed
	}
	return r, nil
}

// recordWorkload runs zest -record against the mock, sends every prompt of w once over
// replayRecordConns connections, stops zest and reads the recording back. It returns the
// clients' time to first token and the recorded one (the file's ttft_ms).
func (e *env) recordWorkload(ctx context.Context, s *scenario, w replayWorkload, file string) (client, recorded *hdr.Histogram, err error) {
	if err := os.Remove(file); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("recording: %w", err)
	}
	z, addr, err := e.startZest(ctx, s, "record", "-record", file)
	if err != nil {
		return nil, nil, err
	}
	res, err := load.Run(ctx, w.once(s, addr))
	z.stop() // a graceful stop closes, so flushes, the recording
	if err != nil {
		return nil, nil, err
	}
	if res.Status[200] != uint64(w.prompts) {
		return nil, nil, fmt.Errorf("recording: %d of %d streams answered 200 (statuses %v, first error %q)",
			res.Status[200], w.prompts, res.Status, res.FirstError)
	}
	recs, bad, err := replay.ReadFile(file)
	if err != nil {
		return nil, nil, fmt.Errorf("recording: %w", err)
	}
	if len(bad) > 0 || len(recs) != w.prompts {
		return nil, nil, fmt.Errorf("recording: %d records for %d prompts, %d unreadable lines", len(recs), w.prompts, len(bad))
	}
	recorded = new(hdr.Histogram)
	for _, r := range recs {
		if !r.Stream {
			return nil, nil, fmt.Errorf("recording: the answer of %s was not recorded as a stream", r.Key)
		}
		recorded.Record(time.Duration(r.TTFT * float64(time.Millisecond)))
	}
	return &res.FirstToken, recorded, nil
}

// warmConns opens n connections to addr at once and sends one request of gen on each (a
// load test's clients keep theirs open), then hands them out, one per load.Run worker.
func warmConns(ctx context.Context, addr string, gen load.Gen, n int) chan load.Doer {
	ch := make(chan load.Doer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c := &load.Conn{Addr: addr, Stream: true}
			c.Do(ctx, gen(uint64(i), nil))
			ch <- c
		})
	}
	wg.Wait()
	return ch
}

func ttftOf(h *hdr.Histogram) report.TTFT {
	return report.TTFT{P50: report.Dur(h.Quantile(0.5)), P90: report.Dur(h.Quantile(0.9)), P99: report.Dur(h.Quantile(0.99))}
}
