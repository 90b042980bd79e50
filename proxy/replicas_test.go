package proxy

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zest-proxy/zest/cache"
	"github.com/zest-proxy/zest/internal/redisx"
	"github.com/zest-proxy/zest/internal/redisx/redistest"
	"github.com/zest-proxy/zest/ratelimit"
	"github.com/zest-proxy/zest/semantic"
)

// replicaCfg describes one zest replica on a shared Redis.
type replicaCfg struct {
	addr, prefix string // the Redis (or a proxy to it) and the key prefix they share
	semantic     bool   // with a semantic cache
	limits       *ratelimit.Limits
	clock        func() time.Time // the limiter's clock, shared by the replicas; nil = the env's
	leaseTTL     time.Duration
}

// replica is an xEnv whose exact cache, semantic cache and limiter share the Redis of cfg.
type replica struct {
	*xEnv
	rc *redisx.Client
}

func newReplica(t *testing.T, up *upstream, cfg replicaCfg) *replica {
	t.Helper()
	rc := redistest.Client(t, cfg.addr, cfg.prefix, nil)
	x := xNewEnv(t, up, xCfg{
		semantic: cfg.semantic,
		semOpts:  func(o *semantic.Options) { o.Redis = rc },
		limits:   cfg.limits,
		limOpts: func(o *ratelimit.Options) {
			o.Redis, o.LeaseTTL = rc, cfg.leaseTTL
			if cfg.clock != nil {
				o.Now = cfg.clock
			}
		},
		mod: func(o *Options) {
			c, err := cache.New(cache.Options{MaxBytes: 4 << 20, Now: o.Now, Redis: rc})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close) // registered before the env's cleanup, so it runs after it
			o.Cache, o.Redis, o.AdminToken = c, rc, "admin-secret"
		},
	})
	if x.sem != nil {
		t.Cleanup(x.sem.Close)
	}
	if x.lim != nil {
		t.Cleanup(x.lim.Close)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := x.h.opts.Cache.WaitShared(ctx); err != nil {
		t.Fatal(err)
	}
	if x.sem != nil {
		if err := x.sem.WaitWarm(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return &replica{xEnv: x, rc: rc}
}

// settle waits for the replica's background stores (local and Redis) to finish.
func (r *replica) settle(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.h.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

// waitUntil polls cond until it holds, failing after a generous deadline.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 5s: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestReplicasShareExactCache: a miss on one replica is a hit on the other, and an admin purge
// on either reaches both.
func TestReplicasShareExactCache(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	cfg := replicaCfg{addr: redistest.Addr(t), prefix: redistest.Prefix(t)}
	a, b := newReplica(t, up, cfg), newReplica(t, up, cfg)
	first := a.chat(chatBody(""))
	wantStatus(t, first, 200, "MISS")
	a.settle(t)
	r := b.chat(chatBody(""))
	wantStatus(t, r, 200, "HIT")
	if r.header.Get("X-Cache-Type") != "exact" || r.header.Get("X-Cache-Key") != first.header.Get("X-Cache-Key") {
		t.Fatalf("hit headers: %v", r.header)
	}
	wantCalls(t, up, 1)

	purge := b.do(http.MethodDelete, "/admin/cache", "", withToken("admin-secret"),
		withHeader("X-Cache-Key", first.header.Get("X-Cache-Key")))
	if purge.status != 200 {
		t.Fatalf("purge: %d %s", purge.status, purge.body)
	}
	waitUntil(t, "a drops the purged entry", func() bool { _, ok := a.h.opts.Cache.Get(first.header.Get("X-Cache-Key")); return !ok })
	wantStatus(t, a.chat(chatBody("")), 200, "MISS")
	wantCalls(t, up, 2)
}

// TestReplicasShareSemantic: an entry stored on one replica answers a paraphrase on another.
func TestReplicasShareSemantic(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	cfg := replicaCfg{addr: redistest.Addr(t), prefix: redistest.Prefix(t), semantic: true}
	a, b := newReplica(t, up, cfg), newReplica(t, up, cfg)
	wantStatus(t, a.chat(xChat(xPromptA, "")), 200, "MISS")
	a.settle(t)
	waitUntil(t, "b receives a's semantic entry", func() bool { return b.sem.Stats().Entries == 1 })
	r := b.chat(xChat(xPromptA2, ""))
	wantStatus(t, r, 200, "HIT")
	if r.header.Get("X-Cache-Type") != "semantic" {
		t.Fatalf("X-Cache-Type = %q, want semantic", r.header.Get("X-Cache-Type"))
	}
	wantCalls(t, up, 1)
}

// TestReplicasFeedback: a wrong semantic answer reported on either replica — the one that served
// it or the other — leaves both caches of both replicas, and the reported pair of prompts never
// matches again on either, even once the stored prompt is stored anew.
func TestReplicasFeedback(t *testing.T) {
	tests := []struct {
		name             string
		server, reporter int
	}{
		{"served and reported on a", 0, 0},
		{"served on b, reported on a", 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newUpstream(t, jsonAnswer(200, completionJSON))
			cfg := replicaCfg{addr: redistest.Addr(t), prefix: redistest.Prefix(t), semantic: true}
			reps := []*replica{newReplica(t, up, cfg), newReplica(t, up, cfg)}
			a, b := reps[0], reps[1]
			wantStatus(t, a.chat(xChat(xPromptA, "")), 200, "MISS")
			a.settle(t)
			waitUntil(t, "b receives a's semantic entry", func() bool { return b.sem.Stats().Entries == 1 })
			hit := reps[tt.server].chat(xChat(xPromptA2, ""))
			wantStatus(t, hit, 200, "HIT")
			key := hit.header.Get("X-Cache-Key")
			if hit.header.Get("X-Cache-Type") != "semantic" {
				t.Fatalf("want a semantic hit, got %v", hit.header)
			}
			reps[tt.server].settle(t)

			r := reps[tt.reporter].do(http.MethodPost, feedbackPath, `{"cache_key":"`+key+`","reason":"wrong"}`)
			var res FeedbackResult
			if r.status != 200 || json.Unmarshal(r.body, &res) != nil || !res.Exact || !res.Semantic {
				t.Fatalf("feedback: %d %s", r.status, r.body)
			}
			for i, rep := range reps {
				waitUntil(t, "the semantic entry leaves every replica", func() bool { return rep.sem.Stats().Entries == 0 })
				waitUntil(t, "the exact entry leaves every replica", func() bool { _, ok := rep.h.opts.Cache.GetAny(key); return !ok })
				if n := rep.sem.Stats().RefusedPairs; n != 1 {
					t.Fatalf("replica %d refuses %d pairs, want 1", i, n)
				}
			}

			// The stored prompt is stored anew (an exact miss everywhere now); the reported
			// paraphrase still gets no semantic answer from either replica.
			wantStatus(t, a.chat(xChat(xPromptA, "")), 200, "MISS")
			a.settle(t)
			waitUntil(t, "b receives the new entry", func() bool { return b.sem.Stats().Entries == 1 })
			for i, rep := range reps {
				if r := rep.chat(xChat(xPromptA2, `"cache_control":{"type":"no_store"}`)); r.status != 200 ||
					r.header.Get("X-Cache-Status") != "MISS" {
					t.Fatalf("replica %d answered the reported pair: %d %v", i, r.status, r.header)
				}
			}
			wantCalls(t, up, 4)
		})
	}
}

// TestReplicasPurgeDuringOutage: an admin purge on a replica that cannot reach Redis holds
// there at once, and reaches Redis and the other replica when Redis is back.
func TestReplicasPurgeDuringOutage(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	addr, prefix := redistest.Addr(t), redistest.Prefix(t)
	px := redistest.NewProxy(t, addr)
	a := newReplica(t, up, replicaCfg{addr: px.Addr(), prefix: prefix})
	b := newReplica(t, up, replicaCfg{addr: addr, prefix: prefix}) // b's link stays up
	first := a.chat(chatBody(""))
	wantStatus(t, first, 200, "MISS")
	a.settle(t)
	wantStatus(t, b.chat(chatBody("")), 200, "HIT") // now in b's local tier too
	key := first.header.Get("X-Cache-Key")

	px.Cut()
	purge := a.do(http.MethodDelete, "/admin/cache", "", withToken("admin-secret"), withHeader("X-Cache-Key", key))
	if purge.status != 200 {
		t.Fatalf("purge: %d %s", purge.status, purge.body)
	}
	wantStatus(t, b.chat(chatBody("")), 200, "HIT") // b cannot know yet
	var st Stats
	if r := a.do(http.MethodGet, "/admin/stats", "", withToken("admin-secret")); json.Unmarshal(r.body, &st) != nil ||
		st.Redis == nil || st.Redis.Exact.PendingPurges != 1 {
		t.Fatalf("stats with a purge pending: %s", r.body)
	}

	px.Restore()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.h.opts.Cache.WaitPurges(ctx); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "b drops the purged entry", func() bool { _, ok := b.h.opts.Cache.GetAny(key); return !ok })
	wantStatus(t, b.chat(chatBody("")), 200, "MISS") // neither b's tier nor redis has it
	wantCalls(t, up, 2)
}

// sharedClock is one fake clock for the limiters of several replicas.
type sharedClock struct{ ns atomic.Int64 }

func (c *sharedClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *sharedClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// TestReplicasShareRateLimit: two replicas under concurrent load admit together what one
// limit allows: the bucket, then its refill (exact here, on a shared fake clock).
func TestReplicasShareRateLimit(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	clk := &sharedClock{}
	clk.ns.Store(time.Date(2025, 7, 31, 12, 0, 0, 0, time.UTC).UnixNano())
	cfg := replicaCfg{addr: redistest.Addr(t), prefix: redistest.Prefix(t), clock: clk.Now,
		limits: &ratelimit.Limits{RequestsPerMinute: 60}}
	reps := []*replica{newReplica(t, up, cfg), newReplica(t, up, cfg)}
	var ok, limited atomic.Int64
	burst := func(perWorker int) {
		var wg sync.WaitGroup
		for w := range 6 {
			rep := reps[w%2]
			wg.Go(func() {
				for range perWorker {
					r := rep.chat(chatBody(""), withHeader("Cache-Control", "no-cache"))
					switch {
					case r.err != nil:
						t.Errorf("request failed: %v", r.err)
					case r.status == 200:
						ok.Add(1)
					case r.status == 429 && r.header.Get("Retry-After") != "":
						limited.Add(1)
					default:
						t.Errorf("status %d, Retry-After %q", r.status, r.header.Get("Retry-After"))
					}
				}
			})
		}
		wg.Wait()
	}
	burst(20) // 120 requests against a bucket of 60
	clk.Advance(10 * time.Second)
	burst(5) // 30 more against the 10 refilled
	if got, want := ok.Load(), int64(60+10); got != want {
		t.Fatalf("admitted %d of %d, want %d (one limit across both replicas)", got, ok.Load()+limited.Load(), want)
	}
	for i, r := range reps {
		if n := r.lim.RedisFallbacks(); n != 0 {
			t.Fatalf("replica %d decided %d times locally", i, n)
		}
	}
}

// TestReplicasConcurrencyLease: a slot held by a replica that died comes back after the lease.
func TestReplicasConcurrencyLease(t *testing.T) {
	release := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		jsonAnswer(200, completionJSON)(w, r)
	})
	clk := &sharedClock{}
	clk.ns.Store(time.Date(2025, 7, 31, 12, 0, 0, 0, time.UTC).UnixNano())
	cfg := replicaCfg{addr: redistest.Addr(t), prefix: redistest.Prefix(t), clock: clk.Now, leaseTTL: 30 * time.Second,
		limits: &ratelimit.Limits{MaxConcurrent: 1}}
	a, b := newReplica(t, up, cfg), newReplica(t, up, cfg)
	done := make(chan *result, 1)
	go func() { done <- a.chat(chatBody(""), withHeader("Cache-Control", "no-cache")) }()
	waitUntil(t, "a's request reaches the upstream", func() bool { return up.count() == 1 })
	r := b.chat(chatBody(""), withHeader("Cache-Control", "no-cache"))
	if r.status != 429 {
		t.Fatalf("b's request with a's slot taken: %d, want 429", r.status)
	}
	a.lim.Close() // a "dies": it stops renewing its lease and never releases it
	clk.Advance(30*time.Second + time.Millisecond)
	close(release)
	wantStatus(t, b.chat(chatBody(""), withHeader("Cache-Control", "no-cache")), 200, "BYPASS")
	<-done
}

