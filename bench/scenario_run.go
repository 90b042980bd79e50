package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/zest-proxy/zest/bench/load"
	"github.com/zest-proxy/zest/bench/report"
)

// phaseStride separates the request numbers of a scenario's phases, so a
// "unique prompt" is never repeated across warm-up, open and closed loops.
const phaseStride = 1 << 24

// The phases' places, in phaseStrides: the open loop at 0, the closed-loop points at 1 to
// maxSweep+1 (-sweep's concurrencies, then -conns), the warm-up at 9, the cache fill of
// zest-miss-full from 10, the alternating windows from pairBase.
const maxSweep = 7

// limitMinDuration is the shortest open loop of the rate-limit scenario
// outside -smoke: long enough for whole seconds of steady state after the
// initial bucket drains.
const limitMinDuration = 4 * time.Second

// runScenario runs one scenario's warm-up, open loop and closed loop(s).
func (e *env) runScenario(ctx context.Context, s *scenario) (out report.Scenario) {
	out = report.Scenario{Name: s.name, Title: s.title, Baseline: s.baseline, Stream: s.stream}
	if s.replay {
		e.runReplay(ctx, s, &out)
		return out
	}
	if s.limitRPM > 0 {
		if e.o.smoke {
			s.limitRPM = 60 // a bucket the smoke run's few requests can drain
		}
		s.zestConfig = fmt.Sprintf("[ratelimit]\nrequests_per_minute = %d\n", int(s.limitRPM))
	}
	var addr string
	var server measured
	addrs := func() []string { return []string{addr} }
	switch s.target {
	case tMock, tRevProxy, tGoMem, tNginxPass, tNginxCache:
		if addr, server = e.referenceAt(s.target); addr == "" {
			out.Skipped = e.nginxSkip // the only reference that may be missing
			return out
		}
	case tZest:
		if e.zestSkip != "" {
			out.Skipped = e.zestSkip
			return out
		}
		if why := e.redisSkipOf(s); why != "" {
			out.Skipped = why
			return out
		}
		if s.slow && e.o.smoke && e.o.names == nil {
			out.Skipped = "not run with -smoke (name it in -scenarios to run it)"
			return out
		}
		zs, err := e.startZests(ctx, s)
		if err != nil {
			out.Skipped = err.Error()
			return out
		}
		defer zs.stop()
		loaded := zs.loaded(s)
		addr, server, addrs = loaded.addrs[0], loaded, func() []string { return loaded.addrs }
		if s.zestConfig != "" {
			out.Notes = append(out.Notes, fmt.Sprintf("zest config: `%s`", oneLine(s.zestConfig)))
		}
		if s.prepare != nil {
			if err := s.prepare(ctx, e, s, zs); err != nil {
				out.Skipped = err.Error()
				return out
			}
		}
		defer func() { out.Notes = append(out.Notes, zs.redisNotes(ctx)...) }()
	}
	o := e.o
	newDoer := roundRobin(addrs(), s.stream)

	// Warm: the prompts a hit scenario needs, then connections and the
	// server's code paths (not for the limiter or the Zipf mix, whose first
	// seconds are the point).
	out.Notes = append(out.Notes, e.warm(ctx, s, addr)...)
	if s.limitRPM == 0 && s.name != "zest-zipf" && !s.cold {
		_, _ = load.Run(ctx, load.Config{Gen: s.gen(addr, 9*phaseStride), NewDoer: newDoer, Conns: o.openConns,
			Duration: min(o.duration/4, 300*time.Millisecond)})
	}

	var cpu0 time.Duration
	if server != nil {
		cpu0 = server.cpuTime()
	}
	before := e.mockStats(ctx)
	rate := o.rate
	if s.rate > 0 && !o.smoke {
		rate = s.rate
	}
	openFor := o.duration
	if s.limitRPM > 0 && !o.smoke {
		openFor = max(openFor, limitMinDuration)
	}
	res, err := load.Run(ctx, load.Config{
		Gen: s.gen(addr, 0), NewDoer: newDoer, Rate: rate, Conns: o.openConns, Duration: openFor,
		Progress: progress(s.name, "open", openFor),
	})
	if err != nil {
		out.Skipped = err.Error()
		return out
	}
	after := e.mockStats(ctx)
	out.Open = phaseOf(res, rate)
	out.HitRate = hitRate(out.Open)
	out.UpstreamCalls = upstreamCalls(after) - upstreamCalls(before)
	if res.Requests > 0 && s.target != tMock {
		out.UpstreamSaved = 1 - float64(out.UpstreamCalls)/float64(res.Requests)
	}
	if s.limitRPM > 0 {
		out.Limit = limitOf(out.Open, s.limitRPM, rate, max(openFor, res.Elapsed), res.RetryAfter)
	}
	requests := res.Requests

	if !s.noClosed {
		conns := []int{o.conns}
		if s.sweep {
			conns = o.sweep
		}
		d := max(o.duration/4, 200*time.Millisecond)
		for k, c := range conns {
			r, err := load.Run(ctx, load.Config{
				Gen: s.gen(addr, uint64(k+1)*phaseStride), NewDoer: newDoer, Conns: c, Duration: d, MaxRequests: s.maxClosed,
				Progress: progress(s.name, fmt.Sprintf("closed@%d", c), d),
			})
			if err != nil || ctx.Err() != nil {
				break
			}
			requests += r.Requests
			out.Sweep = append(out.Sweep, report.SweepPoint{Conns: c, RPS: r.Throughput(),
				P50: report.Dur(r.Latency.Quantile(0.5)), P99: report.Dur(r.Latency.Quantile(0.99)), Errors: r.Errors})
			if c == o.conns {
				out.MaxRPS = r.Throughput()
			}
		}
	}
	if server != nil && requests > 0 {
		out.ProxyCPUPerReq = report.Dur((server.cpuTime() - cpu0) / time.Duration(requests))
		out.ProxyPeakRSS = server.peakRSS()
	}
	if s.target == tZest && !s.noClosed && ctx.Err() == nil {
		var notes []string
		out.Paired, notes = e.pairUp(ctx, s, addr, newDoer)
		out.Notes = append(out.Notes, notes...)
		for _, p := range out.Paired {
			fmt.Fprintf(os.Stderr, "  %-16s vs %s in alternating windows: %.2f× (pairs %.2f)\n", s.name, p.Ref, p.Median(), p.Ratios)
		}
	}
	fmt.Fprintf(os.Stderr, "  %-16s p50 %s p99 %s p99.9 %s, %s req/s closed, cache %v, status %v\n",
		s.name, out.Open.P50, out.Open.P99, out.Open.P999, fmt.Sprintf("%.0f", out.MaxRPS), out.Open.Cache, out.Open.Status)
	return out
}

