// Package report turns bench results into a Markdown report, SVG charts and
// a JSON file. It knows nothing about how the numbers were measured.
package report

import "time"

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
