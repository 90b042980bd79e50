package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/zest-proxy/zest/bench/load"
	"github.com/zest-proxy/zest/bench/report"
)

// Scenarios that share caches and limits through Redis (README "Running several replicas").
// They need a Redis: -redis ADDR, else $ZEST_BENCH_REDIS, else 127.0.0.1:6379 when it answers a
// PING; without one they are listed as skipped. Every zest start gets its own key prefix under
// the run's (zest-bench-<time>-<random>), and the run deletes its keys at the end.

// redisEnvVar names the Redis the benchmark uses when -redis is not given.
const redisEnvVar = "ZEST_BENCH_REDIS"

// tierHitClosed is how many requests the closed loop of zest-redis-tier-hit may send: each is a
// prompt stored beforehand through the other replica, asked once (so never a local hit).
const (
	tierHitClosed      = 8000
	tierHitClosedSmoke = 400
)

// neverLimits is a [ratelimit] section whose buckets are far too large to refuse anything:
// the limiter does all its work (admission, settlement) and never says no.
const neverLimits = "[ratelimit]\nrequests_per_minute = 100000000\ntokens_per_minute = 1000000000\n"

func redisScenarios(zipf func(uint64) string) []scenario {
	return []scenario{
		{name: "zest-redis-local-hit", title: "zest with [redis], exact hit from the local tier (one warmed prompt)", target: tZest,
			baseline: "direct", redis: true, prompt: fixed, warm: []uint64{0}},
		{name: "zest-redis-tier-hit", title: "zest with [redis], exact hit from the Redis tier (local miss; stored through another replica)",
			target: tZest, baseline: "zest-redis-local-hit", redis: true, replicas: 2, loadOn: 1, prompt: unique, prepare: preloadThroughLast},
		{name: "zest-limit-local", title: "zest exact hit with local request and token limits (never binding)", target: tZest,
			baseline: "direct", prompt: fixed, warm: []uint64{0}, zestConfig: neverLimits},
		{name: "zest-limit-redis", title: "zest exact hit with the same limits in Redis (never binding)", target: tZest,
			baseline: "zest-limit-local", redis: true, prompt: fixed, warm: []uint64{0}, zestConfig: neverLimits},
		{name: "zest-ratelimit-redis", title: "zest rate limiter in Redis under overload (one identity, 600/min)", target: tZest,
			redis: true, noClosed: true, prompt: fixed, rate: 1000, limitRPM: 600},
		{name: "zest-redis-one", title: "one zest with [redis], Zipf mix of 1000 prompts from a cold cache", target: tZest, baseline: "direct",
			redis: true, cold: true, prompt: zipf},
		{name: "zest-redis-replicas", title: "two zest replicas sharing Redis, the same Zipf mix split across both", target: tZest,
			baseline: "zest-redis-one", redis: true, cold: true, replicas: 2, prompt: zipf},
	}
}

// prepareFunc readies a scenario's zests before its warm-up (and may adjust s).
type prepareFunc func(ctx context.Context, e *env, s *scenario, zs *zestSet) error

// redisSmoke is the Redis scenarios -smoke runs (a few seconds in all); the others are listed
// as skipped there.
var redisSmoke = map[string]bool{"zest-redis-tier-hit": true, "zest-limit-redis": true, "zest-redis-replicas": true}

// redisSkipOf says why s cannot run ("" when it can).
func (e *env) redisSkipOf(s *scenario) string {
	switch {
	case e.o.smoke && e.o.names == nil && redisFamily(s.name) && !redisSmoke[s.name]:
		return "not run with -smoke (name it in -scenarios to run it)"
	case s.redis && e.rd.skip != "":
		return e.rd.skip
	}
	return ""
}

// redisFamily reports whether name is one of redisScenarios.
func redisFamily(name string) bool {
	for _, s := range redisScenarios(fixed) {
		if s.name == name {
			return true
		}
	}
	return false
}

// benchRedis is the Redis of the run, or why there is none.
type benchRedis struct {
	addr, prefix, skip string
	client             *redis.Client
	seq                atomic.Uint64
}

