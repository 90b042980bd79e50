package telemetry

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

// goldenRegistry builds the registry described by testdata/exposition.prom.
// Registration order differs from name order on purpose.
func goldenRegistry() *Registry {
	r := NewRegistry()
	r.Gauge("zest_h", "Infinite.").With().Set(math.Inf(-1))
	r.Counter("zest_g_total", "A labelled counter never used: left out.", "x")
	b := r.Counter("zest_b_total", "Help with \\ backslash\nand newline.", "code", "method")
	b.With("500", `qu"ote`).Inc()
	b.With("200", "GET").Add(3)
	b.With("200", `back\slash`).Add(0.5)
	b.With("200", "new\nline").Inc()
	b.With("404", "bad\xffutf8").Inc()
	r.Gauge("zest_a_gauge", "A gauge.").With().Set(-1.5)
	c := r.Histogram("zest_c_seconds", "Latency.", []float64{0.125, 1, 10}, "path")
	for _, v := range []float64{0.0625, 0.125, 0.5, 20} {
		c.With("/x").Observe(v)
	}
	c.With("/a")
	r.Histogram("zest_d_hist", "Unlabelled histogram.", []float64{1, math.Inf(1)}).With().Observe(2)
	r.GaugeFunc("zest_e_func", "A gauge func.", func() float64 { return 1e6 })
	r.CounterFunc("zest_f_total", "A counter func.", func() float64 { return 42 })
	return r
}

func TestExpositionGolden(t *testing.T) {
	r := goldenRegistry()
	var buf bytes.Buffer
	n, err := r.WriteTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Errorf("WriteTo returned %d, wrote %d bytes", n, buf.Len())
	}
	const golden = "testdata/exposition.prom"
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != string(want) {
		t.Errorf("exposition mismatch\n--- got\n%s\n--- want\n%s", got, want)
	}
	// A second scrape is byte-identical (deterministic order, reused buffers).
	var again bytes.Buffer
	r.WriteTo(&again)
	if again.String() != buf.String() {
		t.Error("second scrape differs from the first")
	}
}

func TestHandler(t *testing.T) {
	r := goldenRegistry()
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()

	tests := []struct {
		method     string
		wantStatus int
		wantBody   bool
	}{
		{http.MethodGet, 200, true},
		{http.MethodHead, 200, false},
		{http.MethodPost, 405, false},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+"/metrics", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.wantStatus == 200 && resp.Header.Get("Content-Type") != "text/plain; version=0.0.4; charset=utf-8" {
				t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
			}
			if got := strings.Contains(string(body), "zest_b_total{code=\"200\",method=\"GET\"} 3\n"); got != tt.wantBody {
				t.Errorf("body has samples = %v, want %v; body:\n%s", got, tt.wantBody, body)
			}
		})
	}
}

func TestRegisterPanics(t *testing.T) {
	tests := []struct {
		name string
		fn   func(r *Registry)
	}{
		{"bad metric name", func(r *Registry) { r.Counter("1abc", "") }},
		{"dash in name", func(r *Registry) { r.Counter("a-b", "") }},
		{"reserved label", func(r *Registry) { r.Counter("a", "", "__x") }},
		{"bad label", func(r *Registry) { r.Counter("a", "", "a.b") }},
		{"duplicate label", func(r *Registry) { r.Counter("a", "", "x", "x") }},
		{"le on histogram", func(r *Registry) { r.Histogram("a", "", []float64{1}, "le") }},
		{"unsorted buckets", func(r *Registry) { r.Histogram("a", "", []float64{2, 1}) }},
		{"NaN bucket", func(r *Registry) { r.Histogram("a", "", []float64{math.NaN()}) }},
		{"type conflict", func(r *Registry) { r.Counter("a", ""); r.Gauge("a", "") }},
		{"label conflict", func(r *Registry) { r.Counter("a", "", "x"); r.Counter("a", "", "y") }},
		{"func twice", func(r *Registry) {
			r.GaugeFunc("a", "", func() float64 { return 0 })
			r.GaugeFunc("a", "", func() float64 { return 0 })
		}},
		{"clash with histogram", func(r *Registry) { r.Histogram("a", "", nil); r.Counter("a_count", "") }},
		{"histogram clashes", func(r *Registry) { r.Counter("a_sum", ""); r.Histogram("a", "", nil) }},
		{"wrong label count", func(r *Registry) { r.Counter("a", "", "x", "y").With("1") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tt.fn(NewRegistry())
		})
	}
}

func TestReRegisterReturnsSameMetric(t *testing.T) {
	r := NewRegistry()
	a := r.Counter("x_total", "help", "l").With("v")
	a.Inc()
	b := r.Counter("x_total", "help", "l").With("v")
	b.Inc()
	if a != b || r.Value("x_total", "v") != 2 {
		t.Fatalf("re-registration gave a different counter (value %v)", r.Value("x_total", "v"))
	}
}

