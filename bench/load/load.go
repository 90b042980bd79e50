// Package load drives HTTP load at a fixed arrival rate (open loop) or as
// fast as a fixed number of connections allow (closed loop), and records
// latencies in hdr histograms.
//
// Open loop avoids coordinated omission the way wrk2 does: request i is
// scheduled at start + i/rate whatever happened before, a free worker takes
// the next scheduled request (sleeping until its time if early), and latency
// is measured from the scheduled time, so a stall in the target shows up as
// queueing delay in every request that should have been sent during it.
// Service time (from the actual send) is recorded too.
package load

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zest-proxy/zest/bench/hdr"
)

// Gen appends the raw HTTP request number i to dst and returns it. It is
// called concurrently from several workers.
type Gen func(i uint64, dst []byte) []byte

// Clock is the driver's time source; tests use a fake one.
type Clock interface {
	Now() time.Time
	// SleepUntil blocks until t or until ctx is done.
	SleepUntil(ctx context.Context, t time.Time)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) SleepUntil(ctx context.Context, t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-ctx.Done():
	}
}

// Config describes one load run.
type Config struct {
	// Gen produces the requests. Required.
	Gen Gen
	// NewDoer returns the client for one worker. Required; see Conn.
	NewDoer func() Doer
	// Rate is the open-loop arrival rate in requests per second. Zero means
	// closed loop: every worker sends its next request as soon as the last
	// one finished.
	Rate float64
	// Conns is the number of workers, each with its own connection. Zero means 1.
	Conns int
	// Duration bounds the run: no request is scheduled (or, closed loop,
	// started) after it. Required.
	Duration time.Duration
	// MaxRequests caps the number of requests. Zero means 10 million.
	MaxRequests uint64
	// Clock is the time source. Nil means the real clock.
	Clock Clock
	// Progress, when set, is called about once a second from another
	// goroutine with the counts so far.
	Progress func(Progress)
}

// Progress is a running count, reported while a run goes on.
type Progress struct {
	Elapsed time.Duration
	Sent    uint64
	Done    uint64
	Errors  uint64
}

// Result is what a run measured.
type Result struct {
	Latency     hdr.Histogram     // from scheduled time (open loop) or send (closed loop), responses only
	Service     hdr.Histogram     // from the actual send, responses only
	FirstToken  hdr.Histogram     // streams: first content delta, measured like Latency
	Requests    uint64            // requests sent
	Responses   uint64            // requests that got a whole response
	Errors      uint64            // transport and protocol failures
	Status      map[int]uint64    // responses by status
	Cache       map[string]uint64 // responses by X-Cache-Status, "+type" appended when X-Cache-Type is set
	RetryAfter  uint64            // 429s carrying Retry-After
	Elapsed     time.Duration     // from start to the last response
	OKPerSecond []uint64          // 2xx responses completed in each second of the run
	FirstError  string            // the first transport error, for the report
}

// Throughput returns responses per second over the run.
func (r *Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Responses) / r.Elapsed.Seconds()
}

// worker holds one goroutine's private counts, merged at the end.
type worker struct {
	res Result
}

