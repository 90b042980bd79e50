package ratelimit

import (
	"context"
	"hash/maphash"
)

// Ticket is an admitted request's hold on its identity: the reserved token
// estimate and one concurrency slot. Call Done exactly once when the request
// ends (defer it); a Ticket never released keeps its slot and its bucket.
// Ticket is a value so that Admit does not allocate; Done on the same
// variable twice is a no-op, but Done on two copies releases twice.
// The zero Ticket (returned for a rejection or an unlimited identity) is
// valid and its Done does nothing.
type Ticket struct {
	l      *Limiter
	key    uint64
	tokens int64 // the estimate charged at admission
	policy uint32
	remote string // the bucket key in Redis; "" for a ticket of the local buckets
	lease  string // the concurrency lease in Redis; "" when none
}

// Admit decides whether identity may send a request estimated at estTokens
// tokens (prompt plus maximum output; negative counts as 0). When allowed,
// it takes one request, estTokens tokens and one concurrency slot, and the
// Ticket must be released with Done. A rejection takes nothing.
//
// When several limits are exhausted, Reason names the one with the longest
// wait and RetryAfter covers all rate limits. A token estimate larger than
// the token bucket is rejected with Never set and no RetryAfter. The
// concurrency limit is checked after the rate limits and has no RetryAfter.
func (l *Limiter) Admit(identity string, estTokens int) (Decision, Ticket) {
	return l.AdmitContext(context.Background(), identity, estTokens)
}

// AdmitContext is Admit; with Options.Redis, ctx bounds the call to Redis (as does the
// client's own timeout), and a failed call is decided by the local buckets.
func (l *Limiter) AdmitContext(ctx context.Context, identity string, estTokens int) (Decision, Ticket) {
	if l.remote != nil {
		if d, t, ok := l.takeRemote(ctx, identity, estTokens, true); ok {
			return d, t
		}
	}
	return l.take(identity, estTokens, true)
}

// Hit accounts a request answered from cache: it checks and takes one
// request, and estTokens tokens only when Options.ChargeHits is set. It
// holds no concurrency slot and needs no Done. Like Admit, a rejection takes
// nothing; the caller decides whether to serve the hit anyway.
func (l *Limiter) Hit(identity string, estTokens int) Decision {
	return l.HitContext(context.Background(), identity, estTokens)
}

// HitContext is Hit; ctx bounds the call to Redis as in AdmitContext.
func (l *Limiter) HitContext(ctx context.Context, identity string, estTokens int) Decision {
	if !l.chargeHits {
		estTokens = 0
	}
	if l.remote != nil {
		if d, _, ok := l.takeRemote(ctx, identity, estTokens, false); ok {
			return d
		}
	}
	d, _ := l.take(identity, estTokens, false)
	return d
}

func (l *Limiter) take(identity string, est int, slot bool) (Decision, Ticket) {
	if !l.enabled {
		return Decision{Allowed: true}, Ticket{}
	}
	k := int64(min(max(est, 0), maxUnits))
	h := maphash.String(l.seed, identity)
	sh := &l.shards[h>>(64-shardBits)]
	now := l.micros()

	sh.mu.Lock()
	if now-sh.swept >= l.idleFor {
		l.sweepLocked(sh, now)
	}
	b, found := sh.m[h]
	if !found {
		pi := l.policyFor(identity)
		if !l.policies[pi].limited() {
			sh.mu.Unlock()
			return Decision{Allowed: true}, Ticket{}
		}
		b = bucket{last: now, policy: pi}
	}
	p := &l.policies[b.policy]
	b.advance(p, now)

	d := Decision{Requested: int(k)}
	var reqWait, tokWait int64
	switch {
	case p.tok.on() && k > p.tok.size:
		d.Reason, d.Never = ReasonTokens, true
	default:
		if p.req.on() {
			reqWait = p.req.wait(b.req, 1)
		}
		if p.tok.on() {
			tokWait = p.tok.wait(b.tok, k)
		}
		switch {
		case reqWait > 0 || tokWait > 0:
			d.Reason = ReasonRequests
			if tokWait > reqWait {
				d.Reason = ReasonTokens
			}
		case slot && p.conc > 0 && b.inflight >= p.conc:
			d.Reason = ReasonConcurrency
		default:
			d.Allowed = true
		}
	}

	var t Ticket
	if d.Allowed {
		if p.req.on() {
			b.req = p.req.charge(b.req, 1)
		}
		if p.tok.on() {
			b.tok = p.tok.charge(b.tok, k)
		}
		if slot {
			b.inflight++
			t = Ticket{l: l, key: h, tokens: k, policy: b.policy}
		}
	}
	if found || d.Allowed {
		sh.m[h] = b
		sh.peak = max(sh.peak, len(sh.m))
	}
	inflight := b.inflight
	sh.mu.Unlock()

	d.RetryAfter = roundUpMs(max(reqWait, tokWait))
	d.Requests = windowOf(p.req, b.req)
	d.Tokens = windowOf(p.tok, b.tok)
	if p.conc > 0 {
		d.Concurrency = Window{Limit: int(p.conc), Size: int(p.conc), Remaining: int(max(p.conc-inflight, 0))}
	}
	return d, t
}

// Done releases the ticket's concurrency slot and, when known is true,
// reconciles its token reservation with actualTokens (the answer's usage):
// the unused part is refunded, an excess is charged, possibly putting the
// bucket into debt. Pass known=false when the usage is unknown (a cut
// stream, an upstream error without usage): the estimate then stands.
// Done is nil-safe and idempotent on the same variable.
func (t *Ticket) Done(actualTokens int, known bool) {
	if t == nil || t.l == nil {
		return
	}
	l := t.l
	t.l = nil
	if t.remote != "" {
		l.doneRemote(t, actualTokens, known)
		return
	}
	sh := &l.shards[t.key>>(64-shardBits)]
	now := l.micros()

	sh.mu.Lock()
	defer sh.mu.Unlock()
	b, found := sh.m[t.key]
	if !found { // cannot happen while inflight > 0; keep accounting right anyway
		b = bucket{last: now, policy: t.policy}
	}
	p := &l.policies[b.policy]
	b.advance(p, now)
	if known && p.tok.on() {
		a := int64(min(max(actualTokens, 0), maxUnits))
		switch {
		case a > t.tokens:
			b.tok = p.tok.charge(b.tok, a-t.tokens)
		case a < t.tokens:
			b.tok = p.tok.refund(b.tok, t.tokens-a)
		}
	}
	if b.inflight > 0 {
		b.inflight--
	}
	sh.m[t.key] = b
	sh.peak = max(sh.peak, len(sh.m))
}
