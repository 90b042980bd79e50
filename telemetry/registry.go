package telemetry

import (
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// ContentType is the media type of the Prometheus text exposition format
// version 0.0.4 that Registry.Handler serves.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// MaxSeriesPerFamily caps the label combinations one metric may hold. Once a
// metric has this many series, With for a new combination returns the shared
// overflow series whose label values are all OverflowLabelValue, so that a
// label fed from client input cannot grow memory or the scrape without bound.
const MaxSeriesPerFamily = 10000

// OverflowLabelValue is the label value of the overflow series (see
// MaxSeriesPerFamily).
const OverflowLabelValue = "_overflow_"

type metricKind uint8

const (
	kindCounter metricKind = iota
	kindGauge
	kindHistogram
	kindCounterFunc
	kindGaugeFunc
)

func (k metricKind) typeName() string {
	switch k {
	case kindCounter, kindCounterFunc:
		return "counter"
	case kindGauge, kindGaugeFunc:
		return "gauge"
	default:
		return "histogram"
	}
}

// Registry holds metrics and writes them in the Prometheus text format.
// The zero value is not usable; call NewRegistry. All methods are safe for
// concurrent use. Registration methods panic on an invalid name, an invalid or
// duplicate label name, or a name already registered with a different
// definition (registering the identical definition again returns the existing
// metric); these are programming errors caught at start-up.
type Registry struct {
	mu        sync.Mutex
	byName    map[string]*family
	families  atomic.Pointer[[]*family] // sorted by name; replaced, never mutated
	seed      maphash.Seed
	maxSeries int       // per family; MaxSeriesPerFamily (tests lower it)
	bufPool   sync.Pool // *[]byte scratch buffers for WriteTo
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	r := &Registry{byName: make(map[string]*family), seed: maphash.MakeSeed(), maxSeries: MaxSeriesPerFamily}
	r.families.Store(&[]*family{})
	r.bufPool.New = func() any { b := make([]byte, 0, 4096); return &b }
	return r
}

// family is one metric name with its HELP, TYPE, label names and series.
type family struct {
	name, help string
	kind       metricKind
	labelNames []string
	buckets    []float64 // histograms: upper bounds, strictly increasing, no +Inf
	leValues   []string  // histograms: formatted buckets, then "+Inf"
	fn         func() float64
	seed       maphash.Seed
	maxSeries  int

	mu     sync.RWMutex
	index  map[uint64][]*series // by hash of label values
	n      int
	sorted atomic.Pointer[[]*series] // by label values; replaced, never mutated
}

// series is one label combination of a family.
type series struct {
	values  []string
	counter Counter
	gauge   Gauge
	hist    *Histogram
}

func (r *Registry) register(name, help string, kind metricKind, labelNames []string, buckets []float64, fn func() float64) *family {
	if !validMetricName(name) {
		panic(fmt.Sprintf("telemetry: invalid metric name %q", name))
	}
	for i, l := range labelNames {
		if !validLabelName(l) || (kind == kindHistogram && l == "le") {
			panic(fmt.Sprintf("telemetry: metric %q: invalid label name %q", name, l))
		}
		if slices.Contains(labelNames[:i], l) {
			panic(fmt.Sprintf("telemetry: metric %q: duplicate label name %q", name, l))
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if f, ok := r.byName[name]; ok {
		if fn == nil && f.fn == nil && f.kind == kind && f.help == help &&
			slices.Equal(f.labelNames, labelNames) && slices.Equal(f.buckets, buckets) {
			return f
		}
		panic(fmt.Sprintf("telemetry: metric %q already registered with a different definition", name))
	}
	for _, other := range r.byName {
		if clash(other, name) || (kind == kindHistogram && clash(&family{name: name, kind: kind}, other.name)) {
			panic(fmt.Sprintf("telemetry: metric %q clashes with histogram series of %q", name, other.name))
		}
	}
	f := &family{
		name: name, help: help, kind: kind, fn: fn, seed: r.seed, maxSeries: r.maxSeries,
		labelNames: slices.Clone(labelNames),
		buckets:    slices.Clone(buckets),
		index:      make(map[uint64][]*series),
	}
	if kind == kindHistogram {
		for _, b := range f.buckets {
			f.leValues = append(f.leValues, string(appendFloat(nil, b)))
		}
		f.leValues = append(f.leValues, "+Inf")
	}
	f.sorted.Store(&[]*series{})
	if len(labelNames) == 0 && fn == nil {
		f.get(nil) // a metric without labels is exposed from the start, as 0
	}
	r.byName[name] = f
	old := *r.families.Load()
	i := sort.Search(len(old), func(i int) bool { return old[i].name > name })
	fams := make([]*family, 0, len(old)+1)
	fams = append(append(append(fams, old[:i]...), f), old[i:]...)
	r.families.Store(&fams)
	return f
}

// clash reports whether name is one of the sample names a histogram h writes.
func clash(h *family, name string) bool {
	if h.kind != kindHistogram {
		return false
	}
	return name == h.name+"_bucket" || name == h.name+"_sum" || name == h.name+"_count"
}

// get returns the series for values, creating it on first use.
func (f *family) get(values []string) *series {
	if len(values) != len(f.labelNames) {
		panicLabelCount(f.name, len(f.labelNames), len(values))
	}
	h := f.hash(values)
	f.mu.RLock()
	s := find(f.index[h], values)
	f.mu.RUnlock()
	if s != nil {
		return s
	}
	return f.create(h, values)
}

// lookup returns the series for values, or nil if it does not exist.
func (f *family) lookup(values []string) *series {
	if len(values) != len(f.labelNames) {
		return nil
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	return find(f.index[f.hash(values)], values)
}

func (f *family) create(h uint64, values []string) *series {
	f.mu.Lock()
	if s := find(f.index[h], values); s != nil {
		f.mu.Unlock()
		return s
	}
	if f.n >= f.maxSeries && !allOverflow(values) {
		f.mu.Unlock()
		over := make([]string, len(values))
		for i := range over {
			over[i] = OverflowLabelValue
		}
		return f.get(over)
	}
	defer f.mu.Unlock()
	s := &series{values: slices.Clone(values)}
	if f.kind == kindHistogram {
		s.hist = newHistogram(f.buckets)
	}
	f.index[h] = append(f.index[h], s)
	f.n++
	old := *f.sorted.Load()
	i := sort.Search(len(old), func(i int) bool { return slices.Compare(old[i].values, s.values) > 0 })
	ss := make([]*series, 0, len(old)+1)
	ss = append(append(append(ss, old[:i]...), s), old[i:]...)
	f.sorted.Store(&ss)
	return s
}

func allOverflow(values []string) bool {
	for _, v := range values {
		if v != OverflowLabelValue {
			return false
		}
	}
	return true
}

func panicLabelCount(name string, want, got int) {
	panic(fmt.Sprintf("telemetry: metric %q takes %d label values, got %d", name, want, got))
}

func (f *family) hash(values []string) uint64 {
	h := uint64(14695981039346656037)
	for _, v := range values {
		h ^= maphash.String(f.seed, v)
		h *= 1099511628211
	}
	return h
}

func find(bucket []*series, values []string) *series {
	for _, s := range bucket {
		if slices.Equal(s.values, values) {
			return s
		}
	}
	return nil
}

// WriteTo writes every metric in the Prometheus text format 0.0.4: metrics
// sorted by name, series sorted by label values, HELP and TYPE lines first.
// A labelled metric with no series yet is left out. Histograms write
// cumulative _bucket lines ending in le="+Inf", then _sum and _count, where
// _count always equals the +Inf bucket. The output is built in memory and
// written with one Write call.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	bp := r.bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	for _, f := range *r.families.Load() {
		b = f.appendText(b)
	}
	n, err := w.Write(b)
	if cap(b) <= 1<<20 {
		*bp = b
		r.bufPool.Put(bp)
	}
	return int64(n), err
}

// Handler serves the registry for GET and HEAD with Content-Type
// ContentType; other methods get 405.
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", ContentType)
		w.Header().Set("Cache-Control", "no-store")
		if req.Method == http.MethodHead {
			return
		}
		_, _ = r.WriteTo(w) // a failed write means the scraper went away
	})
}

