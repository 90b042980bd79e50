package ratelimit

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestIdleSweep(t *testing.T) {
	t.Run("drops only idle full buckets", func(t *testing.T) {
		clk := newClock()
		l := newLimiter(t, clk, Options{Default: Limits{TokensPerMinute: 60, MaxConcurrent: 5}, IdleAfter: time.Minute})
		admitN(l, "plain", 1, 10)
		_, held := l.Admit("held", 1)
		_, debtor := l.Admit("debtor", 1)
		debtor.Done(60*120, true) // two hours of debt
		if l.Len() != 3 {
			t.Fatalf("Len() = %d, want 3", l.Len())
		}
		clk.Advance(30 * time.Second)
		if n := l.Sweep(); n != 0 {
			t.Fatalf("swept %d buckets touched 30s ago", n)
		}
		clk.Advance(time.Hour)
		if n := l.Sweep(); n != 1 || l.Len() != 2 {
			t.Fatalf("after 1h: swept %d, Len %d; want 1 dropped (in-flight and indebted kept)", n, l.Len())
		}
		held.Done(1, true)
		clk.Advance(2 * time.Hour)
		if n := l.Sweep(); n != 2 || l.Len() != 0 {
			t.Fatalf("after 3h: swept %d, Len %d; want all dropped", n, l.Len())
		}
	})
	t.Run("admissions bound Len without explicit sweeps", func(t *testing.T) {
		clk := newClock()
		l := newLimiter(t, clk, Options{Default: Limits{RequestsPerMinute: 60}, IdleAfter: time.Minute})
		const perRound = 2000
		for round := range 20 {
			for i := range perRound {
				admitN(l, fmt.Sprintf("r%d-%d", round, i), 1, 0)
			}
			if n := l.Len(); n > 3*perRound {
				t.Fatalf("round %d: Len() = %d, want <= %d", round, n, 3*perRound)
			}
			clk.Advance(time.Minute)
		}
	})
	t.Run("a dropped bucket comes back full", func(t *testing.T) {
		clk := newClock()
		l := newLimiter(t, clk, Options{Default: Limits{RequestsPerMinute: 3}, IdleAfter: time.Minute})
		admitN(l, "u", 3, 0)
		clk.Advance(2 * time.Minute)
		l.Sweep()
		if got := admitN(l, "u", 5, 0); got != 3 {
			t.Fatalf("admitted %d after the sweep, want 3", got)
		}
	})
}

func TestConcurrentAdmitOneNewIdentity(t *testing.T) {
	l := newLimiter(t, newClock(), Options{Default: Limits{RequestsPerMinute: 1000, MaxConcurrent: 10}})
	const workers = 64
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		mu      sync.Mutex
		allowed int
		tickets []Ticket
	)
	for range workers {
		wg.Go(func() {
			<-start
			d, tk := l.Admit("new", 0)
			if d.Allowed {
				mu.Lock()
				allowed++
				tickets = append(tickets, tk)
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if allowed != 10 {
		t.Fatalf("%d concurrent requests admitted, want exactly the cap of 10", allowed)
	}
	if n := l.Len(); n != 1 {
		t.Fatalf("Len() = %d, want 1 bucket", n)
	}
	for i := range tickets {
		tickets[i].Done(0, false)
	}
	// 10 requests were taken: 990 remain, minus this one.
	if d, _ := l.Admit("new", 0); d.Requests.Remaining != 989 {
		t.Fatalf("Remaining = %d, want 989", d.Requests.Remaining)
	}
}
