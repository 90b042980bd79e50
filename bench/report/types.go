// Package report turns bench results into a Markdown report, SVG charts and
// a JSON file. It knows nothing about how the numbers were measured.
package report

import (
	"slices"
	"time"
)

// Run is one whole bench run: the environment and every scenario.
type Run struct {
	Started   time.Time  `json:"started"`
	Host      string     `json:"host"`       // e.g. "linux/amd64, 2 CPUs, go1.26"
	Pinned    string     `json:"pinned"`     // how processes were pinned, or "no"
	Rate      float64    `json:"rate"`       // open-loop arrival rate, req/s
	OpenConns int        `json:"open_conns"` // connections in the open-loop phase
	Conns     int        `json:"conns"`      // closed-loop concurrency of the headline throughput
	Duration  string     `json:"duration"`   // open-loop duration per scenario and round
	Rounds    int        `json:"rounds"`     // interleaved rounds each scenario ran; numbers are medians over them
	Elapsed   string     `json:"elapsed"`    // wall time of the whole run, builds included
	Smoke     bool       `json:"smoke"`
	Notes     []string   `json:"notes,omitempty"`
	Scenarios []Scenario `json:"scenarios"`
	Goals     []Goal     `json:"goals"`
}

// Scenario is the outcome of one scenario.
type Scenario struct {
	Name     string `json:"name"`
	Title    string `json:"title"`
	Baseline string `json:"baseline,omitempty"` // scenario the ratios compare against
	Skipped  string `json:"skipped,omitempty"`  // why it did not run
	Stream   bool   `json:"stream,omitempty"`

	Open   *Phase       `json:"open,omitempty"`    // open loop at the run's rate
	Sweep  []SweepPoint `json:"sweep,omitempty"`   // closed loop per concurrency
	MaxRPS float64      `json:"max_rps,omitempty"` // closed loop at Run.Conns

	// Ratios to the baseline measured in the same run (0 = not computed).
	RPSRatio     float64 `json:"rps_ratio,omitempty"`
	AddedP50     Dur     `json:"added_p50_ns,omitempty"`
	AddedP99     Dur     `json:"added_p99_ns,omitempty"`
	AddedTTFTP50 Dur     `json:"added_ttft_p50_ns,omitempty"`
	AddedTTFTP99 Dur     `json:"added_ttft_p99_ns,omitempty"`

	// Proxy process cost over the scenario (zero when not measured).
	ProxyCPUPerReq Dur    `json:"proxy_cpu_per_req_ns,omitempty"`
	ProxyPeakRSS   uint64 `json:"proxy_peak_rss_bytes,omitempty"`

	// Cache and upstream accounting over the open-loop phase.
	HitRate       float64 `json:"hit_rate"`
	UpstreamCalls int64   `json:"upstream_calls"`
	UpstreamSaved float64 `json:"upstream_saved"` // 1 - upstream calls / requests

	// Rate limiter (only for the rate-limit scenario).
	Limit *Limit `json:"limit,omitempty"`

	// Load-test replay (only for the replay scenario).
	Replay *Replay `json:"replay,omitempty"`

	// Paired holds the scenario's throughput against each reference its goals compare it
	// with, measured in alternating windows; nil when not measured.
	Paired []Pairing `json:"paired,omitempty"`

	Notes []string `json:"notes,omitempty"`

	// Spread is the min–max of the headline numbers over the rounds; nil
	// for a single, unaggregated round.
	Spread *Spread `json:"spread,omitempty"`
	// Rounds holds each round's own numbers (without ratios) when the
	// scenario ran more than one round; the fields above are then medians.
	Rounds []Scenario `json:"rounds,omitempty"`
}

// Phase is one open-loop measurement.
type Phase struct {
	OfferedRPS  float64           `json:"offered_rps"`
	AchievedRPS float64           `json:"achieved_rps"`
	Requests    uint64            `json:"requests"`
	Errors      uint64            `json:"errors"`
	Status      map[int]uint64    `json:"status"`
	Cache       map[string]uint64 `json:"cache"`
	P50         Dur               `json:"p50_ns"`
	P90         Dur               `json:"p90_ns"`
	P99         Dur               `json:"p99_ns"`
	P999        Dur               `json:"p999_ns"`
	Max         Dur               `json:"max_ns"`
	ServiceP99  Dur               `json:"service_p99_ns"` // from actual send, not schedule
	TTFTP50     Dur               `json:"ttft_p50_ns,omitempty"`
	TTFTP99     Dur               `json:"ttft_p99_ns,omitempty"`
	TTFTP999    Dur               `json:"ttft_p999_ns,omitempty"`
	OKPerSecond []uint64          `json:"ok_per_second,omitempty"`
	FirstError  string            `json:"first_error,omitempty"`
}

// SweepPoint is one closed-loop measurement.
type SweepPoint struct {
	Conns  int     `json:"conns"`
	RPS    float64 `json:"rps"`
	P50    Dur     `json:"p50_ns"`
	P99    Dur     `json:"p99_ns"`
	Errors uint64  `json:"errors"`
	// RPSMin and RPSMax are the range over rounds (0 for a single round).
	RPSMin float64 `json:"rps_min,omitempty"`
	RPSMax float64 `json:"rps_max,omitempty"`
}

