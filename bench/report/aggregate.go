package report

import (
	"fmt"
	"slices"
)

// Spread is the range of a scenario's headline numbers over the rounds that
// ran, so a reader sees how much the medians can be trusted.
type Spread struct {
	Rounds     int     `json:"rounds"`                    // rounds that ran (skipped rounds do not count)
	RPSMin     float64 `json:"rps_min,omitempty"`         // closed loop at Run.Conns
	RPSMax     float64 `json:"rps_max,omitempty"`         //
	P99Min     Dur     `json:"p99_min_ns,omitempty"`      // open-loop latency p99
	P99Max     Dur     `json:"p99_max_ns,omitempty"`      //
	TTFTP99Min Dur     `json:"ttft_p99_min_ns,omitempty"` // open-loop time to first token p99 (streams)
	TTFTP99Max Dur     `json:"ttft_p99_max_ns,omitempty"` //
}

// Aggregate folds the rounds of one scenario into one Scenario: every
// latency percentile, throughput, CPU per request, peak RSS and rate is the
// median over the rounds that ran (a zero, meaning "not measured", is left
// out, except for hit rate and upstream saving where zero is a result);
// request, error, status and cache counts and upstream calls are summed; the
// rate-limit result and the per-second timeline come from the median round
// (by admitted requests, else by closed-loop req/s); Spread holds the
// min–max; Rounds keeps every round's own numbers when there is more than
// one. Ratios to the baseline are left for the caller to compute from the
// medians. A scenario skipped in every round is returned skipped; skipped
// rounds among others become notes.
func Aggregate(rounds []Scenario) Scenario {
	if len(rounds) == 0 {
		return Scenario{}
	}
	var ran []*Scenario
	var notes []string
	for i := range rounds {
		r := &rounds[i]
		if r.Skipped != "" || r.Open == nil {
			if r.Skipped != "" {
				notes = append(notes, fmt.Sprintf("round %d skipped: %s", i+1, r.Skipped))
			}
			continue
		}
		ran = append(ran, r)
	}
	first := rounds[0]
	if len(ran) > 0 {
		first = *ran[0]
	}
	out := Scenario{Name: first.Name, Title: first.Title, Baseline: first.Baseline, Stream: first.Stream, Skipped: first.Skipped}
	if len(rounds) > 1 {
		out.Rounds = slices.Clone(rounds)
	}
	for _, r := range rounds {
		for _, n := range r.Notes {
			if !slices.Contains(out.Notes, n) {
				out.Notes = append(out.Notes, n)
			}
		}
	}
	if len(ran) == 0 {
		return out
	}
	out.Notes = append(out.Notes, notes...)

	f := func(get func(*Scenario) float64) []float64 {
		v := make([]float64, len(ran))
		for i, r := range ran {
			v[i] = get(r)
		}
		return v
	}
	d := func(get func(*Phase) Dur) Dur {
		return Dur(medianNonZero(f(func(s *Scenario) float64 { return float64(get(s.Open)) })))
	}
	rep := ran[medianIndex(f(func(s *Scenario) float64 { return s.MaxRPS }))]
	if rep.Limit != nil {
		rep = ran[medianIndex(f(func(s *Scenario) float64 {
			if s.Limit == nil {
				return 0
			}
			return float64(s.Limit.Admitted)
		}))]
	}

	open := &Phase{
		OfferedRPS:  medianNonZero(f(func(s *Scenario) float64 { return s.Open.OfferedRPS })),
		AchievedRPS: medianNonZero(f(func(s *Scenario) float64 { return s.Open.AchievedRPS })),
		Status:      map[int]uint64{}, Cache: map[string]uint64{},
		P50: d(func(p *Phase) Dur { return p.P50 }), P90: d(func(p *Phase) Dur { return p.P90 }),
		P99: d(func(p *Phase) Dur { return p.P99 }), P999: d(func(p *Phase) Dur { return p.P999 }),
		Max: d(func(p *Phase) Dur { return p.Max }), ServiceP99: d(func(p *Phase) Dur { return p.ServiceP99 }),
		TTFTP50: d(func(p *Phase) Dur { return p.TTFTP50 }), TTFTP99: d(func(p *Phase) Dur { return p.TTFTP99 }),
		TTFTP999:    d(func(p *Phase) Dur { return p.TTFTP999 }),
		OKPerSecond: slices.Clone(rep.Open.OKPerSecond),
	}
	for _, r := range ran {
		open.Requests += r.Open.Requests
		open.Errors += r.Open.Errors
		for k, v := range r.Open.Status {
			open.Status[k] += v
		}
		for k, v := range r.Open.Cache {
			open.Cache[k] += v
		}
		if open.FirstError == "" {
			open.FirstError = r.Open.FirstError
		}
		out.UpstreamCalls += r.UpstreamCalls
	}
	out.Open = open
	out.Sweep = aggregateSweep(ran)
	out.MaxRPS = medianNonZero(f(func(s *Scenario) float64 { return s.MaxRPS }))
	out.ProxyCPUPerReq = Dur(medianNonZero(f(func(s *Scenario) float64 { return float64(s.ProxyCPUPerReq) })))
	out.ProxyPeakRSS = uint64(medianNonZero(f(func(s *Scenario) float64 { return float64(s.ProxyPeakRSS) })))
	out.HitRate = median(f(func(s *Scenario) float64 { return s.HitRate }))
	out.UpstreamSaved = median(f(func(s *Scenario) float64 { return s.UpstreamSaved }))
	if rep.Limit != nil {
		l := *rep.Limit
		out.Limit = &l
	}
	out.Replay = aggregateReplay(ran)
	out.Paired = aggregatePaired(ran)

	sp := &Spread{Rounds: len(ran)}
	sp.RPSMin, sp.RPSMax = minMaxNonZero(f(func(s *Scenario) float64 { return s.MaxRPS }))
	lo, hi := minMaxNonZero(f(func(s *Scenario) float64 { return float64(s.Open.P99) }))
	sp.P99Min, sp.P99Max = Dur(lo), Dur(hi)
	lo, hi = minMaxNonZero(f(func(s *Scenario) float64 { return float64(s.Open.TTFTP99) }))
	sp.TTFTP99Min, sp.TTFTP99Max = Dur(lo), Dur(hi)
	out.Spread = sp
	return out
}

