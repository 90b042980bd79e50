package main

import (
	"fmt"

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
		if s.Skipped != "" || b == nil || b.Skipped != "" || s.Open == nil || b.Open == nil || b == s {
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
		return fmt.Sprintf("%.2f× (%s vs %s req/s)", r, rpsText(by[a].MaxRPS), rpsText(by[b].MaxRPS)), r
	}
	add("zest miss: added p99 over direct at low load", "≤ +150µs", []string{"zest-miss", "direct"}, func() (string, bool) {
		d := by["zest-miss"].Open.P99 - by["direct"].Open.P99
		return fmt.Sprintf("%s (p99 %s vs %s at %s req/s)", signedDur(d), by["zest-miss"].Open.P99, by["direct"].Open.P99, rpsText(rep.Rate)),
			d <= report.Dur(150_000)
	})
	add("zest exact hit throughput vs nginx proxy_cache hit", "≥ 1.00×", []string{"zest-hit", "nginx-hit"}, func() (string, bool) {
		m, r := ratio("zest-hit", "nginx-hit")
		return m, r >= 1
	})
	add("zest streamed miss: added time to first token", "< +1ms (p50 and p99)", []string{"zest-stream-miss", "direct-stream"}, func() (string, bool) {
		s, b := by["zest-stream-miss"].Open, by["direct-stream"].Open
		d50, d99 := s.TTFTP50-b.TTFTP50, s.TTFTP99-b.TTFTP99
		return fmt.Sprintf("p50 %s, p99 %s", signedDur(d50), signedDur(d99)), d50 < report.Dur(1e6) && d99 < report.Dur(1e6)
	})
	add("zest miss (exact cache only) throughput vs bare httputil.ReverseProxy", "≥ 1.00×", []string{"zest-miss-exact", "revproxy"}, func() (string, bool) {
		m, r := ratio("zest-miss-exact", "revproxy")
		return m, r >= 1
	})
	add("zest miss (exact cache only) throughput vs nginx proxy_pass", "≥ 1.00×", []string{"zest-miss-exact", "nginx-pass"}, func() (string, bool) {
		m, r := ratio("zest-miss-exact", "nginx-pass")
		return m, r >= 1
	})
	add("zest streamed hit vs plain hit (p99 latency)", "≤ 1.10×", []string{"zest-stream-hit", "zest-hit"}, func() (string, bool) {
		s, h := by["zest-stream-hit"].Open.P99, by["zest-hit"].Open.P99
		if h == 0 {
			return "no data", false
		}
		r := float64(s) / float64(h)
		return fmt.Sprintf("%.2f× (%s vs %s)", r, s, h), r <= 1.10
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
		return fmt.Sprintf("admitted %d of ≤ %.0f, %d rejected; %s", l.Admitted, l.Expected, l.Rejected, steady),
			float64(l.Admitted) <= l.Expected*1.02+1 && l.Admitted > 0 && steadyOK
	})
	return out
}

func signedDur(d report.Dur) string {
	if d > 0 {
		return "+" + d.String()
	}
	return d.String()
}

func rpsText(v float64) string { return fmt.Sprintf("%.0f", v) }
