package report

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// round builds one round's result of a scenario.
func round(p99, ttft99 time.Duration, maxRPS float64, cpu time.Duration, rss uint64, hits uint64) Scenario {
	return Scenario{
		Name: "zest-hit", Title: "hit", Baseline: "direct",
		Open: &Phase{OfferedRPS: 500, AchievedRPS: 499, Requests: 1000, Errors: 1,
			Status: map[int]uint64{200: 999}, Cache: map[string]uint64{"HIT+exact": hits, "MISS": 1000 - hits},
			P50: Dur(p99 / 4), P99: Dur(p99), P999: Dur(2 * p99), TTFTP99: Dur(ttft99),
			OKPerSecond: []uint64{uint64(maxRPS)}},
		Sweep:  []SweepPoint{{Conns: 1, RPS: maxRPS / 3, P99: Dur(p99)}, {Conns: 50, RPS: maxRPS, P99: Dur(2 * p99), Errors: 2}},
		MaxRPS: maxRPS, ProxyCPUPerReq: Dur(cpu), ProxyPeakRSS: rss, HitRate: float64(hits) / 1000, UpstreamCalls: 3,
	}
}

func TestAggregate(t *testing.T) {
	ms, us := time.Millisecond, time.Microsecond
	tests := []struct {
		name       string
		rounds     []Scenario
		wantP99    Dur
		wantRPS    float64
		wantCPU    Dur
		wantRSS    uint64
		wantSpread Spread
		wantReqs   uint64
		wantNote   string
	}{
		{
			name: "three rounds: the middle value, whatever its round",
			rounds: []Scenario{
				round(8*ms, 0, 5000, 90*us, 30<<20, 990),
				round(3*ms, 0, 9000, 70*us, 40<<20, 1000),
				round(5*ms, 0, 6000, 75*us, 10<<20, 995),
			},
			wantP99: Dur(5 * ms), wantRPS: 6000, wantCPU: Dur(75 * us), wantRSS: 30 << 20, wantReqs: 3000,
			wantSpread: Spread{Rounds: 3, RPSMin: 5000, RPSMax: 9000, P99Min: Dur(3 * ms), P99Max: Dur(8 * ms)},
		},
		{
			name: "two rounds: the mean of the two",
			rounds: []Scenario{
				round(2*ms, 0, 4000, 60*us, 10<<20, 1000),
				round(4*ms, 0, 6000, 100*us, 30<<20, 1000),
			},
			wantP99: Dur(3 * ms), wantRPS: 5000, wantCPU: Dur(80 * us), wantRSS: 20 << 20, wantReqs: 2000,
			wantSpread: Spread{Rounds: 2, RPSMin: 4000, RPSMax: 6000, P99Min: Dur(2 * ms), P99Max: Dur(4 * ms)},
		},
		{
			name: "a skipped round is left out and noted",
			rounds: []Scenario{
				round(2*ms, 0, 4000, 60*us, 10<<20, 1000),
				{Name: "zest-hit", Skipped: "zest exited"},
				round(6*ms, 0, 8000, 100*us, 30<<20, 1000),
			},
			wantP99: Dur(4 * ms), wantRPS: 6000, wantCPU: Dur(80 * us), wantRSS: 20 << 20, wantReqs: 2000,
			wantSpread: Spread{Rounds: 2, RPSMin: 4000, RPSMax: 8000, P99Min: Dur(2 * ms), P99Max: Dur(6 * ms)},
			wantNote:   "round 2 skipped: zest exited",
		},
		{
			name: "a round without closed-loop throughput does not drag the median to zero",
			rounds: []Scenario{
				round(2*ms, 0, 4000, 60*us, 10<<20, 1000),
				round(3*ms, 0, 0, 60*us, 10<<20, 1000),
				round(4*ms, 0, 6000, 60*us, 10<<20, 1000),
			},
			wantP99: Dur(3 * ms), wantRPS: 5000, wantCPU: Dur(60 * us), wantRSS: 10 << 20, wantReqs: 3000,
			wantSpread: Spread{Rounds: 3, RPSMin: 4000, RPSMax: 6000, P99Min: Dur(2 * ms), P99Max: Dur(4 * ms)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Aggregate(tc.rounds)
			if got.Name != "zest-hit" || got.Baseline != "direct" || got.Skipped != "" {
				t.Fatalf("identity lost: %+v", got)
			}
			if got.Open.P99 != tc.wantP99 || got.Open.P50 != tc.wantP99/4 || got.Open.P999 != 2*tc.wantP99 {
				t.Errorf("p50/p99/p99.9 = %v/%v/%v, want medians %v/%v/%v", got.Open.P50, got.Open.P99, got.Open.P999,
					tc.wantP99/4, tc.wantP99, 2*tc.wantP99)
			}
			if got.MaxRPS != tc.wantRPS || got.ProxyCPUPerReq != tc.wantCPU || got.ProxyPeakRSS != tc.wantRSS {
				t.Errorf("req/s %v, CPU/req %v, RSS %d; want %v, %v, %d", got.MaxRPS, got.ProxyCPUPerReq, got.ProxyPeakRSS,
					tc.wantRPS, tc.wantCPU, tc.wantRSS)
			}
			if got.Spread == nil || *got.Spread != tc.wantSpread {
				t.Errorf("spread %+v, want %+v", got.Spread, tc.wantSpread)
			}
			if got.Open.Requests != tc.wantReqs || got.Open.Status[200] != tc.wantReqs-tc.wantReqs/1000 {
				t.Errorf("requests %d, status %v: counts must be summed to %d", got.Open.Requests, got.Open.Status, tc.wantReqs)
			}
			if got.Open.TTFTP99 != 0 {
				t.Errorf("TTFT p99 %v for a scenario that never measured it", got.Open.TTFTP99)
			}
			if n := len(got.Sweep); n != 2 || got.Sweep[1].Conns != 50 || got.Sweep[1].RPS != tc.wantRPS ||
				got.Sweep[1].RPSMin != tc.wantSpread.RPSMin || got.Sweep[1].RPSMax != tc.wantSpread.RPSMax {
				t.Errorf("sweep %+v: want the median point per concurrency with its range", got.Sweep)
			}
			if len(got.Rounds) != len(tc.rounds) {
				t.Errorf("kept %d rounds, want %d", len(got.Rounds), len(tc.rounds))
			}
			if tc.wantNote != "" && !strings.Contains(strings.Join(got.Notes, "\n"), tc.wantNote) {
				t.Errorf("notes %q lack %q", got.Notes, tc.wantNote)
			}
		})
	}
}

