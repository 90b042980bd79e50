package main

import (
	"fmt"
	"slices"
	"time"

	"github.com/zest-proxy/zest/bench/report"
)

// compare fills each scenario's ratios to its baseline from the same run.
func compare(rep *report.Run) {
	by := map[string]*report.Scenario{}
	for i := range rep.Scenarios {
		by[rep.Scenarios[i].Name] = &rep.Scenarios[i]
	}
	for i := range rep.Scenarios {
		s := &rep.Scenarios[i]
		b := by[s.Baseline]
		if b == nil || b.Skipped != "" || b.Open == nil {
			s.Baseline = "" // not run: no ratios, rather than zeros
			continue
		}
		if s.Skipped != "" || s.Open == nil || b == s {
			continue
		}
		if b.MaxRPS > 0 && s.MaxRPS > 0 {
			s.RPSRatio = s.MaxRPS / b.MaxRPS
		}
		s.AddedP50 = s.Open.P50 - b.Open.P50
		s.AddedP99 = s.Open.P99 - b.Open.P99
		if s.Stream {
			s.AddedTTFTP50 = s.Open.TTFTP50 - b.Open.TTFTP50
			s.AddedTTFTP99 = s.Open.TTFTP99 - b.Open.TTFTP99
		}
	}
}

// throughputGoals are the goals that a's closed-loop req/s be at least least× b's, in the
// order the goals table lists them (the streamed-miss goal comes after the first three). A
// run measures each pair in alternating windows too (paired.go), and judges by those.
var throughputGoals = []struct {
	name, a, b string
	least      float64
}{
	{"zest exact hit throughput vs nginx proxy_cache hit", "zest-hit", "nginx-hit", 1},
	{"zest exact hit throughput vs a minimal Go net/http cache hit (net/http's own ceiling)", "zest-hit", "gomem-hit", 0.9},
	{"zest exact hit without its access line vs nginx proxy_cache hit (neither logs a request)", "zest-hit-quiet", "nginx-hit", 1},
	{"zest miss (defaults: exact + semantic) throughput vs bare httputil.ReverseProxy", "zest-miss", "revproxy", 1},
	{"zest miss (defaults), prompts without numbers, throughput vs bare httputil.ReverseProxy", "zest-miss-words", "revproxy", 1},
	{"zest miss with a full exact cache (defaults, steady state) throughput vs bare httputil.ReverseProxy", "zest-miss-full", "revproxy", 1},
	{"zest forwarding alone (no_cache) throughput vs bare httputil.ReverseProxy", "zest-bypass", "revproxy", 1.2},
	{"zest miss (exact cache only) throughput vs bare httputil.ReverseProxy", "zest-miss-exact", "revproxy", 1},
	{"zest miss (exact cache only) throughput vs nginx proxy_pass", "zest-miss-exact", "nginx-pass", 1},
}

// pairingOf returns s's alternating-window comparison with ref, nil when none was measured.
func pairingOf(s *report.Scenario, ref string) *report.Pairing {
	for i := range s.Paired {
		if p := &s.Paired[i]; p.Ref == ref && len(p.Ratios) > 0 {
			return p
		}
	}
	return nil
}

// plural returns one for n == 1, else many.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

