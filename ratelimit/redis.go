package ratelimit

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/zest-proxy/zest/internal/redisx"
)

// Buckets in Redis. When Options.Redis is set, every identity's buckets live in Redis so that
// all replicas enforce one limit. The scripts below are bucket.go's arithmetic in Lua, with one
// change of unit: time is in milliseconds and one unit of debt is 1/60000 of a bucket unit,
// so that every value stays an exact integer in Lua's doubles (below 2^52: a limit of 1e9
// units is 6e13 scaled). Converting a debt to bucket.go's µs scale is a multiplication by
// 1000, so Decision windows are computed by the same Go code as locally.
//
// Keys, per identity (hashed; the hash tag keeps both in one Cluster slot):
//
//	<prefix>:rl:{<hash>}     hash r, t (debts), l (ms of the last refill); expires when full
//	<prefix>:rl:{<hash>}:c   sorted set of concurrency leases, scored by their expiry in ms
//
// Time comes from the caller's clock (Options.Now), passed into the scripts: replicas are
// expected to run NTP; a replica whose clock runs ahead by s refills at most s × rate early.

// msWindow is one minute in ms: the debt of one unit in the Redis scale.
const msWindow = 60_000

// luaBucket is what both scripts share: the window in ms (a bucket's debt is kept in
// request-milliseconds, as the local buckets keep it), the debt cap, a ceiling division exact
// for integers up to 2^53, and the refill of a debt after e ms at rate units per ms.
const luaBucket = `
local W, MAXDEBT = 60000, 4503599627370496
local function cdiv(a, b)
  local q = math.floor(a / b)
  if q * b < a then q = q + 1 elseif (q - 1) * b >= a then q = q - 1 end
  return q
end
local function refill(debt, rate, e)
  if debt <= 0 or e <= 0 or rate <= 0 then return math.max(debt, 0) end
  return math.max(debt - e * rate, 0)
end
`

// admitScript takes one request and k tokens, and a lease when slot is set, if they fit.
// It returns {allowed, reason (0 none, 1 requests, 2 tokens, 3 concurrency), never,
// request debt, token debt, request wait ms, token wait ms, leases held}.
var admitScript = redis.NewScript(luaBucket + `
local now = tonumber(ARGV[1])
local rrate, rsize = tonumber(ARGV[2]), tonumber(ARGV[3])
local trate, tsize = tonumber(ARGV[4]), tonumber(ARGV[5])
local conc, k, slot = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8] == '1'
local function wait(debt, size, rate, n)
  local over = debt + n * W - size * W
  if over <= 0 then return 0 end
  return cdiv(over, rate)
end
local st = redis.call('HMGET', KEYS[1], 'r', 't', 'l')
local r, t, last = tonumber(st[1]) or 0, tonumber(st[2]) or 0, tonumber(st[3]) or now
if now > last then
  r, t = refill(r, rrate, now - last), refill(t, trate, now - last)
  last = now
end
local held = 0
if conc > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  held = redis.call('ZCARD', KEYS[2])
end
if trate > 0 and k > tsize then return {0, 2, 1, r, t, 0, 0, held} end
local rw, tw = 0, 0
if rrate > 0 then rw = wait(r, rsize, rrate, 1) end
if trate > 0 then tw = wait(t, tsize, trate, k) end
if rw > 0 or tw > 0 then
  local reason = 1
  if tw > rw then reason = 2 end
  return {0, reason, 0, r, t, rw, tw, held}
end
if slot and conc > 0 and held >= conc then return {0, 3, 0, r, t, 0, 0, held} end
if rrate > 0 then r = math.min(r + W, MAXDEBT) end
if trate > 0 then t = math.min(t + math.min(k, 1000000000) * W, MAXDEBT) end
if slot and conc > 0 then
  local exp = tonumber(ARGV[10])
  redis.call('ZADD', KEYS[2], exp, ARGV[9])
  redis.call('PEXPIRE', KEYS[2], exp - now + 1000)
  held = held + 1
end
local full = 0
if rrate > 0 then full = math.max(full, cdiv(r, rrate)) end
if trate > 0 then full = math.max(full, cdiv(t, trate)) end
if full > 0 then
  redis.call('HSET', KEYS[1], 'r', r, 't', t, 'l', last)
  redis.call('PEXPIRE', KEYS[1], full + 1000)
end
return {1, 0, 0, r, t, 0, 0, held}
`)