func TestValue(t *testing.T) {
	r := NewRegistry()
	r.Counter("c_total", "", "a").With("x").Add(2.5)
	r.Gauge("g", "").With().Sub(3)
	h := r.Histogram("h_seconds", "", []float64{1}, "a")
	h.With("x").Observe(0.5)
	h.With("x").Observe(4)

	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"c_total", []string{"x"}, 2.5},
		{"c_total", []string{"never"}, 0},
		{"c_total", nil, 0}, // wrong arity: 0, no panic
		{"g", nil, -3},
		{"h_seconds", []string{"x"}, 2},
		{"h_seconds_count", []string{"x"}, 2},
		{"h_seconds_sum", []string{"x"}, 4.5},
		{"c_total_sum", []string{"x"}, 0}, // only histograms have _sum
		{"missing", nil, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.name, tt.labels), func(t *testing.T) {
			if got := r.Value(tt.name, tt.labels...); got != tt.want {
				t.Errorf("Value = %v, want %v", got, tt.want)
			}
		})
	}
	var buf bytes.Buffer
	r.WriteTo(&buf)
	if strings.Contains(buf.String(), "never") {
		t.Error("Value created a series")
	}
}

func TestCounterIgnoresNegative(t *testing.T) {
	var c Counter
	c.Add(2)
	c.Add(-5)
	c.Add(math.NaN())
	c.Add(0.25)
	if c.Value() != 2.25 {
		t.Fatalf("Value = %v, want 2.25", c.Value())
	}
}

func TestHistogramBucketBoundaries(t *testing.T) {
	r := NewRegistry()
	h := r.Histogram("h", "", []float64{1, 2, 4}).With()
	for _, v := range []float64{-1, 1, 1.5, 2, 4, 4.0001, math.Inf(1), math.NaN()} {
		h.Observe(v)
	}
	counts, _ := h.counts(nil)
	want := []uint64{2, 2, 1, 2} // ≤1: -1,1 | ≤2: 1.5,2 | ≤4: 4 | +Inf: 4.0001,Inf; NaN ignored
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Fatalf("bucket counts %v, want %v", counts, want)
	}
}

func TestSeriesOverflow(t *testing.T) {
	r := NewRegistry()
	r.maxSeries = 3
	v := r.Counter("c_total", "", "user")
	for i := range 10 {
		v.With(fmt.Sprint("u", i)).Inc()
	}
	v.With("u1").Inc() // existing series still count
	if got := r.Value("c_total", "u1"); got != 2 {
		t.Errorf("u1 = %v, want 2", got)
	}
	if got := r.Value("c_total", OverflowLabelValue); got != 7 {
		t.Errorf("overflow = %v, want 7", got)
	}
	var buf bytes.Buffer
	r.WriteTo(&buf)
	if n := strings.Count(buf.String(), "c_total{"); n != 4 {
		t.Errorf("%d series written, want 3 + overflow:\n%s", n, buf.String())
	}
}

func TestConcurrentUpdatesExactTotals(t *testing.T) {
	r := NewRegistry()
	cv := r.Counter("c_total", "", "k")
	g := r.Gauge("g", "").With()
	hv := r.Histogram("h", "", []float64{0.5, 1}, "k")
	const workers, per = 8, 2000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprint("k", w%2) // two series, created concurrently
			for range per {
				cv.With(key).Inc()
				cv.With(key).Add(0.5)
				g.Add(1)
				hv.With(key).Observe(0.25)
				hv.With(key).Observe(0.75)
			}
		}()
	}
	// Scrape while writers run; must not race.
	for range 5 {
		r.WriteTo(io.Discard)
	}
	wg.Wait()
	for _, k := range []string{"k0", "k1"} {
		if got, want := r.Value("c_total", k), 1.5*per*workers/2; got != want {
			t.Errorf("counter %s = %v, want %v", k, got, want)
		}
		if got, want := r.Value("h_count", k), float64(2*per*workers/2); got != want {
			t.Errorf("histogram count %s = %v, want %v", k, got, want)
		}
		if got, want := r.Value("h_sum", k), float64(per*workers/2); got != want {
			t.Errorf("histogram sum %s = %v, want %v", k, got, want)
		}
	}
	if g.Value() != per*workers {
		t.Errorf("gauge = %v, want %v", g.Value(), per*workers)
	}
}

func TestExponentialBuckets(t *testing.T) {
	if got := fmt.Sprint(ExponentialBuckets(0.5, 2, 4)); got != "[0.5 1 2 4]" {
		t.Errorf("ExponentialBuckets = %s", got)
	}
}

// FuzzEscapeLabelValue checks that any label value comes out as one valid
// UTF-8 line without a bare quote, and that valid UTF-8 unescapes back to
// the original.
func FuzzEscapeLabelValue(f *testing.F) {
	for _, s := range []string{"", "plain", `a"b`, `c\d`, "e\nf", "\xff", `\n`, `"\`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := string(appendEscaped(nil, s, true))
		if strings.ContainsRune(out, '\n') {
			t.Fatalf("raw newline in %q", out)
		}
		var b strings.Builder
		for i := 0; i < len(out); i++ {
			c := out[i]
			if c == '"' {
				t.Fatalf("unescaped quote in %q", out)
			}
			if c != '\\' {
				b.WriteByte(c)
				continue
			}
			i++
			if i == len(out) {
				t.Fatalf("dangling backslash in %q", out)
			}
			switch out[i] {
			case '\\', '"':
				b.WriteByte(out[i])
			case 'n':
				b.WriteByte('\n')
			default:
				t.Fatalf("bad escape \\%c in %q", out[i], out)
			}
		}
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 in %q", out)
		}
		if utf8.ValidString(s) && b.String() != s {
			t.Fatalf("round trip %q -> %q -> %q", s, out, b.String())
		}
	})
}
