package report

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sampleRun() *Run {
	open := func(p50, p99 time.Duration) *Phase {
		return &Phase{OfferedRPS: 500, AchievedRPS: 499, Requests: 2000, Status: map[int]uint64{200: 2000},
			Cache: map[string]uint64{"HIT+exact": 1990, "MISS": 10},
			P50:   Dur(p50), P90: Dur(p50 * 2), P99: Dur(p99), P999: Dur(p99 * 2), Max: Dur(p99 * 3), ServiceP99: Dur(p99)}
	}
	sweep := []SweepPoint{{Conns: 1, RPS: 9000}, {Conns: 4, RPS: 21000}, {Conns: 50, RPS: 30000}}
	stream := open(200*time.Microsecond, time.Millisecond)
	stream.TTFTP50, stream.TTFTP99, stream.TTFTP999 = Dur(150*time.Microsecond), Dur(800*time.Microsecond), Dur(2*time.Millisecond)
	ok := []uint64{1200, 20, 20, 21}
	return &Run{
		Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Host: "linux/amd64, 2 CPUs", Pinned: "mock+proxy on CPU 1",
		Rate: 500, OpenConns: 16, Conns: 50, Duration: "4s", Rounds: 3, Elapsed: "4m10s",
		Scenarios: []Scenario{
			{Name: "direct", Title: "direct to the mock", Baseline: "direct", Open: open(70*time.Microsecond, 260*time.Microsecond), Sweep: sweep, MaxRPS: 30000},
			{Name: "zest-hit", Title: "exact hit", Baseline: "direct", Open: open(50*time.Microsecond, 160*time.Microsecond), Sweep: sweep, MaxRPS: 29000,
				RPSRatio: 0.97, AddedP99: Dur(-100 * time.Microsecond), ProxyCPUPerReq: Dur(12 * time.Microsecond), ProxyPeakRSS: 30 << 20, HitRate: 0.995,
				Spread: &Spread{Rounds: 3, RPSMin: 26000, RPSMax: 31000, P99Min: Dur(140 * time.Microsecond), P99Max: Dur(250 * time.Microsecond)}},
			{Name: "zest-stream-miss", Title: "streamed miss", Baseline: "direct-stream", Stream: true, Open: stream, AddedTTFTP99: Dur(300 * time.Microsecond),
				Spread: &Spread{Rounds: 3, P99Min: Dur(900 * time.Microsecond), P99Max: Dur(3 * time.Millisecond),
					TTFTP99Min: Dur(700 * time.Microsecond), TTFTP99Max: Dur(900 * time.Microsecond)}},
			{Name: "nginx-hit", Title: "nginx proxy_cache hit", Skipped: "nginx not installed"},
			{Name: "zest-replay", Title: "load-test replay", Stream: true, Open: &Phase{Requests: 900, Status: map[int]uint64{200: 900}},
				Replay: &Replay{Prompts: 16, RecordConns: 2, ReplayConns: 200, Speed: 1, Streams: 900,
					Recorded: TTFT{P50: Dur(100 * time.Millisecond), P90: Dur(180 * time.Millisecond), P99: Dur(190 * time.Millisecond)},
					Achieved: TTFT{P50: Dur(110 * time.Millisecond), P90: Dur(180 * time.Millisecond), P99: Dur(209 * time.Millisecond)},
					Ratio:    Ratios{P50: 1.1, P90: 1, P99: 1.1}}},
			{Name: "ratelimit", Title: "limiter <overload> & more", Open: &Phase{OKPerSecond: ok, Requests: 4000},
				Limit: &Limit{ConfiguredRPM: 1200, ConfiguredRPS: 20, OfferedRPS: 1000, Admitted: 1261, Expected: 1280, SteadyRPS: 20.3}},
		},
		Goals: []Goal{{Name: "exact hit vs nginx", Target: "≥ 1.0×", Measured: "0.97×", Met: "no"}, {Name: "miss p99", Target: "≤ 150µs", Measured: "+40µs", Met: "yes"}},
	}
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	run := sampleRun()
	if err := Write(dir, run); err != nil {
		t.Fatal(err)
	}
	for _, name := range Files {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Run(name, func(t *testing.T) {
			switch filepath.Ext(name) {
			case ".svg":
				dec := xml.NewDecoder(strings.NewReader(string(b)))
				elems := 0
				for {
					tok, err := dec.Token()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Fatalf("%s is not XML: %v", name, err)
					}
					if _, ok := tok.(xml.StartElement); ok {
						elems++
					}
				}
				if elems < 10 {
					t.Errorf("%s has only %d elements", name, elems)
				}
			case ".json":
				var back Run
				if err := json.Unmarshal(b, &back); err != nil {
					t.Fatal(err)
				}
				if len(back.Scenarios) != len(run.Scenarios) || back.Scenarios[1].Open.P99 != run.Scenarios[1].Open.P99 ||
					back.Scenarios[4].Replay == nil || *back.Scenarios[4].Replay != *run.Scenarios[4].Replay {
					t.Errorf("JSON round trip lost data: %+v", back.Scenarios)
				}
			case ".md":
				md := string(b)
				for _, want := range []string{
					"| zest-hit | 50µs | 160µs | 140µs–250µs | 320µs | -100µs | 29,000 | 26,000–31,000 | 0.97 | HIT+exact 100%, MISS 0% | 12µs | 30.0 MiB |",
					"| direct | 70µs | 260µs | – | 520µs |  | 30,000 | – | 1.00 |",
					"| zest-stream-miss | TTFT 150µs | TTFT 800µs | 700µs–900µs | TTFT 2.00ms | TTFT +300µs |",
					"median of 3 interleaved rounds", "wall time 4m10s",
					"| nginx-hit | skipped: nginx not installed",
					"| exact hit vs nginx | ≥ 1.0× | 0.97× | ❌ |",
					"| miss p99 | ≤ 150µs | +40µs | ✅ |",
					"steady admitted rate 20.3/s vs configured 20.0/s",
					"16 streamed prompts recorded over 2 connections, replayed over 200 (100×) at speed 1; 900 replayed streams measured; upstream calls while replaying: 0",
					"| recorded (the file's `ttft_ms`) | 100.00ms / 180.00ms / 190.00ms |",
					"| clients, replay over 200 connections | 110.00ms / 180.00ms / 209.00ms |",
					"| achieved ÷ recorded | 1.10 / 1.00 / 1.10 |",
					"- closed loop, – req/s achieved, 900 requests",
					"![latency percentiles per scenario](latency.svg)",
				} {
					if !strings.Contains(md, want) {
						t.Errorf("report.md lacks %q", want)
					}
				}
			}
		})
	}
	// Names with markup are escaped in SVG.
	b, _ := os.ReadFile(filepath.Join(dir, "latency.svg"))
	if strings.Contains(string(b), "<overload>") {
		t.Error("unescaped text in SVG")
	}
}

func TestDurString(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0"},
		{1500, "1.50µs"},
		{85 * time.Microsecond, "85µs"},
		{1234 * time.Microsecond, "1.23ms"},
		{2100 * time.Millisecond, "2.10s"},
		{-40 * time.Microsecond, "-40µs"},
	}
	for _, tc := range tests {
		if got := Dur(tc.d).String(); got != tc.want {
			t.Errorf("Dur(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
