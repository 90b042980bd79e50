package report

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

var palette = []string{"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
	"#b07aa1", "#ff9da7", "#9c755f", "#bab0ac", "#1b9e77", "#7570b3", "#d95f02", "#66a61e"}

type svg struct{ b strings.Builder }

func (s *svg) open(w, h int) {
	fmt.Fprintf(&s.b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&s.b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
}

func (s *svg) text(x, y float64, anchor, txt string, extra string) {
	fmt.Fprintf(&s.b, `<text x="%.1f" y="%.1f" text-anchor="%s" %s>%s</text>`+"\n", x, y, anchor, extra, html.EscapeString(txt))
}

func (s *svg) line(x1, y1, x2, y2 float64, style string) {
	fmt.Fprintf(&s.b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" %s/>`+"\n", x1, y1, x2, y2, style)
}

func (s *svg) rect(x, y, w, h float64, fill, title string) {
	fmt.Fprintf(&s.b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`+"\n", x, y, w, h, fill, html.EscapeString(title))
}

func (s *svg) close(w io.Writer) error {
	s.b.WriteString("</svg>\n")
	_, err := io.WriteString(w, s.b.String())
	return err
}

// niceLogTicks returns ticks (ns) spanning [lo, hi]: 1-2-5 steps over up to
// three decades, powers of ten beyond.
func niceLogTicks(lo, hi float64) []float64 {
	var out []float64
	steps := []float64{1, 2, 5}
	if math.Log10(hi/lo) > 3 {
		steps = []float64{1}
	}
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		for _, m := range steps {
			v := m * math.Pow(10, e)
			if v >= lo/1.001 && v <= hi*1.001 {
				out = append(out, v)
			}
		}
	}
	return out
}

// LatencyChart draws horizontal bars of p50, p99 and p99.9 per scenario on a
// log axis; stream scenarios show time to first token.
func LatencyChart(w io.Writer, r *Run) error {
	type row struct {
		name   string
		v      [3]float64
		lo, hi float64 // p99 range over rounds, 0 = none
	}
	var rows []row
	lo, hi := math.Inf(1), 0.0
	for _, s := range r.Scenarios {
		p := s.Open
		if s.Skipped != "" || p == nil || p.P50 <= 0 {
			continue
		}
		rw := row{name: s.Name, v: [3]float64{float64(p.P50), float64(p.P99), float64(p.P999)}}
		if sp := s.Spread; sp != nil && sp.Rounds > 1 {
			rw.lo, rw.hi = float64(sp.P99Min), float64(sp.P99Max)
		}
		if s.Stream && p.TTFTP50 > 0 {
			rw.name += " (TTFT)"
			rw.v = [3]float64{float64(p.TTFTP50), float64(p.TTFTP99), float64(p.TTFTP999)}
			rw.lo, rw.hi = 0, 0
			if sp := s.Spread; sp != nil && sp.Rounds > 1 {
				rw.lo, rw.hi = float64(sp.TTFTP99Min), float64(sp.TTFTP99Max)
			}
		}
		rows = append(rows, rw)
		lo, hi = math.Min(lo, rw.v[0]), math.Max(hi, math.Max(rw.v[2], rw.hi))
	}
	if len(rows) == 0 {
		lo, hi = 1e3, 1e6
	}
	lo = math.Pow(10, math.Floor(math.Log10(math.Max(lo, 1))))
	hi = math.Pow(10, math.Ceil(math.Log10(math.Max(hi, lo*10))))
	const left, right, top, bar = 190.0, 70.0, 50.0, 9.0
	width := 860.0
	height := top + float64(len(rows))*(3*bar+12) + 60
	plotW := width - left - right
	x := func(v float64) float64 {
		return left + plotW*(math.Log10(math.Max(v, lo))-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo))
	}
	var s svg
	s.open(int(width), int(height))
	title := "Latency percentiles per scenario (log scale, from scheduled send time)"
	if r.Rounds > 1 {
		title = fmt.Sprintf("Latency percentiles, medians of %d rounds; whisker: p99 min–max (log scale)", r.Rounds)
	}
	s.text(width/2, 22, "middle", title, `font-size="14" font-weight="bold"`)
	labels := []string{"p50", "p99", "p99.9"}
	colors := []string{"#4e79a7", "#f28e2b", "#e15759"}
	for i, l := range labels {
		s.rect(left+float64(i)*80, 32, 10, 10, colors[i], l)
		s.text(left+float64(i)*80+14, 41, "start", l, "")
	}
	bottom := height - 40
	for _, t := range niceLogTicks(lo, hi) {
		s.line(x(t), top-4, x(t), bottom, `stroke="#ddd"`)
		s.text(x(t), bottom+16, "middle", Dur(t).String(), `fill="#555"`)
	}
	y := top
	for _, rw := range rows {
		s.text(left-8, y+1.5*bar+4, "end", rw.name, "")
		for i, v := range rw.v {
			s.rect(left, y+float64(i)*bar, x(v)-left, bar-1, colors[i], fmt.Sprintf("%s %s: %s", rw.name, labels[i], Dur(v)))
		}
		if rw.hi > 0 {
			wy := y + 1.5*bar - 0.5
			s.line(x(rw.lo), wy, x(rw.hi), wy, `stroke="#222" stroke-width="1.5"`)
			s.line(x(rw.lo), wy-3, x(rw.lo), wy+3, `stroke="#222" stroke-width="1.5"`)
			s.line(x(rw.hi), wy-3, x(rw.hi), wy+3, `stroke="#222" stroke-width="1.5"`)
		}
		s.text(math.Max(x(rw.v[2]), x(rw.hi))+4, y+2*bar+7, "start", Dur(rw.v[2]).String(), `fill="#555" font-size="10"`)
		y += 3*bar + 12
	}
	s.line(left, top-4, left, bottom, `stroke="#333"`)
	return s.close(w)
}

// ThroughputChart draws closed-loop requests per second against concurrency,
// one line per scenario.
func ThroughputChart(w io.Writer, r *Run) error {
	// Lines for the scenarios that swept concurrency; all scenarios with a
	// closed-loop point when none did.
	minPoints := 1
	for _, s := range r.Scenarios {
		if len(s.Sweep) >= 2 {
			minPoints = 2
			break
		}
	}
	var series []Scenario
	maxRPS, maxConns := 0.0, 1
	for _, s := range r.Scenarios {
		if s.Skipped != "" || len(s.Sweep) < minPoints {
			continue
		}
		series = append(series, s)
		for _, p := range s.Sweep {
			maxRPS = math.Max(maxRPS, math.Max(p.RPS, p.RPSMax))
			maxConns = max(maxConns, p.Conns)
		}
	}
	if maxRPS == 0 {
		maxRPS = 1
	}
	step := math.Pow(10, math.Floor(math.Log10(maxRPS)))
	for maxRPS/step < 4 {
		step /= 2
	}
	top := math.Ceil(maxRPS/step) * step
	const left, right, topM, bottomM = 70.0, 200.0, 40.0, 50.0
	width, height := 860.0, 420.0
	plotW, plotH := width-left-right, height-topM-bottomM
	lx := func(c int) float64 {
		if maxConns <= 1 {
			return left
		}
		return left + plotW*math.Log2(float64(c))/math.Log2(float64(maxConns))
	}
	ly := func(v float64) float64 { return topM + plotH*(1-v/top) }
	var s svg
	s.open(int(width), int(height))
	title := "Closed-loop throughput vs concurrency (req/s)"
	if r.Rounds > 1 {
		title = fmt.Sprintf("Closed-loop req/s vs concurrency, medians of %d rounds (bars: min–max)", r.Rounds)
	}
	s.text(width/2-right/2, 22, "middle", title, `font-size="14" font-weight="bold"`)
	for v := 0.0; v <= top*1.0001; v += step {
		s.line(left, ly(v), left+plotW, ly(v), `stroke="#ddd"`)
		label := rps(v)
		if v == 0 {
			label = "0"
		}
		s.text(left-6, ly(v)+4, "end", label, `fill="#555"`)
	}
	seen := map[int]bool{}
	for _, sc := range series {
		for _, p := range sc.Sweep {
			if !seen[p.Conns] {
				seen[p.Conns] = true
				s.text(lx(p.Conns), topM+plotH+18, "middle", fmt.Sprint(p.Conns), `fill="#555"`)
			}
		}
	}
	s.text(left+plotW/2, height-12, "middle", "connections (log scale)", `fill="#555"`)
	for i, sc := range series {
		c := palette[i%len(palette)]
		var pts []string
		for _, p := range sc.Sweep {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", lx(p.Conns), ly(p.RPS)))
		}
		fmt.Fprintf(&s.b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), c)
		for _, p := range sc.Sweep {
			if p.RPSMax > 0 {
				s.line(lx(p.Conns), ly(p.RPSMin), lx(p.Conns), ly(p.RPSMax), fmt.Sprintf(`stroke="%s" stroke-width="1" opacity="0.6"`, c))
			}
			fmt.Fprintf(&s.b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s</title></circle>`+"\n",
				lx(p.Conns), ly(p.RPS), c, html.EscapeString(fmt.Sprintf("%s @%d: %s req/s", sc.Name, p.Conns, rps(p.RPS))))
		}
		ly0 := topM + float64(i)*18
		s.line(width-right+12, ly0, width-right+32, ly0, fmt.Sprintf(`stroke="%s" stroke-width="3"`, c))
		s.text(width-right+38, ly0+4, "start", sc.Name, "")
	}
	s.line(left, topM, left, topM+plotH, `stroke="#333"`)
	s.line(left, topM+plotH, left+plotW, topM+plotH, `stroke="#333"`)
	return s.close(w)
}

