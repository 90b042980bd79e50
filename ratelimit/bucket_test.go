package ratelimit

import "testing"

// TestWaitIsExact checks the bucket arithmetic directly: after wait(debt, k)
// microseconds the k units fit, and one microsecond earlier they do not.
func TestWaitIsExact(t *testing.T) {
	for _, d := range []dim{{rate: 7, size: 7}, {rate: 997, size: 300}, {rate: 60, size: 60}, {rate: 1, size: 1}} {
		for _, debt := range []int64{0, 1, window - 1, window, 3*window + 35001, d.size*window - 1, 5 * d.size * window} {
			for _, k := range []int64{1, d.size / 2, d.size} {
				if k < 1 {
					continue
				}
				w := d.wait(debt, k)
				fits := func(e int64) bool { return d.refill(debt, e)+k*window <= d.size*window }
				if !fits(w) {
					t.Errorf("%+v debt %d k %d: does not fit after wait %dµs", d, debt, k, w)
				}
				if w > 0 && fits(w-1) {
					t.Errorf("%+v debt %d k %d: fits already at %dµs, wait said %d", d, debt, k, w-1, w)
				}
			}
		}
	}
}