// referenceAt returns the address of the reference server a scenario of target t talks to (the
// mock, ReverseProxy, gomem or nginx) and the process whose CPU it measures (nil for the mock);
// "" when that server is not running (nginx missing or not needed).
func (e *env) referenceAt(t target) (string, measured) {
	switch t {
	case tMock:
		return e.mockAddr, nil
	case tRevProxy:
		return e.revAddr, e.rev
	case tGoMem:
		return e.memAddr, e.gomem
	case tNginxPass, tNginxCache:
		if e.nginx == nil {
			return "", nil
		}
		if t == tNginxCache {
			return e.nginxCache, e.nginx
		}
		return e.nginxPass, e.nginx
	}
	return "", nil
}

// warm sends s's warm-up requests (the prompts a hit scenario needs) to addr, one each,
// and returns a note for each that did not get a 200.
func (e *env) warm(ctx context.Context, s *scenario, addr string) []string {
	var notes []string
	for _, w := range s.warm {
		c := &load.Conn{Addr: addr, Stream: s.stream}
		res := c.Do(ctx, s.gen(addr, 0)(w, nil))
		c.Close()
		if res.Err != nil || res.Status != 200 {
			notes = append(notes, fmt.Sprintf("warm-up request got status %d, error %v", res.Status, res.Err))
		}
	}
	if len(s.warm) > 0 {
		time.Sleep(100 * time.Millisecond) // let asynchronous cache writes land
	}
	return notes
}

// startZest starts a fresh zest for s with extra flags and waits for /healthz; role, when
// set, names its log apart from other zests of the same scenario.
func (e *env) startZest(ctx context.Context, s *scenario, role string, extra ...string) (*proc, string, error) {
	args := []string{"-upstream", "http://" + e.mockAddr + "/v1"}
	if s.zestConfig != "" {
		cfg := filepath.Join(e.dir, "zest-"+s.name+".toml")
		if err := os.WriteFile(cfg, []byte(s.zestConfig), 0o644); err != nil {
			return nil, "", fmt.Errorf("zest config: %w", err)
		}
		args = append(args, "-config", cfg)
	}
	name := "zest-" + s.name
	if role != "" {
		name += "-" + role
	}
	return e.startServer(ctx, name, e.zestBin, 30*time.Second, append(args, extra...)...)
}

func oneLine(s string) string {
	b := []byte(s)
	for i := range b {
		if b[i] == '\n' {
			b[i] = ' '
		}
	}
	return string(b)
}
