package ratelimit

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr string // "" = valid
	}{
		{"zero is valid", Options{}, ""},
		{"negative rpm", Options{Default: Limits{RequestsPerMinute: -1}}, "Default.RequestsPerMinute is -1"},
		{"negative tpm", Options{Default: Limits{TokensPerMinute: -5}}, "Default.TokensPerMinute is -5"},
		{"negative concurrency", Options{Default: Limits{MaxConcurrent: -1}}, "Default.MaxConcurrent"},
		{"negative burst", Options{Default: Limits{RequestsPerMinute: 5, BurstRequests: -1}}, "Default.BurstRequests"},
		{"negative token burst", Options{Default: Limits{BurstTokens: -1}}, "Default.BurstTokens"},
		{"override named", Options{Overrides: map[string]Limits{"team-a": {TokensPerMinute: -1}}}, `Overrides["team-a"].TokensPerMinute`},
		{"too large", Options{Default: Limits{TokensPerMinute: 2_000_000_000}}, "want <= 1000000000"},
		{"negative idle", Options{IdleAfter: -time.Second}, "IdleAfter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestDisabledAllowsEverythingWithoutState(t *testing.T) {
	l := newLimiter(t, newClock(), Options{})
	if l.Enabled() {
		t.Fatal("Enabled() = true for zero limits")
	}
	for i := range 100 {
		d, tk := l.Admit("a", 1e6)
		if !d.Allowed {
			t.Fatalf("request %d rejected: %+v", i, d)
		}
		tk.Done(5, true)
	}
	if n := l.Len(); n != 0 {
		t.Fatalf("Len() = %d, want 0", n)
	}
}

// admitN admits n requests of est tokens at the current time and returns
// how many were allowed; tickets are released without reconciliation.
func admitN(l *Limiter, id string, n, est int) int {
	ok := 0
	for range n {
		d, tk := l.Admit(id, est)
		if d.Allowed {
			ok++
		}
		tk.Done(0, false)
	}
	return ok
}

func TestFreshIdentitySpendsWholeMinuteThenSpacing(t *testing.T) {
	tests := []struct {
		rpm     int
		spacing time.Duration // 60s/rpm rounded up to a millisecond
	}{
		{60, time.Second},
		{7, 8572 * time.Millisecond}, // 8.571428...s
		{600, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.rpm), func(t *testing.T) {
			clk := newClock()
			l := newLimiter(t, clk, Options{Default: Limits{RequestsPerMinute: tt.rpm}})
			if got := admitN(l, "u", tt.rpm+5, 0); got != tt.rpm {
				t.Fatalf("fresh identity admitted %d at once, want %d", got, tt.rpm)
			}
			for i := range 5 {
				d, _ := l.Admit("u", 0)
				// The waits already taken were rounded up to a millisecond, so a
				// later wait may be up to 1ms shorter than the exact spacing.
				if d.Allowed || d.Reason != ReasonRequests || d.RetryAfter > tt.spacing || d.RetryAfter < tt.spacing-time.Millisecond {
					t.Fatalf("step %d: got allowed=%v reason=%q retry=%v, want rejected requests after ~%v",
						i, d.Allowed, d.Reason, d.RetryAfter, tt.spacing)
				}
				clk.Advance(d.RetryAfter - time.Millisecond)
				if d, _ := l.Admit("u", 0); d.Allowed {
					t.Fatalf("step %d: admitted 1ms before RetryAfter", i)
				}
				clk.Advance(time.Millisecond)
				if d, _ := l.Admit("u", 0); !d.Allowed {
					t.Fatalf("step %d: rejected at RetryAfter: %+v", i, d)
				}
			}
		})
	}
}

