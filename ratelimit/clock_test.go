package ratelimit

import (
	"sync"
	"testing"
	"time"
)

// fakeClock is a manual clock for limiter tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newLimiter builds a limiter on clk or fails the test.
func newLimiter(t testing.TB, clk *fakeClock, opts Options) *Limiter {
	t.Helper()
	opts.Now = clk.Now
	l, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return l
}