// RateLimitChart draws admitted requests per second of the rate-limit
// scenario with the configured rate as a dashed line. It writes an empty
// chart when no scenario has limiter data.
func RateLimitChart(w io.Writer, r *Run) error {
	var sc *Scenario
	for i := range r.Scenarios {
		if r.Scenarios[i].Limit != nil && r.Scenarios[i].Open != nil {
			sc = &r.Scenarios[i]
		}
	}
	const width, height, left, topM, bottomM = 600.0, 300.0, 60.0, 40.0, 40.0
	var s svg
	s.open(int(width), int(height))
	title := "Rate limiter: 2xx responses per second vs configured rate"
	if r.Rounds > 1 {
		title += " (median round)"
	}
	s.text(width/2, 22, "middle", title, `font-size="14" font-weight="bold"`)
	if sc == nil || len(sc.Open.OKPerSecond) == 0 {
		s.text(width/2, height/2, "middle", "no data", "")
		return s.close(w)
	}
	ok := sc.Open.OKPerSecond
	maxV := sc.Limit.ConfiguredRPS
	for _, v := range ok {
		maxV = math.Max(maxV, float64(v))
	}
	maxV = math.Max(maxV*1.1, 1)
	plotW, plotH := width-left-20, height-topM-bottomM
	bw := plotW / float64(len(ok))
	yv := func(v float64) float64 { return topM + plotH*(1-v/maxV) }
	for i, v := range ok {
		s.rect(left+float64(i)*bw+1, yv(float64(v)), bw-2, topM+plotH-yv(float64(v)), "#4e79a7", fmt.Sprintf("second %d: %d admitted", i, v))
		s.text(left+float64(i)*bw+bw/2, topM+plotH+16, "middle", fmt.Sprint(i), `fill="#555" font-size="10"`)
	}
	cy := yv(sc.Limit.ConfiguredRPS)
	s.line(left, cy, left+plotW, cy, `stroke="#e15759" stroke-width="2" stroke-dasharray="6,4"`)
	s.text(left+plotW, cy-5, "end", fmt.Sprintf("configured %.1f/s", sc.Limit.ConfiguredRPS), `fill="#e15759"`)
	s.text(left-6, yv(maxV/1.1)+4, "end", rps(maxV/1.1), `fill="#555"`)
	s.text(left-6, topM+plotH+4, "end", "0", `fill="#555"`)
	s.text(left+plotW/2, height-6, "middle", "second of the run (the first seconds spend the initial bucket)", `fill="#555"`)
	return s.close(w)
}