// Run executes one load run and returns its measurements. It returns an
// error only for a bad Config; failed requests are counted in the Result.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Gen == nil || cfg.NewDoer == nil || cfg.Duration <= 0 {
		return nil, errors.New("load: Gen, NewDoer and Duration are required")
	}
	if cfg.Rate < 0 {
		return nil, fmt.Errorf("load: negative rate %v", cfg.Rate)
	}
	conns := max(cfg.Conns, 1)
	maxReq := cfg.MaxRequests
	if maxReq == 0 {
		maxReq = 10_000_000
	}
	clock := cfg.Clock
	if clock == nil {
		clock = realClock{}
	}
	start := clock.Now()
	end := start.Add(cfg.Duration)
	var next, sent, done, failed atomic.Uint64

	stopProgress := make(chan struct{})
	var pwg sync.WaitGroup
	if cfg.Progress != nil {
		pwg.Go(func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-stopProgress:
					return
				case <-t.C:
					cfg.Progress(Progress{Elapsed: clock.Now().Sub(start), Sent: sent.Load(), Done: done.Load(), Errors: failed.Load()})
				}
			}
		})
	}

	seconds := int(cfg.Duration/time.Second) + 12 // room for stragglers
	workers := make([]*worker, conns)
	var wg sync.WaitGroup
	for w := range workers {
		wk := &worker{res: Result{Status: map[int]uint64{}, Cache: map[string]uint64{}, OKPerSecond: make([]uint64, seconds)}}
		workers[w] = wk
		wg.Go(func() {
			d := cfg.NewDoer()
			defer d.Close()
			var buf []byte
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= maxReq {
					return
				}
				var sched time.Time
				if cfg.Rate > 0 {
					sched = start.Add(time.Duration(float64(i) / cfg.Rate * float64(time.Second)))
					if !sched.Before(end) {
						return
					}
					clock.SleepUntil(ctx, sched)
					if ctx.Err() != nil {
						return
					}
				}
				buf = cfg.Gen(i, buf[:0])
				sendAt := clock.Now()
				if cfg.Rate == 0 {
					if !sendAt.Before(end) {
						return
					}
					sched = sendAt
				}
				sent.Add(1)
				out := d.Do(ctx, buf)
				fin := clock.Now()
				wk.record(out, sched, sendAt, fin, start)
				done.Add(1)
				if out.Err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	close(stopProgress)
	pwg.Wait()

	res := &Result{Status: map[int]uint64{}, Cache: map[string]uint64{}, OKPerSecond: make([]uint64, seconds)}
	var last time.Duration
	for _, wk := range workers {
		r := &wk.res
		res.Latency.Merge(&r.Latency)
		res.Service.Merge(&r.Service)
		res.FirstToken.Merge(&r.FirstToken)
		res.Requests += r.Requests
		res.Responses += r.Responses
		res.Errors += r.Errors
		res.RetryAfter += r.RetryAfter
		for k, v := range r.Status {
			res.Status[k] += v
		}
		for k, v := range r.Cache {
			res.Cache[k] += v
		}
		for s, v := range r.OKPerSecond {
			res.OKPerSecond[s] += v
		}
		if res.FirstError == "" {
			res.FirstError = r.FirstError
		}
		last = max(last, r.Elapsed)
	}
	res.Elapsed = last
	// Trim the empty tail of the timeline.
	n := len(res.OKPerSecond)
	for n > 0 && res.OKPerSecond[n-1] == 0 {
		n--
	}
	res.OKPerSecond = res.OKPerSecond[:n]
	return res, nil
}

// record adds one outcome to the worker's private result.
func (w *worker) record(out Outcome, sched, sendAt, fin, start time.Time) {
	r := &w.res
	r.Requests++
	r.Elapsed = max(r.Elapsed, fin.Sub(start))
	if out.Err != nil {
		r.Errors++
		if r.FirstError == "" {
			r.FirstError = out.Err.Error()
		}
		return
	}
	r.Responses++
	r.Latency.Record(fin.Sub(sched))
	r.Service.Record(fin.Sub(sendAt))
	if out.FirstToken > 0 {
		r.FirstToken.Record(sendAt.Sub(sched) + out.FirstToken)
	}
	r.Status[out.Status]++
	if out.CacheStatus != "" {
		k := out.CacheStatus
		if out.CacheType != "" {
			k += "+" + out.CacheType
		}
		r.Cache[k]++
	}
	if out.RetryAfter && out.Status == 429 {
		r.RetryAfter++
	}
	if out.Status >= 200 && out.Status < 300 {
		if s := int(fin.Sub(start) / time.Second); s >= 0 && s < len(r.OKPerSecond) {
			r.OKPerSecond[s]++
		}
	}
}
