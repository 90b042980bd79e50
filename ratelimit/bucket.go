package ratelimit

// Bucket arithmetic. Every limit is "N units per minute" with a bucket of
// size S <= N. A bucket's state is its debt: how far below full it is, in
// scaled units where one unit = window (the minute in microseconds). Refill
// over e microseconds removes exactly e*N scaled units, so all math is exact
// integer arithmetic: no float rounding can make a client that waited exactly
// the advertised Retry-After come back to a rejection.

const (
	// window is the length of every limit's window: one minute in µs.
	window = 60_000_000
	// maxUnits caps any limit, burst and charge (1e9 units per minute);
	// it keeps size*window and charges far inside int64.
	maxUnits = 1_000_000_000
	// maxDebt caps how far a bucket can go into debt (about 1.4e5 years of
	// refill at one unit per minute), so charges never overflow.
	maxDebt = 1 << 62
)

// dim is the compiled shape of one bucket: refill rate and size in units.
// The zero dim is unlimited.
type dim struct {
	rate int64 // units per minute; 0 = unlimited
	size int64 // bucket size in units, 1..rate
}

// on reports whether the dimension is limited.
func (d dim) on() bool { return d.rate > 0 }

// untilFull returns the µs until a bucket with this debt is full again.
func (d dim) untilFull(debt int64) int64 {
	if debt <= 0 {
		return 0
	}
	return (debt + d.rate - 1) / d.rate
}

// refill returns the debt left after elapsed µs (never negative).
func (d dim) refill(debt, elapsed int64) int64 {
	if debt <= 0 || elapsed <= 0 {
		return max(debt, 0)
	}
	if elapsed >= d.untilFull(debt) {
		return 0
	}
	return debt - elapsed*d.rate
}

// wait returns the µs until k units (k <= size) fit, assuming nothing else
// is taken meanwhile; 0 when they fit now.
func (d dim) wait(debt, k int64) int64 {
	over := debt + k*window - d.size*window
	if over <= 0 {
		return 0
	}
	return (over + d.rate - 1) / d.rate
}

// remaining returns the whole units available now (0 while in debt).
func (d dim) remaining(debt int64) int64 {
	return max((d.size*window-debt)/window, 0)
}

// charge adds k units of debt; the bucket may go below empty.
func (d dim) charge(debt, k int64) int64 {
	return min(debt+min(k, maxUnits)*window, maxDebt)
}

// refund gives k units back; a bucket is never fuller than its size.
func (d dim) refund(debt, k int64) int64 {
	return max(debt-min(k, maxUnits)*window, 0)
}

// bucket is the state of one identity. It holds no pointers, so a map of
// millions of them costs the garbage collector nothing to scan.
type bucket struct {
	req, tok int64  // debts, scaled as described above
	last     int64  // µs since the limiter's epoch of the last refill
	inflight int32  // tickets not yet Done
	policy   uint32 // index into Limiter.policies
}

// advance refills both dimensions up to now. A clock that steps backwards
// refills nothing and does not move last back.
func (b *bucket) advance(p *policy, now int64) {
	if e := now - b.last; e > 0 {
		b.req = p.req.refill(b.req, e)
		b.tok = p.tok.refill(b.tok, e)
		b.last = now
	}
}

// idle reports whether the bucket is indistinguishable from a fresh one
// (full, nothing in flight) and untouched for at least idleFor µs.
func (b *bucket) idle(p *policy, now, idleFor int64) bool {
	e := now - b.last
	return b.inflight == 0 && e >= idleFor &&
		p.req.refill(b.req, e) == 0 && p.tok.refill(b.tok, e) == 0
}