// TestReplicasRedisCut: with Redis cut mid-run both replicas keep serving on their local tiers
// and limits, /healthz says so, and once Redis is back they share again.
func TestReplicasRedisCut(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	px := redistest.NewProxy(t, redistest.Addr(t))
	cfg := replicaCfg{addr: px.Addr(), prefix: redistest.Prefix(t), limits: &ratelimit.Limits{RequestsPerMinute: 1000}}
	a, b := newReplica(t, up, cfg), newReplica(t, up, cfg)
	body := func(n string) string {
		return `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"question ` + n + `"}]}`
	}
	wantStatus(t, a.chat(body("1")), 200, "MISS")
	a.settle(t)
	wantStatus(t, b.chat(body("1")), 200, "HIT")

	px.Cut()
	wantStatus(t, a.chat(body("2")), 200, "MISS")
	a.settle(t)
	wantStatus(t, a.chat(body("2")), 200, "HIT") // the local tier still serves
	wantStatus(t, b.chat(body("2")), 200, "MISS")
	var h Health
	if r := a.do(http.MethodGet, "/healthz", ""); r.status != 200 || json.Unmarshal(r.body, &h) != nil ||
		h.Status != "ok" || h.Redis == nil || h.Redis.Up || h.Redis.Errors == 0 {
		t.Fatalf("healthz with redis cut: %d %s", r.status, r.body)
	}
	if a.lim.RedisFallbacks() == 0 {
		t.Fatal("no rate-limit fallback counted while redis was cut")
	}

	px.Restore()
	waitUntil(t, "redis reachable again", func() bool { return a.rc.Ping(context.Background()) == nil && b.rc.Ping(context.Background()) == nil })
	wantStatus(t, a.chat(body("3")), 200, "MISS")
	a.settle(t)
	wantStatus(t, b.chat(body("3")), 200, "HIT")
	if r := b.do(http.MethodGet, "/healthz", ""); json.Unmarshal(r.body, &h) != nil || !h.Redis.Up {
		t.Fatalf("healthz after redis returned: %s", r.body)
	}
}