func TestAggregateEdges(t *testing.T) {
	t.Run("one round keeps its numbers and no round list", func(t *testing.T) {
		r := round(3*time.Millisecond, 0, 7000, 0, 0, 1000)
		got := Aggregate([]Scenario{r})
		if got.Open.P99 != r.Open.P99 || got.MaxRPS != 7000 || got.Rounds != nil || got.Sweep[0].RPSMin != 0 {
			t.Errorf("%+v", got)
		}
	})
	t.Run("skipped in every round", func(t *testing.T) {
		got := Aggregate([]Scenario{{Name: "nginx-hit", Skipped: "nginx is not installed"}, {Name: "nginx-hit", Skipped: "nginx is not installed"}})
		if got.Skipped != "nginx is not installed" || got.Open != nil || got.Spread != nil {
			t.Errorf("%+v", got)
		}
	})
	t.Run("streams: TTFT medians and spread", func(t *testing.T) {
		ms := time.Millisecond
		got := Aggregate([]Scenario{round(ms, 5*ms, 1, 0, 0, 0), round(ms, 2*ms, 1, 0, 0, 0), round(ms, 9*ms, 1, 0, 0, 0)})
		if got.Open.TTFTP99 != Dur(5*ms) || got.Spread.TTFTP99Min != Dur(2*ms) || got.Spread.TTFTP99Max != Dur(9*ms) {
			t.Errorf("TTFT p99 %v, spread %+v", got.Open.TTFTP99, got.Spread)
		}
	})
	t.Run("rate limit: the median round by admitted requests", func(t *testing.T) {
		lim := func(admitted uint64, steady float64, ok []uint64) Scenario {
			return Scenario{Name: "zest-ratelimit", Open: &Phase{OKPerSecond: ok, Requests: 4000},
				Limit: &Limit{Admitted: admitted, SteadyRPS: steady, Expected: 640}}
		}
		got := Aggregate([]Scenario{lim(700, 12, []uint64{1}), lim(610, 9, []uint64{2}), lim(640, 10, []uint64{3})})
		if got.Limit.Admitted != 640 || got.Limit.SteadyRPS != 10 || got.Open.OKPerSecond[0] != 3 {
			t.Errorf("limit %+v, timeline %v: want round 3 whole", got.Limit, got.Open.OKPerSecond)
		}
	})
}

