package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zest-proxy/zest/bench/load"
	"github.com/zest-proxy/zest/bench/report"
)

func TestScenarioBodies(t *testing.T) {
	for _, s := range scenarios() {
		t.Run(s.name, func(t *testing.T) {
			for _, i := range []uint64{0, 1, 7, phaseStride + 3, 1 << 62} {
				var v struct {
					Model    string `json:"model"`
					Messages []struct {
						Role, Content string
					} `json:"messages"`
					Stream       bool            `json:"stream"`
					CacheControl json.RawMessage `json:"cache_control"`
				}
				b := s.body(i)
				if err := json.Unmarshal(b, &v); err != nil {
					t.Fatalf("body %d is not JSON: %v\n%s", i, err, b)
				}
				if v.Model == "" || len(v.Messages) != 2 || v.Messages[1].Content == "" || v.Stream != s.stream {
					t.Fatalf("body %d: %+v", i, v)
				}
				if (len(v.CacheControl) > 0) != strings.Contains(s.extra, "cache_control") {
					t.Errorf("cache_control mismatch in %s", b)
				}
			}
			req := string(s.gen("127.0.0.1:1", 0)(0, nil))
			if !strings.HasPrefix(req, "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:1\r\n") ||
				!strings.Contains(req, "\r\n"+authHeader+"\r\n") {
				t.Errorf("request head %q", req[:min(len(req), 200)])
			}
		})
	}
}

func TestPromptsAcrossPhasesAreUnique(t *testing.T) {
	seen := map[string]uint64{}
	for phase := uint64(0); phase < 4; phase++ {
		for i := uint64(0); i < 500; i++ {
			n := phase*phaseStride + i
			for name, p := range map[string]func(uint64) string{"unique": unique, "semantic": semVariant, "words": uniqueWords} {
				k := name + p(n)
				if prev, dup := seen[k]; dup {
					t.Fatalf("%s prompt %d repeats prompt %d: %q", name, n, prev, p(n))
				}
				seen[k] = n
			}
		}
	}
}

// TestUniqueWordsHaveNoNumber: zest-miss-words's prompts share one semantic partition only if
// none carries a digit (the verifier's signature is the prompt's numbers).
func TestUniqueWordsHaveNoNumber(t *testing.T) {
	for i := uint64(0); i < 2000; i++ {
		if p := uniqueWords(phaseStride*3 + i); strings.ContainsAny(p, "0123456789") || !strings.HasPrefix(p, fixedPrompt) {
			t.Fatalf("prompt %d: %q", i, p)
		}
	}
}

func TestSemanticVariantsKeepTheWords(t *testing.T) {
	base := strings.Fields(semBase)
	for _, i := range []uint64{0, 1, 2, 12345, phaseStride + 9} {
		v := semVariant(i)
		if v == semBase {
			t.Fatalf("variant %d equals the warmed prompt", i)
		}
		got := strings.Fields(strings.ToLower(v))
		if strings.Join(got, " ") != strings.Join(base, " ") {
			t.Errorf("variant %d changes words: %q", i, v)
		}
	}
}

func TestZipfIsSkewed(t *testing.T) {
	ranks := zipfRanks(10000)
	counts := map[uint64]int{}
	for _, r := range ranks {
		if r >= zipfPrompts {
			t.Fatalf("rank %d out of range", r)
		}
		counts[r]++
	}
	if counts[0] < 1000 || len(counts) < 200 {
		t.Errorf("not Zipf-like: top prompt %d times, %d distinct", counts[0], len(counts))
	}
}

func TestLimitOf(t *testing.T) {
	// 1200/min = 20/s, offered 1000/s for 6 s: the bucket (1200) drains after
	// 1200/980 ≈ 1.2 s, so seconds 3..5 are steady state.
	p := &report.Phase{Status: map[int]uint64{200: 1300, 429: 4700}, OKPerSecond: []uint64{980, 240, 20, 21, 19, 20}}
	l := limitOf(p, 1200, 1000, 6*time.Second, 4700)
	if l.Expected != 1200+20*6 {
		t.Errorf("expected %v, want 1320", l.Expected)
	}
	if l.SteadyRPS != 20 {
		t.Errorf("steady %v, want 20 (mean of seconds 3-5)", l.SteadyRPS)
	}
	if l.Admitted != 1300 || l.Rejected != 4700 {
		t.Errorf("limit %+v", l)
	}
}

