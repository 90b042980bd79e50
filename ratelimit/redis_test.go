package ratelimit

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zest-proxy/zest/internal/redisx"
	"github.com/zest-proxy/zest/internal/redisx/redistest"
)

// step is one operation of a parity scenario.
type step struct {
	advance time.Duration // first move the clock
	op      string        // admit | hit | done
	est     int           // admit, hit: the estimate; done: the actual usage
	known   bool          // done
}

// TestRedisParity runs the same operations on a local Limiter and on one backed by Redis and
// expects the same decisions: same admissions, reasons, Retry-After and header windows.
func TestRedisParity(t *testing.T) {
	rc := redistest.New(t)
	ms := time.Millisecond
	tests := []struct {
		name  string
		lim   Limits
		steps []step
	}{
		{"requests", Limits{RequestsPerMinute: 3}, []step{
			{0, "admit", 0, false}, {0, "admit", 0, false}, {0, "admit", 0, false}, {0, "admit", 0, false},
			{7 * ms, "admit", 0, false}, {19_993 * ms, "admit", 0, false}, {0, "admit", 0, false},
		}},
		{"burst", Limits{RequestsPerMinute: 120, BurstRequests: 2}, []step{
			{0, "admit", 0, false}, {0, "hit", 0, false}, {0, "admit", 0, false},
			{499 * ms, "admit", 0, false}, {1 * ms, "admit", 0, false},
		}},
		{"tokens refund and debt", Limits{TokensPerMinute: 1000}, []step{
			{0, "admit", 600, false}, {0, "done", 100, true}, // refund 500
			{0, "admit", 800, false}, {0, "admit", 100, false},
			{0, "done", 2500, true}, // 1700 over: deep debt
			{0, "admit", 1, false}, {30_000 * ms, "admit", 1, false}, {90_001 * ms, "admit", 10, false},
		}},
		{"too large", Limits{TokensPerMinute: 100, RequestsPerMinute: 10}, []step{
			{0, "admit", 101, false}, {0, "admit", 100, false}, {0, "admit", 1, false},
		}},
		{"unknown usage keeps the estimate", Limits{TokensPerMinute: 100}, []step{
			{0, "admit", 60, false}, {0, "done", 0, false}, {0, "admit", 60, false}, {36_000 * ms, "admit", 60, false},
		}},
		{"concurrency", Limits{MaxConcurrent: 1, RequestsPerMinute: 100}, []step{
			{0, "admit", 0, false}, {0, "admit", 0, false}, {0, "hit", 0, false}, {0, "done", 0, false}, {0, "admit", 0, false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			local := newLimiter(t, clk, Options{Default: tt.lim})
			shared := newLimiter(t, clk, Options{Default: tt.lim, Redis: rc})
			defer shared.Close()
			id := t.Name()
			var lt, st []Ticket
			for i, s := range tt.steps {
				clk.Advance(s.advance)
				var ld, sd Decision
				switch s.op {
				case "admit":
					var a, b Ticket
					ld, a = local.Admit(id, s.est)
					sd, b = shared.Admit(id, s.est)
					if ld.Allowed {
						lt, st = append(lt, a), append(st, b)
					}
				case "hit":
					ld, sd = local.Hit(id, s.est), shared.Hit(id, s.est)
				case "done":
					lt[len(lt)-1].Done(s.est, s.known)
					st[len(st)-1].Done(s.est, s.known)
					lt, st = lt[:len(lt)-1], st[:len(st)-1]
					continue
				}
				if ld != sd {
					t.Fatalf("step %d (%+v):\nlocal %+v\nredis %+v", i, s, ld, sd)
				}
			}
			if n := shared.RedisFallbacks(); n != 0 {
				t.Fatalf("%d fallbacks to local", n)
			}
		})
	}
}

// TestRedisSharedRate: two replicas on one Redis and one clock, hammered concurrently, admit
// together exactly what one bucket allows: its size, then the refill of each second.
func TestRedisSharedRate(t *testing.T) {
	rc := redistest.New(t)
	clk := newClock()
	lim := Limits{RequestsPerMinute: 600} // 10 per second
	a := newLimiter(t, clk, Options{Default: lim, Redis: rc})
	b := newLimiter(t, clk, Options{Default: lim, Redis: rc})
	var admitted atomic.Int64
	const seconds = 5
	for sec := 0; sec <= seconds; sec++ {
		if sec > 0 {
			clk.Advance(time.Second)
		}
		var wg sync.WaitGroup
		for g := range 4 {
			l := a
			if g%2 == 1 {
				l = b
			}
			wg.Go(func() {
				for range 200 {
					if d, tk := l.Admit("tenant", 0); d.Allowed {
						admitted.Add(1)
						tk.Done(0, false)
					}
				}
			})
		}
		wg.Wait()
	}
	if got, want := admitted.Load(), int64(600+10*seconds); got != want {
		t.Fatalf("admitted %d, want %d (one bucket for both replicas)", got, want)
	}
}

// TestRedisLeaseExpiry: a replica that dies holding a concurrency slot gives it back after
// LeaseTTL; a live replica renewing its lease keeps it.
func TestRedisLeaseExpiry(t *testing.T) {
	rc := redistest.New(t)
	clk := newClock()
	opts := Options{Default: Limits{MaxConcurrent: 1}, Redis: rc, LeaseTTL: 30 * time.Second}
	a := newLimiter(t, clk, opts)
	b := newLimiter(t, clk, opts)
	defer b.Close()
	d, held := a.Admit("tenant", 0)
	if !d.Allowed {
		t.Fatalf("first admission refused: %+v", d)
	}
	if d, _ := b.Admit("tenant", 0); d.Allowed || d.Reason != ReasonConcurrency {
		t.Fatalf("second slot on the other replica: %+v, want a concurrency rejection", d)
	}
	// Alive: a renews, so after 40s (more than the TTL) the slot is still taken.
	clk.Advance(20 * time.Second)
	if err := a.renewLeases(context.Background()); err != nil {
		t.Fatalf("renew: %v", err)
	}
	clk.Advance(20 * time.Second)
	if d, _ := b.Admit("tenant", 0); d.Allowed {
		t.Fatal("a renewed lease was taken over")
	}
	// Dead: a stops renewing and never calls Done.
	a.Close()
	_ = held
	clk.Advance(10*time.Second + time.Millisecond)
	d, tk := b.Admit("tenant", 0)
	if !d.Allowed {
		t.Fatalf("slot of a dead replica did not come back: %+v", d)
	}
	tk.Done(0, false)
	if n := a.remote.leases.len(); n != 1 {
		t.Fatalf("a holds %d leases, want its 1 unreleased", n)
	}
}

// TestRedisFallback: with Redis cut, decisions are made by the local buckets and counted;
// once it is back, the shared buckets decide again.
func TestRedisFallback(t *testing.T) {
	px := redistest.NewProxy(t, redistest.Addr(t))
	rc := redistest.Client(t, px.Addr(), redistest.Prefix(t), func(o *redisx.Options) { o.RetryAfter = time.Nanosecond })
	clk := newClock()
	lim := Limits{RequestsPerMinute: 2}
	a := newLimiter(t, clk, Options{Default: lim, Redis: rc})
	b := newLimiter(t, clk, Options{Default: lim, Redis: rc})
	for i, l := range []*Limiter{a, b} {
		if d, _ := l.Admit("tenant", 0); !d.Allowed {
			t.Fatalf("admission %d refused", i)
		}
	}
	if d, _ := a.Admit("tenant", 0); d.Allowed {
		t.Fatal("third admission allowed: the bucket is not shared")
	}
	px.Cut()
	// Each replica now has its own full local bucket.
	for i, l := range []*Limiter{a, b} {
		if d, _ := l.Admit("tenant", 0); !d.Allowed {
			t.Fatalf("replica %d refused with Redis down: %+v", i, d)
		}
	}
	if a.RedisFallbacks() == 0 || b.RedisFallbacks() == 0 {
		t.Fatal("fallbacks not counted")
	}
	px.Restore()
	waitPing(t, rc)
	if d, _ := a.Admit("tenant", 0); d.Allowed {
		t.Fatal("after Redis returned, the shared (empty) bucket should decide")
	}
	if d, _ := b.Admit("tenant", 0); d.Allowed {
		t.Fatal("after Redis returned, the shared (empty) bucket should decide on b too")
	}
}

// waitPing polls until rc reaches Redis again (a generous deadline, not a fixed sleep).
func waitPing(t *testing.T, rc *redisx.Client) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for rc.Ping(context.Background()) != nil {
		if time.Now().After(deadline) {
			t.Fatal("redis not reachable again within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