func TestBurstMakesBucketSmallerNeverLarger(t *testing.T) {
	tests := []struct {
		name      string
		lim       Limits
		wantBurst int
	}{
		{"smaller", Limits{RequestsPerMinute: 60, BurstRequests: 10}, 10},
		{"larger is clamped", Limits{RequestsPerMinute: 10, BurstRequests: 50}, 10},
		{"equal", Limits{RequestsPerMinute: 30, BurstRequests: 30}, 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			l := newLimiter(t, clk, Options{Default: tt.lim})
			if got := admitN(l, "u", 100, 0); got != tt.wantBurst {
				t.Fatalf("admitted %d at once, want %d", got, tt.wantBurst)
			}
			// The refill rate stays the per-minute limit.
			clk.Advance(time.Minute)
			if got := admitN(l, "u", 100, 0); got != tt.wantBurst {
				t.Fatalf("after a minute admitted %d, want %d (bucket refilled to its size)", got, tt.wantBurst)
			}
			clk.Advance(time.Minute / time.Duration(tt.lim.RequestsPerMinute))
			if got := admitN(l, "u", 100, 0); got != 1 {
				t.Fatalf("after 60/N seconds admitted %d, want 1", got)
			}
		})
	}
	t.Run("token burst", func(t *testing.T) {
		l := newLimiter(t, newClock(), Options{Default: Limits{TokensPerMinute: 1000, BurstTokens: 300}})
		if got := admitN(l, "u", 10, 100); got != 3 {
			t.Fatalf("admitted %d requests of 100 tokens, want 3", got)
		}
	})
}

// TestRateOverAnHour keeps a client under constant pressure for a simulated
// hour and checks the admitted volume is the bucket size plus an hour of
// refill, within 1%.
func TestRateOverAnHour(t *testing.T) {
	tests := []struct {
		name string
		lim  Limits
		est  int
		want func(admitted int) float64 // volume admitted, in the limit's units
		rate int
		size int
	}{
		{name: "7 rpm", lim: Limits{RequestsPerMinute: 7}, rate: 7, size: 7},
		{name: "600 rpm", lim: Limits{RequestsPerMinute: 600}, rate: 600, size: 600},
		{name: "600 rpm burst 20", lim: Limits{RequestsPerMinute: 600, BurstRequests: 20}, rate: 600, size: 20},
		{name: "10k tpm", lim: Limits{TokensPerMinute: 10000}, est: 37, rate: 10000, size: 10000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			l := newLimiter(t, clk, Options{Default: tt.lim})
			admitted := 0
			for step := 0; step < 3600*4; step++ { // every 250ms, a few tries
				admitted += admitN(l, "u", 5, tt.est)
				clk.Advance(250 * time.Millisecond)
			}
			volume := float64(admitted)
			if tt.est > 0 {
				volume *= float64(tt.est)
			}
			want := float64(tt.size + 60*tt.rate)
			if diff := (volume - want) / want; diff > 0.01 || diff < -0.01 {
				t.Fatalf("admitted %.0f units in an hour, want %.0f ±1%%", volume, want)
			}
		})
	}
}

func TestReconcile(t *testing.T) {
	t.Run("refund lets the next request in", func(t *testing.T) {
		l := newLimiter(t, newClock(), Options{Default: Limits{TokensPerMinute: 1000}})
		d, tk := l.Admit("u", 600)
		if !d.Allowed || d.Tokens.Remaining != 400 {
			t.Fatalf("first: %+v", d)
		}
		if d, _ := l.Admit("u", 500); d.Allowed || d.Reason != ReasonTokens {
			t.Fatalf("500 more admitted before the refund: %+v", d)
		}
		tk.Done(100, true) // 500 unused
		if d, _ := l.Admit("u", 500); !d.Allowed || d.Tokens.Remaining != 400 {
			t.Fatalf("after refund: %+v", d)
		}
	})
	t.Run("unknown usage keeps the estimate", func(t *testing.T) {
		l := newLimiter(t, newClock(), Options{Default: Limits{TokensPerMinute: 1000}})
		_, tk := l.Admit("u", 600)
		tk.Done(100, false)
		if d, _ := l.Admit("u", 500); d.Allowed {
			t.Fatalf("estimate was refunded without a known usage: %+v", d)
		}
	})
	t.Run("excess puts the bucket in debt", func(t *testing.T) {
		clk := newClock()
		l := newLimiter(t, clk, Options{Default: Limits{TokensPerMinute: 1000}})
		_, tk := l.Admit("u", 100)
		tk.Done(1600, true) // 1500 over the estimate: 600 below empty
		d, _ := l.Admit("u", 1)
		// 601 tokens must refill at 1000/min: 36.06s.
		if d.Allowed || d.Reason != ReasonTokens || d.RetryAfter != 36060*time.Millisecond || d.Tokens.Remaining != 0 {
			t.Fatalf("in debt: allowed=%v reason=%q retry=%v remaining=%d", d.Allowed, d.Reason, d.RetryAfter, d.Tokens.Remaining)
		}
		if d.Tokens.Reset != 96*time.Second { // 1600 tokens at 1000/min
			t.Fatalf("Reset = %v, want 1m36s", d.Tokens.Reset)
		}
		clk.Advance(d.RetryAfter)
		if d, _ := l.Admit("u", 1); !d.Allowed {
			t.Fatalf("rejected after RetryAfter: %+v", d)
		}
	})
	t.Run("refund never overfills", func(t *testing.T) {
		clk := newClock()
		l := newLimiter(t, clk, Options{Default: Limits{TokensPerMinute: 1000}})
		_, tk := l.Admit("u", 900)
		clk.Advance(time.Hour) // bucket full again while the request ran
		tk.Done(0, true)
		if got := admitN(l, "u", 3, 600); got != 1 {
			t.Fatalf("admitted %d requests of 600 after refund into a full bucket, want 1", got)
		}
	})
}