func TestGoals(t *testing.T) {
	ph := func(p99 time.Duration) *report.Phase {
		return &report.Phase{P99: report.Dur(p99), TTFTP50: report.Dur(p99 / 2), TTFTP99: report.Dur(p99)}
	}
	rep := &report.Run{Rate: 500, Scenarios: []report.Scenario{
		{Name: "direct", Open: ph(200 * time.Microsecond), MaxRPS: 20000},
		{Name: "zest-miss", Baseline: "direct", Open: ph(320 * time.Microsecond), MaxRPS: 8000},
		{Name: "zest-miss-exact", Baseline: "direct", Open: ph(300 * time.Microsecond), MaxRPS: 7500},
		{Name: "revproxy", Baseline: "direct", Open: ph(400 * time.Microsecond), MaxRPS: 7000},
		{Name: "zest-hit", Baseline: "direct", Open: ph(150 * time.Microsecond), MaxRPS: 18000},
		{Name: "nginx-hit", Baseline: "direct", Open: ph(150 * time.Microsecond), MaxRPS: 20000},
		{Name: "zest-bypass", Baseline: "direct", Open: ph(300 * time.Microsecond), MaxRPS: 8000},
		{Name: "nginx-pass", Skipped: "nginx is not installed"},
	}}
	compare(rep)
	if got := rep.Scenarios[1].AddedP99; got != report.Dur(120*time.Microsecond) {
		t.Errorf("added p99 %v", got)
	}
	if got := rep.Scenarios[1].RPSRatio; got != 0.4 {
		t.Errorf("rps ratio %v", got)
	}
	met := map[string]string{}
	for _, g := range goals(rep) {
		met[g.Name] = g.Met
		if g.Name == "zest miss: added p99 over direct at low load" && !strings.HasSuffix(g.Measured, "; httputil.ReverseProxy adds +200µs in this run)") {
			t.Errorf("added p99 goal does not show the reference: %q", g.Measured)
		}
	}
	want := map[string]string{
		"zest miss: added p99 over direct at low load":                                    "yes",
		"zest exact hit throughput vs nginx proxy_cache hit":                              "no",
		"zest miss (exact cache only) throughput vs bare httputil.ReverseProxy":           "yes",
		"zest miss (exact cache only) throughput vs nginx proxy_pass":                     "n/a",
		"zest miss (defaults: exact + semantic) throughput vs bare httputil.ReverseProxy": "yes", // 8000 vs 7000
		"zest forwarding alone (no_cache) throughput vs bare httputil.ReverseProxy":       "no",  // 1.14×, under 1.20×
	}
	for k, v := range want {
		if met[k] != v {
			t.Errorf("goal %q met=%q, want %q", k, met[k], v)
		}
	}
}

// TestStreamGoalShowsReference: the streamed-miss goal is judged on zest's own added time to
// first token, and shows what the stdlib proxy added in the same run next to it.
func TestStreamGoalShowsReference(t *testing.T) {
	ph := func(ttft50, ttft99 time.Duration) *report.Phase {
		return &report.Phase{TTFTP50: report.Dur(ttft50), TTFTP99: report.Dur(ttft99)}
	}
	const name = "zest streamed miss: added time to first token"
	for _, tc := range []struct {
		zest99  time.Duration
		withRef bool
		met     string
		text    string
	}{
		{1900 * time.Microsecond, true, "yes", "p50 +300µs, p99 +900µs; httputil.ReverseProxy adds p50 +200µs, p99 +1.50ms in this run"},
		{2100 * time.Microsecond, true, "no", "p50 +300µs, p99 +1.10ms; httputil.ReverseProxy adds p50 +200µs, p99 +1.50ms in this run"},
		{1900 * time.Microsecond, false, "yes", "p50 +300µs, p99 +900µs"},
	} {
		scs := []report.Scenario{
			{Name: "direct-stream", Open: ph(500*time.Microsecond, time.Millisecond)},
			{Name: "zest-stream-miss", Baseline: "direct-stream", Open: ph(800*time.Microsecond, tc.zest99)},
		}
		if tc.withRef {
			scs = append(scs, report.Scenario{Name: "revproxy-stream", Baseline: "direct-stream",
				Open: ph(700*time.Microsecond, 2500*time.Microsecond)})
		}
		for _, g := range goals(&report.Run{Scenarios: scs}) {
			if g.Name == name && (g.Met != tc.met || g.Measured != tc.text) {
				t.Errorf("zest p99 %v, reference %v: met=%q measured=%q; want %q, %q", tc.zest99, tc.withRef, g.Met, g.Measured, tc.met, tc.text)
			}
		}
	}
}

