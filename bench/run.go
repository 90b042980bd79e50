package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/zest-proxy/zest/bench/load"
	"github.com/zest-proxy/zest/bench/mock"
	"github.com/zest-proxy/zest/bench/report"
)

// env is the set of servers and binaries shared by the scenarios.
type env struct {
	o                          *options
	dir                        string
	serverCPU                  string // taskset list for servers, "" = unpinned
	zestBin, zestSkip          string
	mock, rev, nginx, gomem    *proc
	mockAddr, revAddr, memAddr string
	nginxPass                  string
	nginxCache                 string
	nginxSkip                  string
	rd                         benchRedis // for the scenarios with [redis]
}

func run(ctx context.Context, o *options) (int, error) {
	began := time.Now()
	root, err := moduleRoot()
	if err != nil {
		return 1, err
	}
	dir, err := os.MkdirTemp("", "zest-bench-")
	if err != nil {
		return 1, fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	e := &env{o: o, dir: dir}
	rep := &report.Run{
		Started: time.Now(), Rate: o.rate, OpenConns: o.openConns, Conns: o.conns,
		Duration: o.duration.String(), Rounds: o.rounds, Smoke: o.smoke, Pinned: "no",
		Host: fmt.Sprintf("%s/%s, %d CPUs, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version()),
	}
	if o.pin {
		n := runtime.NumCPU()
		e.serverCPU = strconv.Itoa(n - 1)
		driver := "0"
		if n > 2 {
			driver = "0-" + strconv.Itoa(n-2)
		}
		if err := exec.Command("taskset", "-a", "-cp", driver, strconv.Itoa(os.Getpid())).Run(); err != nil {
			rep.Notes = append(rep.Notes, "pinning the driver failed: "+err.Error())
		}
		rep.Pinned = fmt.Sprintf("servers (mock, proxies) on CPU %s, driver on CPU %s", e.serverCPU, driver)
	}

	var list []scenario
	needZest, needNginx, needRev, needRedis, needMem := false, false, false, false, false
	for _, s := range scenarios() {
		if o.names != nil && !o.names[s.name] {
			continue
		}
		list = append(list, s)
		needZest = needZest || s.target == tZest
		needNginx = needNginx || s.target == tNginxPass || s.target == tNginxCache
		needRev = needRev || s.target == tRevProxy
		needMem = needMem || s.target == tGoMem
		needRedis = needRedis || s.redis
	}
	if needRedis {
		e.setupRedis(ctx)
		defer e.cleanupRedis()
		if e.rd.skip != "" {
			rep.Notes = append(rep.Notes, "Redis scenarios skipped: "+e.rd.skip)
		}
	}

	status("building mock upstream and reverse proxy")
	mockBin, err := goBuild(ctx, root, dir, "mockupstream", "./bench/mockupstream")
	if err != nil {
		return 1, err
	}
	revBin, err := goBuild(ctx, root, dir, "revproxy", "./bench/revproxy")
	if err != nil {
		return 1, err
	}
	if needZest {
		e.zestBin = o.zestBin
		if strings.ContainsRune(e.zestBin, filepath.Separator) {
			// Servers run in the scratch directory (see startProc): a relative path would miss.
			if e.zestBin, err = filepath.Abs(e.zestBin); err != nil {
				return 1, fmt.Errorf("zest binary: %w", err)
			}
		}
		if e.zestBin == "" {
			status("building zest (./cmd/zest)")
			if e.zestBin, err = goBuild(ctx, root, dir, "zest", "./cmd/zest"); err != nil {
				e.zestSkip = "zest did not build: " + err.Error()
				rep.Notes = append(rep.Notes, e.zestSkip)
			}
		}
	}

	if e.mockAddr, err = freeAddr(); err != nil {
		return 1, err
	}
	e.mock, err = startProc(dir, "mock", e.serverCPU, mockBin, "-listen", e.mockAddr, "-tokens", "48")
	if err != nil {
		return 1, err
	}
	defer e.mock.stop()
	if err := waitReady(ctx, e.mock, "http://"+e.mockAddr+"/healthz", 10*time.Second); err != nil {
		return 1, err
	}
	if needRev {
		if e.rev, e.revAddr, err = e.startReference(ctx, "revproxy", revBin); err != nil {
			return 1, err
		}
		defer e.rev.stop()
	}
	if needMem {
		memBin, err := goBuild(ctx, root, dir, "gomem", "./bench/gomem")
		if err != nil {
			return 1, err
		}
		if e.gomem, e.memAddr, err = e.startReference(ctx, "gomem", memBin); err != nil {
			return 1, err
		}
		defer e.gomem.stop()
	}
	if needNginx {
		e.startNginx(ctx)
		defer e.nginx.stop()
		if e.nginxSkip != "" {
			rep.Notes = append(rep.Notes, "nginx scenarios skipped: "+e.nginxSkip)
		}
	}

	// Rounds are interleaved: round 1 of every scenario, then round 2, so a
	// slow spell of the shared machine hits one round of many scenarios
	// rather than every round of one.
	rounds := make([][]report.Scenario, len(list))
	for round := range o.rounds {
		roundStart := time.Now()
		for i, s := range list {
			status(fmt.Sprintf("round %d/%d [%d/%d] %s — %s", round+1, o.rounds, i+1, len(list), s.name, s.title))
			rounds[i] = append(rounds[i], e.runScenario(ctx, &s))
			if ctx.Err() != nil {
				return 1, fmt.Errorf("interrupted: %w", ctx.Err())
			}
		}
		status(fmt.Sprintf("round %d/%d took %s", round+1, o.rounds, time.Since(roundStart).Round(100*time.Millisecond)))
	}
	for _, r := range rounds {
		rep.Scenarios = append(rep.Scenarios, report.Aggregate(r))
	}
	rep.Elapsed = time.Since(began).Round(time.Second).String()
	compare(rep)
	redisSummary(rep)
	rep.Goals = goals(rep)
	rep.Notes = append(rep.Notes,
		"The load driver is a minimal keep-alive HTTP/1.1 client (bench/load); latency of an open-loop request is measured from its scheduled send time, so timer and queueing delays count against every target alike.",
		"zest runs as a fresh process per scenario (clean caches); its CPU per request is its user+system time over the scenario divided by the requests sent, its peak RSS is VmHWM.",
		"The mock answers instantly unless a scenario says otherwise, so every added microsecond is the proxy's.")
	if err := report.Write(o.out, rep); err != nil {
		return 1, err
	}
	fmt.Println()
	report.GoalsTable(os.Stdout, rep)
	fmt.Println()
	report.SummaryTable(os.Stdout, rep)
	fmt.Printf("\nwall time %s (%s)\nreport: %s\n", rep.Elapsed, roundsNote(o.rounds), filepath.Join(o.out, "report.md"))
	return smokeCheck(rep), nil
}

func roundsNote(n int) string {
	if n == 1 {
		return "one round"
	}
	return fmt.Sprintf("medians of %d interleaved rounds", n)
}

func status(msg string) { fmt.Fprintf(os.Stderr, "bench: %s\n", msg) }

func (e *env) startNginx(ctx context.Context) {
	var err error
	if e.nginxPass, err = freeAddr(); err == nil {
		e.nginxCache, err = freeAddr()
	}
	if err == nil {
		e.nginx, e.nginxSkip, err = startNginx(e.dir, e.serverCPU, e.mockAddr, e.nginxPass, e.nginxCache)
	}
	if err == nil && e.nginx != nil {
		err = waitReady(ctx, e.nginx, "http://"+e.nginxPass+"/healthz", 10*time.Second)
	}
	if err != nil {
		e.nginxSkip = "nginx did not start: " + err.Error()
		e.nginx.stop()
		e.nginx = nil
	}
}

// smokeCheck returns 1 when a scenario got no successful answer in a round
// it ran, or a load-test replay reached the upstream.
func smokeCheck(rep *report.Run) int {
	code := 0
	ran := map[string]bool{}
	for _, agg := range rep.Scenarios {
		ran[agg.Name] = agg.Skipped == "" && agg.Open != nil
	}
	for _, agg := range rep.Scenarios {
		rounds := agg.Rounds
		if len(rounds) == 0 {
			rounds = []report.Scenario{agg}
		}
		for k, s := range rounds {
			if s.Skipped != "" || s.Open == nil {
				continue
			}
			ok := uint64(0)
			for st, n := range s.Open.Status {
				if st >= 200 && st < 300 {
					ok += n
				}
			}
			if ok == 0 {
				fmt.Fprintf(os.Stderr, "bench: scenario %s round %d got no 2xx answer (statuses %v, first error %q)\n",
					s.Name, k+1, s.Open.Status, s.Open.FirstError)
				code = 1
			}
			for _, g := range throughputGoals {
				if g.a == s.Name && ran[g.b] && pairingOf(&s, g.b) == nil {
					fmt.Fprintf(os.Stderr, "bench: scenario %s round %d has no alternating windows against %s\n", s.Name, k+1, g.b)
					code = 1
				}
			}
			if r := s.Replay; r != nil && r.UpstreamCalls != 0 {
				fmt.Fprintf(os.Stderr, "bench: scenario %s round %d: replay mode made %d upstream calls (-1: not counted), want 0\n",
					s.Name, k+1, r.UpstreamCalls)
				code = 1
			}
		}
	}
	return code
}

// mockStats reads the mock's counters.
func (e *env) mockStats(ctx context.Context) mock.Stats {
	var st mock.Stats
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+e.mockAddr+"/mock/stats", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(&st)
	return st
}

func upstreamCalls(s mock.Stats) int64 { return s.Chat + s.ChatStream + s.Errors + s.RateLimited }

// mockServed counts every request the mock answered on an API path, whatever the outcome
// (its own /mock/stats and /healthz left out).
func mockServed(s mock.Stats) int64 {
	return upstreamCalls(s) + s.Embeddings + s.Models + s.BadRequests + s.NotFound
}

// progress prints a line a second while a phase runs.
func progress(name, phase string, total time.Duration) func(load.Progress) {
	return func(p load.Progress) {
		fmt.Fprintf(os.Stderr, "  %-16s %-10s %5.1fs/%-5.1fs %8d sent %8d done %6d errors\n",
			name, phase, p.Elapsed.Seconds(), total.Seconds(), p.Sent, p.Done, p.Errors)
	}
}

func phaseOf(r *load.Result, offered float64) *report.Phase {
	return &report.Phase{
		OfferedRPS: offered, AchievedRPS: r.Throughput(), Requests: r.Requests, Errors: r.Errors,
		Status: r.Status, Cache: r.Cache,
		P50: report.Dur(r.Latency.Quantile(0.5)), P90: report.Dur(r.Latency.Quantile(0.9)),
		P99: report.Dur(r.Latency.Quantile(0.99)), P999: report.Dur(r.Latency.Quantile(0.999)),
		Max: report.Dur(r.Latency.Max()), ServiceP99: report.Dur(r.Service.Quantile(0.99)),
		TTFTP50: report.Dur(r.FirstToken.Quantile(0.5)), TTFTP99: report.Dur(r.FirstToken.Quantile(0.99)),
		TTFTP999: report.Dur(r.FirstToken.Quantile(0.999)), OKPerSecond: r.OKPerSecond, FirstError: r.FirstError,
	}
}

// limitOf evaluates the rate-limit scenario against a bucket of rpm that
// refills continuously; d is how long the phase really lasted (to its last
// response), which is longer than planned when the target fell behind.
func limitOf(p *report.Phase, rpm, offered float64, d time.Duration, retryAfter uint64) *report.Limit {
	perSec := rpm / 60
	l := &report.Limit{
		ConfiguredRPM: rpm, ConfiguredRPS: perSec, OfferedRPS: offered,
		Admitted: p.Status[200], Rejected: p.Status[429], RejectedWithRA: retryAfter,
		Expected: math.Min(offered*d.Seconds(), rpm+perSec*d.Seconds()),
	}
	if offered > perSec {
		drained := rpm / (offered - perSec) // seconds until the bucket is empty
		from, to := int(math.Ceil(drained))+1, int(d.Seconds())
		var sum uint64
		for s := from; s < to && s < len(p.OKPerSecond); s++ {
			sum += p.OKPerSecond[s]
		}
		if to > from {
			l.SteadyRPS = float64(sum) / float64(to-from)
		}
	}
	return l
}

func hitRate(p *report.Phase) float64 {
	if p.Requests == 0 {
		return 0
	}
	var hits uint64
	for k, n := range p.Cache {
		if strings.HasPrefix(k, "HIT") {
			hits += n
		}
	}
	return float64(hits) / float64(p.Requests)
}

// startReference starts a reference server built as bin (revproxy, gomem) in front of the mock.
func (e *env) startReference(ctx context.Context, name, bin string) (*proc, string, error) {
	return e.startServer(ctx, name, bin, 10*time.Second, "-upstream", "http://"+e.mockAddr)
}

// startServer starts bin as name with -listen on a free loopback port and args, pinned with the
// other servers, and waits up to wait for its /healthz; it returns the process and its address.
func (e *env) startServer(ctx context.Context, name, bin string, wait time.Duration, args ...string) (*proc, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	p, err := startProc(e.dir, name, e.serverCPU, bin, append([]string{"-listen", addr}, args...)...)
	if err != nil {
		return nil, "", err
	}
	if err := waitReady(ctx, p, "http://"+addr+"/healthz", wait); err != nil {
		p.stop()
		return nil, "", err
	}
	return p, addr, nil
}
