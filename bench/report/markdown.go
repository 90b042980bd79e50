package report

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

func trim(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }

// rps formats a request rate: 12,345 or 87.5.
func rps(v float64) string {
	if v == 0 {
		return "–"
	}
	if v < 100 {
		return trim(v, 1)
	}
	s := strconv.FormatInt(int64(v+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func bytesIEC(n uint64) string {
	switch {
	case n == 0:
		return "–"
	case n < 1<<20:
		return trim(float64(n)/1024, 0) + " KiB"
	default:
		return trim(float64(n)/(1<<20), 1) + " MiB"
	}
}

func signed(d Dur) string {
	if d > 0 {
		return "+" + d.String()
	}
	return d.String()
}

// cacheSummary lists an open phase's cache statuses: "HIT+exact 99%".
func cacheSummary(p *Phase) string {
	if p == nil || len(p.Cache) == 0 || p.Requests == 0 {
		return ""
	}
	keys := make([]string, 0, len(p.Cache))
	for k := range p.Cache {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return p.Cache[keys[i]] > p.Cache[keys[j]] })
	var parts []string
	for _, k := range keys[:min(len(keys), 2)] {
		parts = append(parts, fmt.Sprintf("%s %.0f%%", k, 100*float64(p.Cache[k])/float64(p.Requests)))
	}
	return strings.Join(parts, ", ")
}

// SummaryTable writes the one table a reader looks at first.
func SummaryTable(w io.Writer, r *Run) {
	fmt.Fprintf(w, "| scenario | p50 | p99 | p99 min–max | p99.9 | added p99 | req/s @%d conns | req/s min–max | × baseline | cache | proxy CPU/req | proxy peak RSS |\n", r.Conns)
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
	for _, s := range r.Scenarios {
		if s.Skipped != "" {
			fmt.Fprintf(w, "| %s | skipped: %s | | | | | | | | | | |\n", s.Name, s.Skipped)
			continue
		}
		p99Range, rpsRange := "–", "–"
		if sp := s.Spread; sp != nil && sp.Rounds > 1 {
			lo, hi := sp.P99Min, sp.P99Max
			if s.Stream {
				lo, hi = sp.TTFTP99Min, sp.TTFTP99Max
			}
			if hi > 0 {
				p99Range = lo.String() + "–" + hi.String()
			}
			if sp.RPSMax > 0 {
				rpsRange = rps(sp.RPSMin) + "–" + rps(sp.RPSMax)
			}
		}
		p := s.Open
		var p50, p99, p999, added string
		if p != nil {
			p50, p99, p999 = p.P50.String(), p.P99.String(), p.P999.String()
			if s.Stream {
				p50, p99, p999 = "TTFT "+p.TTFTP50.String(), "TTFT "+p.TTFTP99.String(), "TTFT "+p.TTFTP999.String()
			}
		}
		if s.Baseline != "" && s.Baseline != s.Name {
			added = signed(s.AddedP99)
			if s.Stream {
				added = "TTFT " + signed(s.AddedTTFTP99)
			}
		}
		ratio := "1.00"
		if s.Baseline != s.Name {
			ratio = "–"
			if s.RPSRatio > 0 {
				ratio = trim(s.RPSRatio, 2)
			}
		}
		cpu := "–"
		if s.ProxyCPUPerReq > 0 {
			cpu = s.ProxyCPUPerReq.String()
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			s.Name, p50, p99, p99Range, p999, added, rps(s.MaxRPS), rpsRange, ratio, cacheSummary(p), cpu, bytesIEC(s.ProxyPeakRSS))
	}
}

// GoalsTable writes the goals and whether this run met them.
func GoalsTable(w io.Writer, r *Run) {
	fmt.Fprintln(w, "| goal | target | measured | met |")
	fmt.Fprintln(w, "|---|---|---|:-:|")
	for _, g := range r.Goals {
		mark := map[string]string{"yes": "✅", "no": "❌"}[g.Met]
		if mark == "" {
			mark = "n/a"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", g.Name, g.Target, g.Measured, mark)
	}
}

// WriteMarkdown writes the whole report; charts are referenced by file name.
func WriteMarkdown(w io.Writer, r *Run) {
	fmt.Fprintf(w, "# zest benchmark — %s\n\n", r.Started.Format("2006-01-02 15:04 MST"))
	mode := ""
	if r.Smoke {
		mode = " **Smoke run: numbers are not meaningful.**"
	}
	fmt.Fprintf(w, "%s; pinning: %s; open loop at %s req/s over %d connections for %s per scenario and round, "+
		"closed loop at %d connections; %s; wall time %s.%s\n\n", r.Host, r.Pinned, rps(r.Rate), r.OpenConns, r.Duration, r.Conns,
		roundsText(r.Rounds), r.Elapsed, mode)
	fmt.Fprintln(w, "Latency is measured from each request's *scheduled* send time (no coordinated omission), "+
		"so queueing inside the target counts. Compare rows only as ratios within this run: absolute numbers "+
		"move ±20% between runs on shared machines.")
	if r.Rounds > 1 {
		fmt.Fprintln(w)
		fmt.Fprintf(w, "Every number is the median of %d interleaved rounds (round 1 of every scenario, then round 2, …; "+
			"fresh zest per scenario and round); the min–max columns show the spread across rounds, "+
			"and ratios and goal verdicts are taken from the medians.\n", r.Rounds)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## Goals")
	fmt.Fprintln(w)
	GoalsTable(w, r)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## Summary")
	fmt.Fprintln(w)
	SummaryTable(w, r)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "![latency percentiles per scenario](latency.svg)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "![throughput vs concurrency](throughput.svg)")
	fmt.Fprintln(w)
	for _, s := range r.Scenarios {
		if s.Limit != nil {
			fmt.Fprintln(w, "![rate limiter: admitted per second](ratelimit.svg)")
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintln(w, "## Scenarios")
	fmt.Fprintln(w)
	for _, s := range r.Scenarios {
		writeScenario(w, &s)
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(w, "## Notes")
		fmt.Fprintln(w)
		for _, n := range r.Notes {
			fmt.Fprintf(w, "- %s\n", n)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "Raw numbers: [results.json](results.json).")
}

func writeScenario(w io.Writer, s *Scenario) {
	fmt.Fprintf(w, "### %s — %s\n\n", s.Name, s.Title)
	if s.Skipped != "" {
		fmt.Fprintf(w, "Skipped: %s\n\n", s.Skipped)
		return
	}
	if p := s.Open; p != nil {
		over := ""
		if len(s.Rounds) > 1 {
			over = fmt.Sprintf(" (counts summed over %d rounds)", len(s.Rounds))
		}
		loop := "open loop: " + rps(p.OfferedRPS) + " req/s offered"
		if p.OfferedRPS == 0 {
			loop = "closed loop"
		}
		fmt.Fprintf(w, "- %s, %s req/s achieved, %d requests, %d errors; statuses %v%s\n",
			loop, rps(p.AchievedRPS), p.Requests, p.Errors, p.Status, over)
		fmt.Fprintf(w, "- latency p50 %s, p90 %s, p99 %s, p99.9 %s, max %s (service time p99 %s)\n",
			p.P50, p.P90, p.P99, p.P999, p.Max, p.ServiceP99)
		if s.Stream {
			fmt.Fprintf(w, "- time to first token p50 %s, p99 %s, p99.9 %s\n", p.TTFTP50, p.TTFTP99, p.TTFTP999)
		}
		if c := cacheSummary(p); c != "" {
			fmt.Fprintf(w, "- cache: %v; hit rate %.1f%%; upstream calls %d (%.1f%% saved)\n",
				p.Cache, 100*s.HitRate, s.UpstreamCalls, 100*s.UpstreamSaved)
		}
		if p.FirstError != "" {
			fmt.Fprintf(w, "- first error: `%s`\n", p.FirstError)
		}
	}
	if len(s.Sweep) > 0 {
		var parts []string
		for _, pt := range s.Sweep {
			rng := ""
			if pt.RPSMax > 0 {
				rng = fmt.Sprintf(" [%s–%s]", rps(pt.RPSMin), rps(pt.RPSMax))
			}
			parts = append(parts, fmt.Sprintf("%d conns: %s req/s%s (p99 %s)", pt.Conns, rps(pt.RPS), rng, pt.P99))
		}
		fmt.Fprintf(w, "- closed loop: %s\n", strings.Join(parts, "; "))
	}
	if l := s.Limit; l != nil {
		fmt.Fprintf(w, "- rate limit %.0f/min (%.1f/s): offered %s req/s, admitted %d (expected ≤ %.0f = bucket + refill), "+
			"steady admitted rate %.1f/s vs configured %.1f/s; %d rejected, %d with Retry-After\n",
			l.ConfiguredRPM, l.ConfiguredRPS, rps(l.OfferedRPS), l.Admitted, l.Expected, l.SteadyRPS,
			l.ConfiguredRPS, l.Rejected, l.RejectedWithRA)
	}
	if r := s.Replay; r != nil {
		writeReplay(w, r)
	}
	for _, p := range s.Paired {
		ratios := make([]string, len(p.Ratios))
		for i, r := range p.Ratios {
			ratios[i] = trim(r, 2) + "×"
		}
		fmt.Fprintf(w, "- against %s in alternating %s windows: median %s× over %d pair(s): %s\n",
			p.Ref, time.Duration(p.Window), trim(p.Median(), 2), len(p.Ratios), strings.Join(ratios, ", "))
	}
	if s.ProxyCPUPerReq > 0 || s.ProxyPeakRSS > 0 {
		fmt.Fprintf(w, "- proxy process: %s CPU per request, peak RSS %s\n", s.ProxyCPUPerReq, bytesIEC(s.ProxyPeakRSS))
	}
	if len(s.Rounds) > 1 {
		fmt.Fprintf(w, "- per round: %s\n", roundsLine(s))
	}
	for _, n := range s.Notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
	fmt.Fprintln(w)
}

// writeReplay writes the load-test scenario's recorded and achieved time to first token.
func writeReplay(w io.Writer, r *Replay) {
	ttft := func(t TTFT) string { return fmt.Sprintf("%s / %s / %s", t.P50, t.P90, t.P99) }
	fmt.Fprintf(w, "- load-test replay: %d streamed prompts recorded over %d connections, replayed over %d (%.0f×) at speed %g; "+
		"%d replayed streams measured; upstream calls while replaying: %d\n",
		r.Prompts, r.RecordConns, r.ReplayConns, float64(r.ReplayConns)/float64(max(r.RecordConns, 1)), r.Speed, r.Streams, r.UpstreamCalls)
	fmt.Fprintln(w, "\n  | time to first token | p50 / p90 / p99 |\n  |---|---|")
	fmt.Fprintf(w, "  | recorded (the file's `ttft_ms`) | %s |\n", ttft(r.Recorded))
	fmt.Fprintf(w, "  | clients, while recording | %s |\n", ttft(r.RecordClient))
	fmt.Fprintf(w, "  | clients, replay over %d connections (as recorded) | %s |\n", r.RecordConns, ttft(r.AtRecordConns))
	fmt.Fprintf(w, "  | clients, replay over %d connections | %s |\n", r.ReplayConns, ttft(r.Achieved))
	fmt.Fprintf(w, "  | achieved ÷ recorded | %s / %s / %s |\n\n", trim(r.Ratio.P50, 2), trim(r.Ratio.P90, 2), trim(r.Ratio.P99, 2))
}

func roundsText(n int) string {
	if n <= 1 {
		return "one round"
	}
	return fmt.Sprintf("medians of %d interleaved rounds", n)
}

// roundsLine lists each round's p99 (or TTFT p99) and closed-loop req/s.
func roundsLine(s *Scenario) string {
	var parts []string
	for i, r := range s.Rounds {
		if r.Skipped != "" || r.Open == nil {
			parts = append(parts, fmt.Sprintf("%d: skipped", i+1))
			continue
		}
		p99 := "p99 " + r.Open.P99.String()
		if s.Stream {
			p99 = "TTFT p99 " + r.Open.TTFTP99.String()
		}
		if r.MaxRPS > 0 {
			p99 += ", " + rps(r.MaxRPS) + " req/s"
		}
		if r.Limit != nil {
			p99 += fmt.Sprintf(", admitted %d, steady %.1f/s", r.Limit.Admitted, r.Limit.SteadyRPS)
		}
		parts = append(parts, fmt.Sprintf("%d: %s", i+1, p99))
	}
	return strings.Join(parts, "; ")
}
