package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/zest-proxy/zest/bench/load"
	"github.com/zest-proxy/zest/bench/report"
)

// pairBase is where the request numbers of the alternating windows start, past those of every
// other phase (see phaseStride).
const pairBase = 16

// pairOffset is the first request number of pair k against the scenario's ref-th reference,
// with pairs pairs per reference: each pair's apart from every other's, so that a scenario of
// new prompts never repeats one against its second reference (a hit where a miss is measured).
func pairOffset(ref, k, pairs int) uint64 { return uint64(pairBase+ref*pairs+k) * phaseStride }

// pairing returns how many alternating window pairs pairUp runs per reference and
// round, how long each window lasts, and the pause after each: 4 pairs of windows of a
// twelfth of -duration (at least 100 ms) with 50 ms pauses, or one pair of 50 ms windows
// with 10 ms pauses with -smoke. The pause lets the server just measured finish what its
// window left (closing its connections, zest's filing of the last answers) before the
// other's window starts, so neither side is charged with the other's tail.
func (e *env) pairing() (pairs int, window, pause time.Duration) {
	if e.o.smoke {
		return 1, 50 * time.Millisecond, 10 * time.Millisecond
	}
	return 4, max(e.o.duration/12, 100*time.Millisecond), 50 * time.Millisecond
}

// pairUp measures the zest of s (reached through newDoer, s's requests addressed to
// addr) against each reference that a throughput goal compares s with, in closed-loop
// windows at -conns that alternate between the two (see report.Pairing), and returns notes
// on anything that makes a window suspect. References not running in this bench (nginx
// missing, or not selected) are left out.
func (e *env) pairUp(ctx context.Context, s *scenario, addr string, newDoer func() load.Doer) ([]report.Pairing, []string) {
	pairs, window, pause := e.pairing()
	var out []report.Pairing
	var notes []string
	refs := 0
	for _, g := range throughputGoals {
		if g.a != s.name {
			continue
		}
		ri := refs
		refs++
		ref, refAddr := e.reference(g.b)
		if ref == nil {
			continue
		}
		notes = append(notes, e.warm(ctx, ref, refAddr)...) // a hit reference must still hold its prompt
		refDoer := roundRobin([]string{refAddr}, ref.stream)
		win := func(sc *scenario, to string, nd func() load.Doer, k int) float64 {
			r, err := load.Run(ctx, load.Config{Gen: sc.gen(to, pairOffset(ri, k, pairs)),
				NewDoer: nd, Conns: e.o.conns, Duration: window, MaxRequests: sc.maxClosed})
			time.Sleep(pause)
			if err != nil {
				notes = append(notes, fmt.Sprintf("alternating windows against %s, pair %d: %s's window failed: %v", g.b, k+1, sc.name, err))
				return 0
			}
			rps, why := windowRate(sc, r)
			if why != "" {
				notes = append(notes, fmt.Sprintf("alternating windows against %s, pair %d: %s %s", g.b, k+1, sc.name, why))
			}
			return rps
		}
		p := report.Pairing{Ref: g.b, Window: report.Dur(window)}
		time.Sleep(pause) // what zest's own phases left behind lands on neither side
		for k := range pairs {
			var mine, theirs float64
			if k%2 == 0 {
				theirs = win(ref, refAddr, refDoer, k)
				mine = win(s, addr, newDoer, k)
			} else {
				mine = win(s, addr, newDoer, k)
				theirs = win(ref, refAddr, refDoer, k)
			}
			if ctx.Err() != nil {
				return out, notes
			}
			if mine > 0 && theirs > 0 {
				p.Ratios = append(p.Ratios, mine/theirs)
			} else {
				notes = append(notes, fmt.Sprintf("alternating windows against %s: pair %d left out (no 2xx answer on one side)", g.b, k+1))
			}
		}
		out = append(out, p)
	}
	return out, notes
}

// windowRate is the window's rate of 2xx answers (only those count), and why the window is
// suspect, "" when it is not: answers other than 2xx, failed requests, or, for a scenario of
// warmed prompts (a hit) whose server reports a cache status, answers that were not hits.
func windowRate(sc *scenario, r *load.Result) (float64, string) {
	var ok, hits uint64
	for st, n := range r.Status {
		if st >= 200 && st < 300 {
			ok += n
		}
	}
	for c, n := range r.Cache {
		if strings.HasPrefix(c, "HIT") {
			hits += n
		}
	}
	var why []string
	if bad := r.Responses - ok; bad > 0 {
		why = append(why, fmt.Sprintf("got %d answers other than 2xx (%v)", bad, r.Status))
	}
	if r.Errors > 0 {
		why = append(why, fmt.Sprintf("had %d failed requests (first: %s)", r.Errors, r.FirstError))
	}
	if len(sc.warm) > 0 && len(r.Cache) > 0 && hits < ok { // gomem-hit reports no cache status
		why = append(why, fmt.Sprintf("got %d of %d answers not from its cache", ok-hits, ok))
	}
	if r.Elapsed <= 0 {
		return 0, strings.Join(why, "; ")
	}
	return float64(ok) / r.Elapsed.Seconds(), strings.Join(why, "; ")
}

// reference returns the scenario named name and the address of its server when that
// server runs in this bench (a reference: the mock, ReverseProxy, gomem or nginx), else nil.
func (e *env) reference(name string) (*scenario, string) {
	for _, s := range scenarios() {
		if s.name != name || (e.o.names != nil && !e.o.names[name]) {
			continue
		}
		if addr, _ := e.referenceAt(s.target); addr != "" {
			return &s, addr
		}
		return nil, ""
	}
	return nil, ""
}