// TestGoalsFromMedians checks that verdicts follow the medians of the
// rounds, not one lucky or unlucky round, and that the measured text shows
// the per-round range.
func TestGoalsFromMedians(t *testing.T) {
	sc := func(name string, p99 time.Duration, rps ...float64) []report.Scenario {
		var out []report.Scenario
		for _, r := range rps {
			out = append(out, report.Scenario{Name: name, Baseline: "direct", Open: &report.Phase{P99: report.Dur(p99)}, MaxRPS: r})
		}
		return out
	}
	// zest-hit beats nginx-hit in rounds 1 and 3, loses in round 2 (a noisy spell).
	rep := &report.Run{Rate: 500, Scenarios: []report.Scenario{
		report.Aggregate(sc("zest-hit", time.Millisecond, 10000, 4000, 9500)),
		report.Aggregate(sc("nginx-hit", time.Millisecond, 9000, 9000, 9000)),
	}}
	compare(rep)
	gs := goals(rep)
	var g report.Goal
	for _, x := range gs {
		if x.Name == "zest exact hit throughput vs nginx proxy_cache hit" {
			g = x
		}
	}
	if g.Met != "yes" {
		t.Errorf("met %q: the median (9500 vs 9000) meets the goal: %s", g.Met, g.Measured)
	}
	for _, want := range []string{"1.06× (9500 vs 9000 req/s", "per round 0.44× to 1.11×"} {
		if !strings.Contains(g.Measured, want) {
			t.Errorf("measured %q lacks %q", g.Measured, want)
		}
	}
	if rep.Scenarios[0].RPSRatio != 0 {
		t.Errorf("zest-hit's baseline is direct, absent here; ratio %v", rep.Scenarios[0].RPSRatio)
	}
}

func TestSmokeCheckPerRound(t *testing.T) {
	ok := report.Scenario{Name: "direct", Open: &report.Phase{Status: map[int]uint64{200: 10}}}
	bad := report.Scenario{Name: "direct", Open: &report.Phase{Status: map[int]uint64{502: 10}}}
	if c := smokeCheck(&report.Run{Scenarios: []report.Scenario{report.Aggregate([]report.Scenario{ok, ok})}}); c != 0 {
		t.Errorf("all rounds answered, code %d", c)
	}
	if c := smokeCheck(&report.Run{Scenarios: []report.Scenario{report.Aggregate([]report.Scenario{ok, bad})}}); c != 1 {
		t.Errorf("round 2 got no 2xx, code %d, want 1", c)
	}
}

// TestSmokeCheckPairing: a zest scenario whose goal's reference ran must carry its
// alternating-window comparison with it, in every round.
func TestSmokeCheckPairing(t *testing.T) {
	open := &report.Phase{Status: map[int]uint64{200: 10}}
	rp := report.Scenario{Name: "revproxy", Open: open}
	paired := report.Scenario{Name: "zest-bypass", Open: open, Paired: []report.Pairing{{Ref: "revproxy", Ratios: []float64{1.1}}}}
	bare := report.Scenario{Name: "zest-bypass", Open: open}
	for _, tc := range []struct {
		name string
		run  []report.Scenario
		want int
	}{
		{"paired in every round", []report.Scenario{rp, report.Aggregate([]report.Scenario{paired, paired})}, 0},
		{"round 2 unpaired", []report.Scenario{rp, report.Aggregate([]report.Scenario{paired, bare})}, 1},
		{"reference not run", []report.Scenario{{Name: "revproxy", Skipped: "not here"}, bare}, 0},
	} {
		if c := smokeCheck(&report.Run{Scenarios: tc.run}); c != tc.want {
			t.Errorf("%s: code %d, want %d", tc.name, c, tc.want)
		}
	}
}

func TestSmokeCheckReplayUpstream(t *testing.T) {
	sc := func(calls int64) *report.Run {
		return &report.Run{Scenarios: []report.Scenario{{Name: "zest-replay",
			Open: &report.Phase{Status: map[int]uint64{200: 10}}, Replay: &report.Replay{UpstreamCalls: calls}}}}
	}
	for calls, want := range map[int64]int{0: 0, 1: 1, -1: 1} {
		if c := smokeCheck(sc(calls)); c != want {
			t.Errorf("replay with %d upstream calls: code %d, want %d", calls, c, want)
		}
	}
}