// setupRedis picks the Redis (flag, environment, default) and checks that it answers.
func (e *env) setupRedis(ctx context.Context) {
	addr, from := e.o.redis, "-redis"
	if addr == "" {
		addr, from = os.Getenv(redisEnvVar), "$"+redisEnvVar
	}
	if addr == "" {
		addr, from = "127.0.0.1:6379", "the default address"
	}
	var b [4]byte
	rand.Read(b[:])
	e.rd.addr, e.rd.prefix = addr, "zest-bench-"+time.Now().Format("20060102-150405")+"-"+hex.EncodeToString(b[:])
	e.rd.client = redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, ReadTimeout: 5 * time.Second})
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := e.rd.client.Ping(pctx).Err(); err != nil {
		e.rd.skip = fmt.Sprintf("no redis (%s at %s did not answer: %v; start one or set -redis / $%s)", from, addr, err, redisEnvVar)
		e.rd.client.Close()
		e.rd.client = nil
	}
}

// cleanupRedis deletes the run's keys.
func (e *env) cleanupRedis() {
	if e.rd.client == nil {
		return
	}
	defer e.rd.client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	iter := e.rd.client.Scan(ctx, 0, e.rd.prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		e.rd.client.Del(ctx, iter.Val())
	}
	if err := iter.Err(); err != nil {
		status("cleaning the run's redis keys: " + err.Error())
	}
}

// zestSet is the zest processes of one scenario run.
type zestSet struct {
	procs  []*proc
	addrs  []string
	prefix string // their Redis key prefix ("" without [redis])
}

// measured is what a scenario reads from its server(s).
type measured interface {
	cpuTime() time.Duration
	peakRSS() uint64
}

// startZests starts s.replicas fresh zests (at least one) on one config; with s.redis they
// share a new key prefix of the run's Redis.
func (e *env) startZests(ctx context.Context, s *scenario) (*zestSet, error) {
	zs := &zestSet{}
	cfg := s.zestConfig
	if s.redis {
		zs.prefix = fmt.Sprintf("%s-%s-%d", e.rd.prefix, s.name, e.rd.seq.Add(1))
		// A 1s deadline (default 100ms): a stall of the shared machine then shows as latency
		// instead of opening the breaker, which would send requests to local state mid-run.
		cfg += fmt.Sprintf("[redis]\nurl = %q\nprefix = %q\ntimeout = \"1s\"\n", "redis://"+e.rd.addr+"/0", zs.prefix)
	}
	sc := *s
	sc.zestConfig = cfg
	for i := range max(s.replicas, 1) {
		role := ""
		if i > 0 {
			role = fmt.Sprint(i + 1)
		}
		p, addr, err := e.startZest(ctx, &sc, role)
		if err != nil {
			zs.stop()
			return nil, err
		}
		zs.procs, zs.addrs = append(zs.procs, p), append(zs.addrs, addr)
	}
	return zs, nil
}

func (zs *zestSet) stop() {
	for _, p := range zs.procs {
		p.stop()
	}
}

// loaded is the replicas that take s's load (see scenario.loadOn).
func (zs *zestSet) loaded(s *scenario) *zestSet {
	n := len(zs.procs)
	if s.loadOn > 0 && s.loadOn < n {
		n = s.loadOn
	}
	return &zestSet{procs: zs.procs[:n], addrs: zs.addrs[:n], prefix: zs.prefix}
}

// cpuTime is the CPU time of all the set's processes.
func (zs *zestSet) cpuTime() time.Duration {
	var t time.Duration
	for _, p := range zs.procs {
		t += p.cpuTime()
	}
	return t
}

// peakRSS is the largest peak resident set among the processes.
func (zs *zestSet) peakRSS() uint64 {
	var m uint64
	for _, p := range zs.procs {
		m = max(m, p.peakRSS())
	}
	return m
}

// redisNotes reads each replica's /healthz and reports failed Redis calls, which would mean
// that some answers came from local state instead.
func (zs *zestSet) redisNotes(ctx context.Context) []string {
	if zs.prefix == "" {
		return nil
	}
	var notes []string
	for i, addr := range zs.addrs {
		var h struct {
			Redis *struct {
				Up                     bool
				Calls, Errors, Skipped uint64
			} `json:"redis"`
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			notes = append(notes, fmt.Sprintf("replica %d: /healthz failed: %v", i+1, err))
			continue
		}
		err = json.NewDecoder(resp.Body).Decode(&h)
		resp.Body.Close()
		if err != nil || h.Redis == nil {
			notes = append(notes, fmt.Sprintf("replica %d: no redis state in /healthz", i+1))
			continue
		}
		notes = append(notes, fmt.Sprintf("replica %d: %d redis calls, %d failed, %d skipped by the breaker",
			i+1, h.Redis.Calls, h.Redis.Errors, h.Redis.Skipped))
	}
	return notes
}

