package telemetry

import (
	"math"
	"sync/atomic"
)

// Counter is a monotonically increasing value. The zero value is 0 and ready
// to use. Inc and Add are lock-free and do not allocate.
type Counter struct {
	n    atomic.Uint64 // whole increments, the fast path
	bits atomic.Uint64 // float64 bits of fractional increments
}

// Inc adds 1.
func (c *Counter) Inc() { c.n.Add(1) }

// Add adds delta. Counters only go up: a negative or NaN delta is ignored.
func (c *Counter) Add(delta float64) {
	if !(delta > 0) {
		return
	}
	if delta < 1<<53 && delta == math.Trunc(delta) {
		c.n.Add(uint64(delta))
		return
	}
	addFloat(&c.bits, delta)
}

// Value returns the current total.
func (c *Counter) Value() float64 {
	return float64(c.n.Load()) + math.Float64frombits(c.bits.Load())
}

// Gauge is a value that goes up and down. The zero value is 0 and ready to
// use. All methods are lock-free and do not allocate.
type Gauge struct {
	bits atomic.Uint64
}

// Set sets the gauge to v.
func (g *Gauge) Set(v float64) { g.bits.Store(math.Float64bits(v)) }

// Add adds delta (which may be negative).
func (g *Gauge) Add(delta float64) { addFloat(&g.bits, delta) }

// Sub subtracts delta.
func (g *Gauge) Sub(delta float64) { addFloat(&g.bits, -delta) }

// Inc adds 1.
func (g *Gauge) Inc() { addFloat(&g.bits, 1) }

// Dec subtracts 1.
func (g *Gauge) Dec() { addFloat(&g.bits, -1) }

// Value returns the current value.
func (g *Gauge) Value() float64 { return math.Float64frombits(g.bits.Load()) }

func addFloat(bits *atomic.Uint64, delta float64) {
	for {
		old := bits.Load()
		if bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+delta)) {
			return
		}
	}
}

// CounterVec is a counter with labels; With selects one series.
type CounterVec struct{ f *family }

// With returns the counter for labelValues, given in the order of the label
// names, creating it on first use. It panics if the number of values is
// wrong. Keep the result for hot paths: With hashes and looks up the values
// (no allocation once the series exists) while Inc is a single atomic add.
func (v *CounterVec) With(labelValues ...string) *Counter {
	return &v.f.get(labelValues).counter
}

// GaugeVec is a gauge with labels; With selects one series.
type GaugeVec struct{ f *family }

// With returns the gauge for labelValues, like CounterVec.With.
func (v *GaugeVec) With(labelValues ...string) *Gauge {
	return &v.f.get(labelValues).gauge
}

// Counter registers a counter named name (conventionally ending in _total)
// with the given label names. See Registry for when it panics.
func (r *Registry) Counter(name, help string, labelNames ...string) *CounterVec {
	return &CounterVec{r.register(name, help, kindCounter, labelNames, nil, nil)}
}

// Gauge registers a gauge with the given label names.
func (r *Registry) Gauge(name, help string, labelNames ...string) *GaugeVec {
	return &GaugeVec{r.register(name, help, kindGauge, labelNames, nil, nil)}
}

// GaugeFunc registers a gauge without labels whose value is fn's result at
// scrape time. fn must be safe for concurrent use and cheap.
func (r *Registry) GaugeFunc(name, help string, fn func() float64) {
	if fn == nil {
		panic("telemetry: GaugeFunc " + name + ": nil func")
	}
	r.register(name, help, kindGaugeFunc, nil, nil, fn)
}

// CounterFunc registers a counter without labels whose value is fn's result
// at scrape time, for totals kept elsewhere (cache evictions, for example).
// fn must be safe for concurrent use, cheap, and never decrease.
func (r *Registry) CounterFunc(name, help string, fn func() float64) {
	if fn == nil {
		panic("telemetry: CounterFunc " + name + ": nil func")
	}
	r.register(name, help, kindCounterFunc, nil, nil, fn)
}