// TestReplayWorkload: request i asks prompt i mod prompts with that prompt's pacing headers,
// so every replayed request has a recording and the recording spreads its TTFTs.
func TestReplayWorkload(t *testing.T) {
	var s scenario
	for _, x := range scenarios() {
		if x.replay {
			s = x
		}
	}
	if s.name == "" || !s.stream {
		t.Fatalf("no streamed replay scenario: %+v", s)
	}
	for _, smoke := range []bool{true, false} {
		w := newReplayWorkload(smoke)
		gen := w.gen(&s, "127.0.0.1:1")
		bodies := map[string]bool{}
		for i := range uint64(w.prompts) {
			req := string(gen(i, nil))
			again := string(gen(i+uint64(w.prompts)*7, nil))
			if req != again {
				t.Fatalf("request %d differs from request %d of the same prompt", i, i+uint64(w.prompts)*7)
			}
			ttft := w.ttft0 + time.Duration(i)*w.step
			if !strings.Contains(req, "\r\nX-Mock-TTFT: "+ttft.String()+"\r\n") || !strings.Contains(req, "\r\n"+authHeader+"\r\n") {
				t.Errorf("request %d head: %q", i, req[:min(len(req), 300)])
			}
			bodies[req[strings.Index(req, "\r\n\r\n"):]] = true
		}
		if len(bodies) != w.prompts {
			t.Errorf("smoke=%v: %d distinct bodies for %d prompts", smoke, len(bodies), w.prompts)
		}
	}
}

func TestNginxConf(t *testing.T) {
	c := nginxConf("/tmp/x", "127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3")
	for _, want := range []string{"listen 127.0.0.1:2;", "listen 127.0.0.1:3;", "server 127.0.0.1:1;",
		"proxy_cache_methods POST;", `proxy_cache_key "$request_uri|$request_body";`, "keepalive 256;",
		"add_header X-Cache-Status $upstream_cache_status;", "pid /tmp/x/nginx.pid;"} {
		if !strings.Contains(c, want) {
			t.Errorf("nginx.conf lacks %q", want)
		}
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args       []string
		wantErr    bool
		wantRounds int
	}{
		{nil, false, 3},
		{[]string{"-smoke"}, false, 1},
		{[]string{"-smoke", "-rounds", "2"}, false, 2},
		{[]string{"-rounds", "5"}, false, 5},
		{[]string{"-rounds", "0"}, true, 0},
		{[]string{"-scenarios", "direct,zest-hit"}, false, 3},
		{[]string{"-scenarios", "nope"}, true, 0},
		{[]string{"-rate", "0"}, true, 0},
		{[]string{"-sweep", "1,x"}, true, 0},
		{[]string{"-sweep", "1,2,3,4,5,6,7"}, false, 3},
		{[]string{"-sweep", "1,2,3,4,5,6,7,8"}, true, 0},   // a ninth closed-loop point would reuse the warm-up's prompts
		{[]string{"-sweep", "1,2,3,4,5,6,7,50"}, false, 3}, // -conns is not counted twice
		{[]string{"extra"}, true, 0},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			o, err := parseFlags(tc.args)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if o.sweep[len(o.sweep)-1] != o.conns {
				t.Errorf("sweep %v must end at -conns %d", o.sweep, o.conns)
			}
			if o.rounds != tc.wantRounds {
				t.Errorf("rounds %d, want %d", o.rounds, tc.wantRounds)
			}
		})
	}
}