// roundRobin returns a NewDoer whose connections go to addrs in turn.
func roundRobin(addrs []string, stream bool) func() load.Doer {
	var n atomic.Uint64
	return func() load.Doer {
		return &load.Conn{Addr: addrs[(n.Add(1)-1)%uint64(len(addrs))], Stream: stream}
	}
}

// preloadThroughLast stores, through the last replica (which takes no load), every prompt
// the others will be asked — the open loop's and the closed loop's, which s is capped to —
// and waits until Redis holds them all. Each request of the measured phases is then a local
// miss answered by the Redis tier.
func preloadThroughLast(ctx context.Context, e *env, s *scenario, zs *zestSet) error {
	writer := zs.addrs[len(zs.addrs)-1]
	open := uint64(e.o.rate*e.o.duration.Seconds()*1.1) + 16
	s.maxClosed = tierHitClosed
	if e.o.smoke {
		s.maxClosed = tierHitClosedSmoke
	}
	newDoer := func() load.Doer { return &load.Conn{Addr: writer} }
	for _, part := range []struct{ offset, n uint64 }{{0, open}, {phaseStride, s.maxClosed}} {
		res, err := load.Run(ctx, load.Config{Gen: s.gen(writer, part.offset), NewDoer: newDoer, Conns: 8,
			Duration: 5 * time.Minute, MaxRequests: part.n})
		if err != nil {
			return fmt.Errorf("preload through the other replica: %w", err)
		}
		if res.Status[200] != part.n {
			return fmt.Errorf("preload through the other replica: %d of %d answered 200 (%v)", res.Status[200], part.n, res.Status)
		}
	}
	return e.waitRedisEntries(ctx, zs.prefix, open+s.maxClosed)
}

// waitRedisEntries waits until Redis holds at least n exact-cache entries under prefix (the
// writes to Redis finish after the answers).
func (e *env) waitRedisEntries(ctx context.Context, prefix string, n uint64) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var got uint64
		iter := e.rd.client.Scan(ctx, 0, prefix+":x:{*", 5000).Iterator()
		for iter.Next(ctx) {
			got++
		}
		if err := iter.Err(); err != nil {
			return fmt.Errorf("counting entries in redis: %w", err)
		}
		if got >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis holds %d of the %d preloaded entries after 30s", got, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// redisSummary adds to the run's notes what the Redis scenarios compare: a Redis-tier hit
// against a local one, the limiter in Redis against local, two replicas against one.
func redisSummary(rep *report.Run) {
	by := map[string]*report.Scenario{}
	for i := range rep.Scenarios {
		if s := &rep.Scenarios[i]; s.Skipped == "" && s.Open != nil {
			by[s.Name] = s
		}
	}
	pair := func(a, b string) (*report.Scenario, *report.Scenario, bool) {
		return by[a], by[b], by[a] != nil && by[b] != nil
	}
	if l, r, ok := pair("zest-redis-local-hit", "zest-redis-tier-hit"); ok {
		rep.Notes = append(rep.Notes, fmt.Sprintf("Redis: an exact hit from the Redis tier took p50 %s, p99 %s (local tier: p50 %s, p99 %s); %.0f vs %.0f req/s closed loop; proxy CPU per hit %s vs %s.",
			r.Open.P50, r.Open.P99, l.Open.P50, l.Open.P99, r.MaxRPS, l.MaxRPS, r.ProxyCPUPerReq, l.ProxyCPUPerReq))
	}
	if l, r, ok := pair("zest-limit-local", "zest-limit-redis"); ok {
		rep.Notes = append(rep.Notes, fmt.Sprintf("Redis: with request and token limits in Redis an exact hit took p50 %s, p99 %s, %.0f req/s, proxy CPU %s per request (limits local: p50 %s, p99 %s, %.0f req/s, %s).",
			r.Open.P50, r.Open.P99, r.MaxRPS, r.ProxyCPUPerReq, l.Open.P50, l.Open.P99, l.MaxRPS, l.ProxyCPUPerReq))
	}
	if one, two, ok := pair("zest-redis-one", "zest-redis-replicas"); ok {
		rep.Notes = append(rep.Notes, fmt.Sprintf("Redis: two replicas sharing Redis served %.0f req/s together against %.0f for one (%.2f×), hit rate %.0f%% vs %.0f%%; proxy CPU per request %s vs %s. Both replicas run on the servers' CPU(s), as one does.",
			two.MaxRPS, one.MaxRPS, safeRatio(two.MaxRPS, one.MaxRPS), 100*two.HitRate, 100*one.HitRate, two.ProxyCPUPerReq, one.ProxyCPUPerReq))
	}
}

func safeRatio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
