package semantic

import "sync/atomic"

// dimOnce holds a dimension that is fixed by the first value set.
type dimOnce struct{ v atomic.Int64 }

func (d *dimOnce) get() int  { return int(d.v.Load()) }
func (d *dimOnce) set(n int) { d.v.Store(int64(n)) }

// setIfZero stores n if no dimension is known yet and returns the dimension
// in force afterwards.
func (d *dimOnce) setIfZero(n int) int {
	d.v.CompareAndSwap(0, int64(n))
	return d.get()
}