func TestNeverFits(t *testing.T) {
	tests := []struct {
		name string
		lim  Limits
		est  int
		size int
	}{
		{"above tpm", Limits{TokensPerMinute: 1000}, 1001, 1000},
		{"above token burst", Limits{TokensPerMinute: 1000, BurstTokens: 500}, 600, 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLimiter(t, newClock(), Options{Default: tt.lim})
			d, tk := l.Admit("u", tt.est)
			tk.Done(0, false)
			if d.Allowed || !d.Never || d.Reason != ReasonTokens || d.RetryAfter != 0 {
				t.Fatalf("got %+v, want a Never rejection without RetryAfter", d)
			}
			if msg := d.Message(); !strings.Contains(msg, "never") || !strings.Contains(msg, fmt.Sprint(tt.size)) {
				t.Fatalf("Message() = %q", msg)
			}
			h := make(map[string][]string)
			d.WriteHeaders(h)
			if _, ok := h["Retry-After"]; ok {
				t.Fatalf("Never carries a Retry-After: %v", h)
			}
			if d, _ := l.Admit("u", tt.size); !d.Allowed {
				t.Fatalf("the rejection consumed tokens: %+v", d)
			}
		})
	}
}

func TestConcurrencyCap(t *testing.T) {
	l := newLimiter(t, newClock(), Options{Default: Limits{MaxConcurrent: 2}})
	d1, t1 := l.Admit("u", 0)
	d2, t2 := l.Admit("u", 0)
	if !d1.Allowed || !d2.Allowed {
		t.Fatal("first two requests rejected")
	}
	d3, t3 := l.Admit("u", 0)
	if d3.Allowed || d3.Reason != ReasonConcurrency || d3.RetryAfter != 0 || d3.Concurrency.Remaining != 0 {
		t.Fatalf("third: %+v", d3)
	}
	if msg := d3.Message(); !strings.Contains(msg, "Limit 2, In flight 2") {
		t.Fatalf("Message() = %q", msg)
	}
	t3.Done(0, false) // zero ticket: no effect
	if d, _ := l.Admit("other", 0); !d.Allowed {
		t.Fatal("another identity is affected by u's cap")
	}
	t1.Done(0, false)
	t1.Done(0, false) // idempotent: must not free t2's slot
	d4, t4 := l.Admit("u", 0)
	if !d4.Allowed {
		t.Fatalf("rejected after Done: %+v", d4)
	}
	if d, _ := l.Admit("u", 0); d.Allowed {
		t.Fatal("double Done freed a second slot")
	}
	t2.Done(0, false)
	t4.Done(0, false)
	var nilTicket *Ticket
	nilTicket.Done(1, true) // nil-safe
}

func TestOverrides(t *testing.T) {
	l := newLimiter(t, newClock(), Options{
		Default: Limits{RequestsPerMinute: 2},
		Overrides: map[string]Limits{
			"vip":  {RequestsPerMinute: 100},
			"free": {}, // unlimited
			"tiny": {TokensPerMinute: 50},
		},
	})
	for _, tt := range []struct {
		id   string
		want int
	}{{"someone", 2}, {"vip", 100}, {"free", 500}, {"tiny", 500}} {
		t.Run(tt.id, func(t *testing.T) {
			if got := admitN(l, tt.id, 500, 0); got != tt.want {
				t.Fatalf("admitted %d, want %d", got, tt.want)
			}
		})
	}
	// "tiny" replaces the default entirely: no request limit, a token one.
	if d, _ := l.Admit("tiny", 51); !d.Never {
		t.Fatalf("override token limit not applied: %+v", d)
	}
	// An unlimited identity holds no bucket.
	before := l.Len()
	admitN(l, "free", 10, 0)
	if l.Len() != before {
		t.Fatal("an unlimited identity got a bucket")
	}
}