// doneScript releases a lease and settles a token reservation: delta (actual - reserved)
// is charged when positive, refunded when negative, ignored unless known is set.
var doneScript = redis.NewScript(luaBucket + `
local now = tonumber(ARGV[1])
local rrate, trate = tonumber(ARGV[2]), tonumber(ARGV[3])
local known, delta = ARGV[4] == '1', tonumber(ARGV[5])
if ARGV[6] ~= '' then redis.call('ZREM', KEYS[2], ARGV[6]) end
if not known or trate <= 0 or delta == 0 then return 0 end
local st = redis.call('HMGET', KEYS[1], 'r', 't', 'l')
local r, t, last = tonumber(st[1]) or 0, tonumber(st[2]) or 0, tonumber(st[3]) or now
if now > last then
  r, t = refill(r, rrate, now - last), refill(t, trate, now - last)
  last = now
end
if delta > 0 then
  t = math.min(t + math.min(delta, 1000000000) * W, MAXDEBT)
else
  t = math.max(t - math.min(-delta, 1000000000) * W, 0)
end
local full = 0
if rrate > 0 then full = math.max(full, cdiv(r, rrate)) end
if trate > 0 then full = math.max(full, cdiv(t, trate)) end
if full > 0 then
  redis.call('HSET', KEYS[1], 'r', r, 't', t, 'l', last)
  redis.call('PEXPIRE', KEYS[1], full + 1000)
else
  redis.call('DEL', KEYS[1])
end
return 0
`)

// remote is the Redis side of a Limiter.
type remote struct {
	c         *redisx.Client
	leaseTTL  time.Duration
	seq       atomic.Uint64
	fallbacks atomic.Uint64 // decisions made locally because Redis failed
	leases    leaseSet
}

// keys returns the bucket and lease keys of identity.
func (r *remote) keys(identity string) (bucket, leases string) {
	bucket = r.c.Key("rl", redisx.Tag(redisx.Hash(identity)))
	return bucket, bucket + ":c"
}

// takeRemote is take against Redis. ok is false when Redis failed; the caller then decides
// locally.
func (l *Limiter) takeRemote(ctx context.Context, identity string, est int, slot bool) (d Decision, t Ticket, ok bool) {
	pi := l.policyFor(identity)
	p := &l.policies[pi]
	if !p.limited() {
		return Decision{Allowed: true}, Ticket{}, true
	}
	r := l.remote
	k := int64(min(max(est, 0), maxUnits))
	now := l.now()
	nowMs := now.UnixMilli()
	bucket, leases := r.keys(identity)
	lease := ""
	if slot && p.conc > 0 {
		lease = r.c.ID() + "-" + strconv.FormatUint(r.seq.Add(1), 36)
	}
	var res []int64
	err := r.c.Do(ctx, func(ctx context.Context) error {
		var err error
		res, err = admitScript.Run(ctx, r.c.R, []string{bucket, leases},
			nowMs, p.req.rate, p.req.size, p.tok.rate, p.tok.size, p.conc, k, boolArg(slot), lease,
			now.Add(r.leaseTTL).UnixMilli()).Int64Slice()
		return err
	})
	if err != nil || len(res) != 8 {
		r.fallbacks.Add(1)
		l.log.Debug("ratelimit: redis failed; deciding locally", "error", err)
		return Decision{}, Ticket{}, false
	}
	d = Decision{Requested: int(k), Allowed: res[0] == 1, Never: res[2] == 1}
	d.Reason = [...]string{"", ReasonRequests, ReasonTokens, ReasonConcurrency}[min(max(res[1], 0), 3)]
	d.RetryAfter = time.Duration(max(res[5], res[6])) * time.Millisecond
	d.Requests = windowOf(p.req, res[3]*1000)
	d.Tokens = windowOf(p.tok, res[4]*1000)
	if p.conc > 0 {
		held := min(res[7], int64(p.conc))
		d.Concurrency = Window{Limit: int(p.conc), Size: int(p.conc), Remaining: int(int64(p.conc) - held)}
	}
	if d.Allowed && slot {
		t = Ticket{l: l, tokens: k, policy: pi, remote: bucket, lease: lease}
		if lease != "" {
			r.leases.add(lease, leases)
		}
	}
	return d, t, true
}

// doneRemote settles a ticket admitted in Redis. When Redis fails, the lease runs out by
// itself (LeaseTTL) and the estimate stands.
func (l *Limiter) doneRemote(t *Ticket, actual int, known bool) {
	r := l.remote
	p := &l.policies[t.policy]
	if t.lease != "" {
		r.leases.remove(t.lease)
	}
	if t.lease == "" && (!known || !p.tok.on()) {
		return // nothing to settle
	}
	a := int64(min(max(actual, 0), maxUnits))
	err := r.c.Do(context.Background(), func(ctx context.Context) error {
		return doneScript.Run(ctx, r.c.R, []string{t.remote, t.remote + ":c"},
			l.now().UnixMilli(), p.req.rate, p.tok.rate, boolArg(known), a-t.tokens, t.lease).Err()
	})
	if err != nil {
		r.fallbacks.Add(1)
		l.log.Debug("ratelimit: redis failed to settle a ticket; its lease expires by itself", "error", err)
	}
}

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// RedisFallbacks counts the decisions and settlements made without Redis because it failed
// or its breaker was open (0 without Options.Redis).
func (l *Limiter) RedisFallbacks() uint64 {
	if l.remote == nil {
		return 0
	}
	return l.remote.fallbacks.Load()
}