// aggregateSweep returns the median closed-loop point per concurrency, in
// the order the concurrencies first appear, with the req/s min–max.
func aggregateSweep(ran []*Scenario) []SweepPoint {
	var order []int
	by := map[int][]SweepPoint{}
	for _, r := range ran {
		for _, p := range r.Sweep {
			if _, ok := by[p.Conns]; !ok {
				order = append(order, p.Conns)
			}
			by[p.Conns] = append(by[p.Conns], p)
		}
	}
	var out []SweepPoint
	for _, c := range order {
		pts := by[c]
		get := func(g func(SweepPoint) float64) []float64 {
			v := make([]float64, len(pts))
			for i, p := range pts {
				v[i] = g(p)
			}
			return v
		}
		rpsV := get(func(p SweepPoint) float64 { return p.RPS })
		pt := SweepPoint{Conns: c, RPS: medianNonZero(rpsV),
			P50: Dur(medianNonZero(get(func(p SweepPoint) float64 { return float64(p.P50) }))),
			P99: Dur(medianNonZero(get(func(p SweepPoint) float64 { return float64(p.P99) })))}
		if len(pts) > 1 {
			pt.RPSMin, pt.RPSMax = minMaxNonZero(rpsV)
		}
		for _, p := range pts {
			pt.Errors += p.Errors
		}
		out = append(out, pt)
	}
	return out
}

// aggregateReplay folds the load-test replay results of the rounds: every quantile is the
// median over the rounds, the ratios are taken between those medians, streams and upstream
// calls are summed. Nil when no round has one.
func aggregateReplay(ran []*Scenario) *Replay {
	var rs []*Replay
	for _, s := range ran {
		if s.Replay != nil {
			rs = append(rs, s.Replay)
		}
	}
	if len(rs) == 0 {
		return nil
	}
	dist := func(get func(*Replay) TTFT) TTFT {
		q := func(pick func(TTFT) Dur) Dur {
			v := make([]float64, len(rs))
			for i, r := range rs {
				v[i] = float64(pick(get(r)))
			}
			return Dur(medianNonZero(v))
		}
		return TTFT{P50: q(func(t TTFT) Dur { return t.P50 }), P90: q(func(t TTFT) Dur { return t.P90 }),
			P99: q(func(t TTFT) Dur { return t.P99 })}
	}
	out := *rs[0]
	out.Streams, out.UpstreamCalls = 0, 0
	for _, r := range rs {
		out.Streams += r.Streams
		out.UpstreamCalls += r.UpstreamCalls
	}
	out.Recorded = dist(func(r *Replay) TTFT { return r.Recorded })
	out.RecordClient = dist(func(r *Replay) TTFT { return r.RecordClient })
	out.AtRecordConns = dist(func(r *Replay) TTFT { return r.AtRecordConns })
	out.Achieved = dist(func(r *Replay) TTFT { return r.Achieved })
	out.Ratio = out.Achieved.Over(out.Recorded)
	return &out
}

// aggregatePaired pools every round's pair ratios per reference, in the order
// the references first appear.
func aggregatePaired(ran []*Scenario) []Pairing {
	var out []Pairing
	for _, r := range ran {
		for _, p := range r.Paired {
			i := slices.IndexFunc(out, func(q Pairing) bool { return q.Ref == p.Ref })
			if i < 0 {
				out = append(out, Pairing{Ref: p.Ref, Window: p.Window})
				i = len(out) - 1
			}
			out[i].Ratios = append(out[i].Ratios, p.Ratios...)
		}
	}
	return out
}

// median returns the median of v (the mean of the two middle values for an
// even count), 0 for none.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(v))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// medianNonZero is median over the values that are not zero.
func medianNonZero(v []float64) float64 {
	return median(slices.DeleteFunc(slices.Clone(v), func(x float64) bool { return x == 0 }))
}

// minMaxNonZero returns the smallest and largest non-zero value, 0, 0 for none.
func minMaxNonZero(v []float64) (lo, hi float64) {
	nz := slices.DeleteFunc(slices.Clone(v), func(x float64) bool { return x == 0 })
	if len(nz) == 0 {
		return 0, 0
	}
	return slices.Min(nz), slices.Max(nz)
}

// medianIndex returns the index of the median element of v (the lower of
// the two middle ones for an even count).
func medianIndex(v []float64) int {
	idx := make([]int, len(v))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case v[a] < v[b]:
			return -1
		case v[a] > v[b]:
			return 1
		}
		return 0
	})
	return idx[(len(idx)-1)/2]
}