func TestHit(t *testing.T) {
	t.Run("counts a request, not tokens", func(t *testing.T) {
		l := newLimiter(t, newClock(), Options{Default: Limits{RequestsPerMinute: 2, TokensPerMinute: 100, MaxConcurrent: 1}})
		_, tk := l.Admit("u", 10) // holds the only concurrency slot
		d := l.Hit("u", 90)
		if !d.Allowed || d.Requests.Remaining != 0 || d.Tokens.Remaining != 90 {
			t.Fatalf("hit: %+v", d)
		}
		if d := l.Hit("u", 0); d.Allowed || d.Reason != ReasonRequests {
			t.Fatalf("third request allowed: %+v", d)
		}
		tk.Done(10, true)
	})
	t.Run("ChargeHits charges tokens", func(t *testing.T) {
		l := newLimiter(t, newClock(), Options{Default: Limits{TokensPerMinute: 100}, ChargeHits: true})
		if d := l.Hit("u", 90); !d.Allowed || d.Tokens.Remaining != 10 {
			t.Fatalf("hit: %+v", d)
		}
		if d := l.Hit("u", 20); d.Allowed || d.Reason != ReasonTokens {
			t.Fatalf("hit over the token limit: %+v", d)
		}
	})
}

// TestRetryAfterIsHonest runs clients that, whenever rejected, sleep exactly
// the advertised wait on the fake clock: the retry must always be admitted.
// Usage is reconciled with a different value than the estimate each time,
// so waits include refunds and debt.
func TestRetryAfterIsHonest(t *testing.T) {
	tests := []struct {
		name   string
		lim    Limits
		header bool // sleep the Retry-After header's whole seconds instead
	}{
		{"rpm", Limits{RequestsPerMinute: 7}, false},
		{"tpm with debt", Limits{TokensPerMinute: 997}, false},
		{"both, burst", Limits{RequestsPerMinute: 13, BurstRequests: 3, TokensPerMinute: 5000, BurstTokens: 2000}, false},
		{"both, header seconds", Limits{RequestsPerMinute: 13, TokensPerMinute: 5000}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			l := newLimiter(t, clk, Options{Default: tt.lim})
			seed := uint32(1)
			next := func(n int) int { // deterministic xorshift
				seed ^= seed << 13
				seed ^= seed >> 17
				seed ^= seed << 5
				return int(seed % uint32(n))
			}
			rejections := 0
			for i := range 3000 {
				est := 1 + next(400)
				d, tk := l.Admit("u", est)
				if !d.Allowed {
					if d.Never || d.RetryAfter <= 0 {
						t.Fatalf("request %d: rejection without a wait: %+v", i, d)
					}
					rejections++
					wait := d.RetryAfter
					if tt.header {
						h := make(map[string][]string)
						d.WriteHeaders(h)
						var s int
						fmt.Sscan(h["Retry-After"][0], &s)
						wait = time.Duration(s) * time.Second
					}
					clk.Advance(wait)
					d, tk = l.Admit("u", est)
					if !d.Allowed {
						t.Fatalf("request %d: rejected after waiting %v: %+v", i, wait, d)
					}
				}
				tk.Done(est/2+next(est), true) // sometimes under, sometimes over
				clk.Advance(time.Duration(next(3000)) * time.Millisecond)
			}
			if rejections < 100 {
				t.Fatalf("only %d rejections: the test did not exercise waiting", rejections)
			}
		})
	}
}

func TestClockGoingBackwards(t *testing.T) {
	clk := newClock()
	l := newLimiter(t, clk, Options{Default: Limits{RequestsPerMinute: 2}})
	admitN(l, "u", 2, 0)
	clk.Advance(-time.Hour)
	if got := admitN(l, "u", 2, 0); got != 0 {
		t.Fatalf("a backwards clock refilled the bucket: %d admitted", got)
	}
	clk.Advance(time.Hour + 30*time.Second)
	if got := admitN(l, "u", 2, 0); got != 1 {
		t.Fatalf("admitted %d 30s after the last charge, want 1", got)
	}
}