// Value returns the current value of one series, for tests and the admin
// stats page: a counter's or gauge's value, a func metric's result, or a
// histogram's observation count (name_count and name_sum select the count
// or the sum explicitly). It returns 0 for an unknown metric or a series
// never used, and never creates one.
func (r *Registry) Value(name string, labelValues ...string) float64 {
	r.mu.Lock()
	f := r.byName[name]
	wantSum := false
	if f == nil {
		if base, ok := strings.CutSuffix(name, "_count"); ok {
			f = r.byName[base]
		} else if base, ok := strings.CutSuffix(name, "_sum"); ok {
			f, wantSum = r.byName[base], true
		}
		if f != nil && f.kind != kindHistogram {
			f = nil
		}
	}
	r.mu.Unlock()
	if f == nil {
		return 0
	}
	if f.fn != nil {
		return f.fn()
	}
	s := f.lookup(labelValues)
	if s == nil {
		return 0
	}
	switch f.kind {
	case kindCounter:
		return s.counter.Value()
	case kindGauge:
		return s.gauge.Value()
	default:
		count, sum := s.hist.snapshot(nil)
		if wantSum {
			return sum
		}
		return float64(count)
	}
}

func validMetricName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

func validLabelName(s string) bool {
	if s == "" || strings.HasPrefix(s, "__") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// validBuckets panics unless b is strictly increasing and free of NaN; a
// trailing +Inf is dropped (it is always implied).
func validBuckets(name string, b []float64) []float64 {
	if n := len(b); n > 0 && math.IsInf(b[n-1], 1) {
		b = b[:n-1]
	}
	for i, v := range b {
		if math.IsNaN(v) || math.IsInf(v, 0) || i > 0 && v <= b[i-1] {
			panic(fmt.Sprintf("telemetry: histogram %q: buckets must be finite and strictly increasing", name))
		}
	}
	return b
}