// Limit is what the rate-limit scenario found.
type Limit struct {
	ConfiguredRPM  float64 `json:"configured_rpm"`
	OfferedRPS     float64 `json:"offered_rps"`
	Admitted       uint64  `json:"admitted"`
	Expected       float64 `json:"expected"`       // bucket + refill × duration
	SteadyRPS      float64 `json:"steady_rps"`     // admitted per second after the bucket drained
	ConfiguredRPS  float64 `json:"configured_rps"` // rpm / 60
	Rejected       uint64  `json:"rejected"`
	RejectedWithRA uint64  `json:"rejected_with_retry_after"`
}

// Pairing compares throughput in alternating closed-loop windows at the run's
// closed-loop concurrency: the scenario's server and a reference take turns, the
// reference first in even pairs and second in odd ones, so that a machine
// growing steadily faster or slower favours neither. Both run throughout, so a
// slow spell of the shared machine lands on both sides of a pair rather than on
// one scenario's whole phase.
type Pairing struct {
	Ref    string    `json:"ref"`       // the reference scenario
	Window Dur       `json:"window_ns"` // length of each window
	Ratios []float64 `json:"ratios"`    // per pair: the scenario's req/s over the reference's
}

// Median returns the median of the pair ratios, 0 for none.
func (p *Pairing) Median() float64 { return median(p.Ratios) }

// Middle returns the quartiles of the pair ratios (the range of the middle
// half; min and max for fewer than four pairs).
func (p *Pairing) Middle() (lo, hi float64) {
	s := slices.Sorted(slices.Values(p.Ratios))
	if len(s) == 0 {
		return 0, 0
	}
	if len(s) < 4 {
		return s[0], s[len(s)-1]
	}
	return s[len(s)/4], s[(3*len(s)-1)/4]
}

// Replay is what the load-test scenario found: a streamed workload recorded through zest at
// low concurrency, then replayed from the recording (zest -replay) at a higher one.
type Replay struct {
	Prompts     int     `json:"prompts"`      // distinct streamed prompts recorded
	RecordConns int     `json:"record_conns"` // concurrency of the recording
	ReplayConns int     `json:"replay_conns"` // concurrency of the replay
	Speed       float64 `json:"speed"`        // replay.speed
	Streams     uint64  `json:"streams"`      // replayed streams measured
	// Recorded is the time to first token in the recording (ttft_ms: the upstream's first
	// event as zest saw it), one value per prompt.
	Recorded TTFT `json:"recorded"`
	// RecordClient is the time to first token the clients saw through zest while recording.
	RecordClient TTFT `json:"record_client"`
	// AtRecordConns is the time to first token of one replay of the workload at the recorded
	// concurrency: what replay's pacing gives before concurrency costs anything.
	AtRecordConns TTFT `json:"at_record_conns"`
	// Achieved is the time to first token the clients saw in the replay at ReplayConns.
	Achieved TTFT `json:"achieved"`
	// Ratio is Achieved / Recorded per quantile (1 = the recorded pace exactly).
	Ratio Ratios `json:"ratio"`
	// UpstreamCalls counts the requests the mock upstream got while the replaying zest ran
	// (its start, warm-up and measurement): replay must make none.
	UpstreamCalls int64 `json:"upstream_calls"`
}

// TTFT is a time-to-first-token distribution.
type TTFT struct {
	P50 Dur `json:"p50_ns"`
	P90 Dur `json:"p90_ns"`
	P99 Dur `json:"p99_ns"`
}

// Ratios are per-quantile ratios of two TTFT distributions.
type Ratios struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
}

// Over returns t / base per quantile (0 where base is 0).
func (t TTFT) Over(base TTFT) Ratios {
	div := func(a, b Dur) float64 {
		if b == 0 {
			return 0
		}
		return float64(a) / float64(b)
	}
	return Ratios{P50: div(t.P50, base.P50), P90: div(t.P90, base.P90), P99: div(t.P99, base.P99)}
}

// Goal is one target from PERFORMANCE.md, judged on this run's numbers.
type Goal struct {
	Name     string `json:"name"`
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Met      string `json:"met"` // "yes", "no" or "n/a"
}

// Dur is a duration that prints in the unit a reader wants (µs or ms).
type Dur time.Duration

// String formats d with three significant digits: 85µs, 1.23ms, 2.10s.
func (d Dur) String() string {
	v := time.Duration(d)
	switch {
	case v == 0:
		return "0"
	case v < 0:
		return "-" + Dur(-v).String()
	case v < 10*time.Microsecond:
		return trim(float64(v)/1e3, 2) + "µs"
	case v < time.Millisecond:
		return trim(float64(v)/1e3, 0) + "µs"
	case v < time.Second:
		return trim(float64(v)/1e6, 2) + "ms"
	default:
		return trim(float64(v)/1e9, 2) + "s"
	}
}