// TestGoalsFromPairs: when a throughput goal's pair was measured in alternating windows,
// the verdict follows the median pair, whatever the separate phases say, and the text
// gives both.
func TestGoalsFromPairs(t *testing.T) {
	const name = "zest forwarding alone (no_cache) throughput vs bare httputil.ReverseProxy"
	for _, tc := range []struct {
		ratios []float64
		met    string
		want   string
	}{
		// Phases say 1.30×; the pairs, 1.10×.
		{[]float64{1.05, 1.1, 1.12, 1.3, 0.9}, "no",
			"1.10× (median of 5 pairs of alternating 250ms windows, middle half 1.05× to 1.12×); separate phases: 1.30× (13000 vs 10000 req/s)"},
		{[]float64{1.25, 1.21}, "yes", "1.23× (median of 2 pairs of alternating 250ms windows, range 1.21× to 1.25×)"},
		{[]float64{0.8}, "no", "0.80× (median of 1 pair of alternating 250ms windows); separate phases: 1.30×"},
		{nil, "yes", "1.30× (13000 vs 10000 req/s)"},
	} {
		rep := &report.Run{Scenarios: []report.Scenario{
			{Name: "revproxy", Open: &report.Phase{}, MaxRPS: 10000},
			{Name: "zest-bypass", Open: &report.Phase{}, MaxRPS: 13000,
				Paired: []report.Pairing{{Ref: "revproxy", Window: report.Dur(250 * time.Millisecond), Ratios: tc.ratios}}},
		}}
		for _, g := range goals(rep) {
			if g.Name == name && (g.Met != tc.met || !strings.HasPrefix(g.Measured, tc.want)) {
				t.Errorf("pairs %v: met=%q measured=%q; want %q, prefix %q", tc.ratios, g.Met, g.Measured, tc.met, tc.want)
			}
		}
	}
}

// TestPairOffsetsApart: every window pair of a scenario, against any of its references, asks
// prompts of its own, none of another phase's: a scenario of new prompts measured against two
// references must not meet the first one's prompts again (they would be hits).
func TestPairOffsetsApart(t *testing.T) {
	seen := map[uint64]string{0: "open loop", 9 * phaseStride: "warm-up", 10 * phaseStride: "cache fill"}
	for k := range maxSweep + 1 { // -sweep's points and -conns
		if _, ok := seen[uint64(k+1)*phaseStride]; ok {
			t.Fatalf("closed-loop point %d starts where another phase does", k)
		}
		seen[uint64(k+1)*phaseStride] = "closed loop"
	}
	for ref := range 3 {
		for k := range 4 {
			o := pairOffset(ref, k, 4)
			if was, ok := seen[o]; ok {
				t.Errorf("pair %d of reference %d starts where the %s does (%d)", k, ref, was, o/phaseStride)
			}
			seen[o] = fmt.Sprintf("pair %d of reference %d", k, ref)
		}
	}
}

// TestWindowRate: an alternating window counts only 2xx answers, and says why it is suspect:
// other statuses, failed requests, or a hit scenario answered from elsewhere than its cache.
func TestWindowRate(t *testing.T) {
	miss := &scenario{name: "zest-miss"}
	hit := &scenario{name: "zest-hit", warm: []uint64{0}}
	res := func(status map[int]uint64, cache map[string]uint64, errs uint64) *load.Result {
		var n uint64
		for _, v := range status {
			n += v
		}
		return &load.Result{Status: status, Cache: cache, Responses: n, Errors: errs, FirstError: "reset", Elapsed: 250 * time.Millisecond}
	}
	for _, tc := range []struct {
		name string
		sc   *scenario
		r    *load.Result
		rps  float64
		why  []string // substrings of the note; none: no note
	}{
		{"clean miss", miss, res(map[int]uint64{200: 1000}, map[string]uint64{"MISS": 1000}, 0), 4000, nil},
		{"clean hit", hit, res(map[int]uint64{200: 1000}, map[string]uint64{"HIT+exact": 1000}, 0), 4000, nil},
		{"502s do not count", miss, res(map[int]uint64{200: 500, 502: 500}, nil, 0), 2000, []string{"500 answers other than 2xx"}},
		{"failed requests", miss, res(map[int]uint64{200: 1000}, nil, 3), 4000, []string{"3 failed requests (first: reset)"}},
		{"a hit server without a cache status (gomem)", hit, res(map[int]uint64{200: 1000}, map[string]uint64{}, 0), 4000, nil},
		{"a hit scenario that missed", hit, res(map[int]uint64{200: 1000}, map[string]uint64{"HIT+exact": 990, "MISS": 10}, 0), 4000, []string{"10 of 1000 answers not from its cache"}},
	} {
		rps, why := windowRate(tc.sc, tc.r)
		if rps != tc.rps {
			t.Errorf("%s: %v req/s, want %v", tc.name, rps, tc.rps)
		}
		if len(tc.why) == 0 && why != "" {
			t.Errorf("%s: note %q, want none", tc.name, why)
		}
		for _, w := range tc.why {
			if !strings.Contains(why, w) {
				t.Errorf("%s: note %q lacks %q", tc.name, why, w)
			}
		}
	}
}