// goals judges the run against the targets in PERFORMANCE.md.
func goals(rep *report.Run) []report.Goal {
	by := map[string]*report.Scenario{}
	for i := range rep.Scenarios {
		if s := &rep.Scenarios[i]; s.Skipped == "" && s.Open != nil {
			by[s.Name] = s
		}
	}
	var out []report.Goal
	add := func(name, target string, need []string, judge func() (string, bool)) {
		g := report.Goal{Name: name, Target: target, Met: "n/a", Measured: "not measured (needs " + fmt.Sprint(need) + ")"}
		ok := true
		for _, n := range need {
			ok = ok && by[n] != nil
		}
		if ok {
			var met bool
			g.Measured, met = judge()
			g.Met = yesNo(met)
		}
		out = append(out, g)
	}
	ratio := func(a, b string) (string, float64) {
		if by[a].MaxRPS == 0 || by[b].MaxRPS == 0 {
			return "no closed-loop throughput", 0
		}
		r := by[a].MaxRPS / by[b].MaxRPS
		phases := fmt.Sprintf("%.2f× (%s vs %s req/s%s)", r, rpsText(by[a].MaxRPS), rpsText(by[b].MaxRPS),
			perRound(by[a], by[b], func(x, y *report.Scenario) (float64, bool) {
				return x.MaxRPS / y.MaxRPS, x.MaxRPS > 0 && y.MaxRPS > 0
			}, func(v float64) string { return fmt.Sprintf("%.2f×", v) }))
		p := pairingOf(by[a], b)
		if p == nil {
			return phases, r
		}
		lo, hi := p.Middle()
		n, spread := len(p.Ratios), ""
		switch {
		case n >= 4:
			spread = fmt.Sprintf(", middle half %.2f× to %.2f×", lo, hi)
		case n > 1:
			spread = fmt.Sprintf(", range %.2f× to %.2f×", lo, hi)
		}
		m := p.Median()
		return fmt.Sprintf("%.2f× (median of %d %s of alternating %s windows%s); separate phases: %s",
			m, n, plural(n, "pair", "pairs"), time.Duration(p.Window), spread, phases), m
	}
	// throughput adds a goal that a's closed-loop req/s be at least least× b's.
	throughput := func(name, a, b string, least float64) {
		add(name, fmt.Sprintf("≥ %.2f×", least), []string{a, b}, func() (string, bool) {
			m, r := ratio(a, b)
			return m, r >= least
		})
	}
	add("zest miss: added p99 over direct at low load", "≤ +150µs", []string{"zest-miss", "direct"}, func() (string, bool) {
		d := by["zest-miss"].Open.P99 - by["direct"].Open.P99
		ref := ""
		if rp := by["revproxy"]; rp != nil {
			ref = fmt.Sprintf("; httputil.ReverseProxy adds %s in this run", signedDur(rp.Open.P99-by["direct"].Open.P99))
		}
		return fmt.Sprintf("%s (p99 %s vs %s at %s req/s%s%s)", signedDur(d), by["zest-miss"].Open.P99, by["direct"].Open.P99, rpsText(rep.Rate),
				perRound(by["zest-miss"], by["direct"], func(x, y *report.Scenario) (float64, bool) {
					return float64(x.Open.P99 - y.Open.P99), true
				}, func(v float64) string { return signedDur(report.Dur(v)) }), ref),
			d <= report.Dur(150_000)
	})
	for _, g := range throughputGoals[:3] {
		throughput(g.name, g.a, g.b, g.least)
	}
	add("zest streamed miss: added time to first token", "< +1ms (p50 and p99)", []string{"zest-stream-miss", "direct-stream"}, func() (string, bool) {
		s, b := by["zest-stream-miss"].Open, by["direct-stream"].Open
		d50, d99 := s.TTFTP50-b.TTFTP50, s.TTFTP99-b.TTFTP99
		ref := ""
		if rp := by["revproxy-stream"]; rp != nil {
			ref = fmt.Sprintf("; httputil.ReverseProxy adds p50 %s, p99 %s in this run",
				signedDur(rp.Open.TTFTP50-b.TTFTP50), signedDur(rp.Open.TTFTP99-b.TTFTP99))
		}
		return fmt.Sprintf("p50 %s, p99 %s%s%s", signedDur(d50), signedDur(d99),
				perRound(by["zest-stream-miss"], by["direct-stream"], func(x, y *report.Scenario) (float64, bool) {
					return float64(x.Open.TTFTP99 - y.Open.TTFTP99), true
				}, func(v float64) string { return signedDur(report.Dur(v)) }), ref),
			d50 < report.Dur(1e6) && d99 < report.Dur(1e6)
	})
	for _, g := range throughputGoals[3:] {
		throughput(g.name, g.a, g.b, g.least)
	}
	add("zest streamed hit vs plain hit (p99 latency)", "≤ 1.10×", []string{"zest-stream-hit", "zest-hit"}, func() (string, bool) {
		s, h := by["zest-stream-hit"].Open.P99, by["zest-hit"].Open.P99
		if h == 0 {
			return "no data", false
		}
		r := float64(s) / float64(h)
		return fmt.Sprintf("%.2f× (%s vs %s%s)", r, s, h,
			perRound(by["zest-stream-hit"], by["zest-hit"], func(x, y *report.Scenario) (float64, bool) {
				return float64(x.Open.P99) / float64(y.Open.P99), y.Open.P99 > 0
			}, func(v float64) string { return fmt.Sprintf("%.2f×", v) })), r <= 1.10
	})
	add("rate limiter: admitted within the configured allowance", "admitted ≤ bucket + refill; steady rate within 10%", []string{"zest-ratelimit"}, func() (string, bool) {
		l := by["zest-ratelimit"].Limit
		if l == nil {
			return "no data", false
		}
		steadyOK := l.SteadyRPS == 0 || (l.SteadyRPS >= 0.9*l.ConfiguredRPS && l.SteadyRPS <= 1.1*l.ConfiguredRPS)
		steady := fmt.Sprintf("steady %.1f/s vs %.1f/s", l.SteadyRPS, l.ConfiguredRPS)
		if l.SteadyRPS == 0 {
			steady = "steady rate not measured (run shorter than the bucket)"
		}
		within := ""
		if rs := by["zest-ratelimit"].Rounds; len(rs) > 1 {
			n, ran := 0, 0
			for _, r := range rs {
				if r.Limit != nil {
					ran++
					if admittedOK(r.Limit) {
						n++
					}
				}
			}
			within = fmt.Sprintf(" (median round; %d of %d rounds within the allowance)", n, ran)
		}
		return fmt.Sprintf("admitted %d of ≤ %.0f, %d rejected; %s%s", l.Admitted, l.Expected, l.Rejected, steady, within),
			admittedOK(l) && steadyOK
	})
	return out
}

// admittedOK reports whether the limiter admitted something and no more than
// the bucket plus its refill (2% slack for the clock edges).
func admittedOK(l *report.Limit) bool {
	return float64(l.Admitted) <= l.Expected*1.02+1 && l.Admitted > 0
}

// perRound returns "; per round lo–hi" of v over the rounds both a and b
// ran (round k of one against round k of the other), formatted by format;
// "" when fewer than two rounds pair up.
func perRound(a, b *report.Scenario, v func(x, y *report.Scenario) (float64, bool), format func(float64) string) string {
	var vals []float64
	for k := range min(len(a.Rounds), len(b.Rounds)) {
		x, y := &a.Rounds[k], &b.Rounds[k]
		if x.Skipped != "" || y.Skipped != "" || x.Open == nil || y.Open == nil {
			continue
		}
		if f, ok := v(x, y); ok {
			vals = append(vals, f)
		}
	}
	if len(vals) < 2 {
		return ""
	}
	return "; per round " + format(slices.Min(vals)) + " to " + format(slices.Max(vals))
}

func signedDur(d report.Dur) string {
	if d > 0 {
		return "+" + d.String()
	}
	return d.String()
}

func rpsText(v float64) string { return fmt.Sprintf("%.0f", v) }