func TestAggregateReplay(t *testing.T) {
	ms := func(v int) Dur { return Dur(time.Duration(v) * time.Millisecond) }
	rnd := func(achieved50, achieved99 int, calls int64) Scenario {
		return Scenario{Name: "zest-replay", Stream: true, Open: &Phase{Requests: 100, Status: map[int]uint64{200: 100}},
			Replay: &Replay{Prompts: 16, RecordConns: 2, ReplayConns: 200, Speed: 1, Streams: 100, UpstreamCalls: calls,
				Recorded:      TTFT{P50: ms(100), P90: ms(180), P99: ms(190)},
				RecordClient:  TTFT{P50: ms(101), P90: ms(181), P99: ms(191)},
				AtRecordConns: TTFT{P50: ms(102), P90: ms(182), P99: ms(192)},
				Achieved:      TTFT{P50: ms(achieved50), P90: ms(190), P99: ms(achieved99)}}}
	}
	got := Aggregate([]Scenario{rnd(130, 300, 0), rnd(110, 200, 0), rnd(120, 209, 1)})
	r := got.Replay
	if r == nil {
		t.Fatal("replay result lost")
	}
	if r.Achieved != (TTFT{P50: ms(120), P90: ms(190), P99: ms(209)}) || r.Recorded.P50 != ms(100) ||
		r.AtRecordConns.P99 != ms(192) || r.RecordClient.P90 != ms(181) {
		t.Errorf("distributions %+v: want the median of each quantile", r)
	}
	if r.Ratio.P50 != 1.2 || r.Ratio.P99 != 1.1 || r.Streams != 300 || r.UpstreamCalls != 1 || r.ReplayConns != 200 {
		t.Errorf("ratio %+v, streams %d, calls %d: want ratios of the medians and summed counts", r.Ratio, r.Streams, r.UpstreamCalls)
	}
	if Aggregate([]Scenario{round(time.Millisecond, 0, 1, 0, 0, 0)}).Replay != nil {
		t.Error("a scenario without a replay result got one")
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{4}, 4},
		{[]float64{9, 1}, 5},
		{[]float64{9, 1, 4}, 4},
		{[]float64{3, 1, 4, 1}, 2},
	}
	for _, tc := range tests {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestAggregatePaired: every round's pairs are pooled per reference, in the order the
// references first appear, and the median and middle half read off the pool.
func TestAggregatePaired(t *testing.T) {
	ok := &Phase{Status: map[int]uint64{200: 1}}
	w := Dur(250 * time.Millisecond)
	rounds := []Scenario{
		{Name: "zest-miss-exact", Open: ok, Paired: []Pairing{{Ref: "revproxy", Window: w, Ratios: []float64{0.9, 1.1}}, {Ref: "nginx-pass", Window: w, Ratios: []float64{0.5}}}},
		{Name: "zest-miss-exact", Skipped: "no zest"},
		{Name: "zest-miss-exact", Open: ok, Paired: []Pairing{{Ref: "revproxy", Window: w, Ratios: []float64{1.0, 1.3}}}},
	}
	got := Aggregate(rounds).Paired
	if len(got) != 2 || got[0].Ref != "revproxy" || got[1].Ref != "nginx-pass" {
		t.Fatalf("pooled %+v", got)
	}
	if !slices.Equal(got[0].Ratios, []float64{0.9, 1.1, 1.0, 1.3}) || got[0].Window != w {
		t.Errorf("revproxy pool %+v", got[0])
	}
	if m := got[0].Median(); m != 1.05 {
		t.Errorf("median %v, want 1.05", m)
	}
	if lo, hi := got[0].Middle(); lo != 1.0 || hi != 1.1 {
		t.Errorf("middle half %v–%v, want 1–1.1", lo, hi)
	}
	if lo, hi := got[1].Middle(); lo != 0.5 || hi != 0.5 {
		t.Errorf("one pair: %v–%v", lo, hi)
	}
}
