package cache

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/zest-proxy/zest/internal/redisx"
)

// The Redis second tier (Options.Redis). The in-memory store stays first; Redis is shared by
// every replica:
//
//	<prefix>:x:{<key>}        one entry, DEFLATE-compressed, expiring with the entry (PX)
//	<prefix>:xn:{<ns hash>}   sorted set of the namespace's keys, scored by expiry (for purges)
//	<prefix>:x:purge          pub/sub channel: every purge, so each replica drops its copies
//
// A Set writes to Redis in the background (Wait waits for it); GetContext falls back to Redis
// on a local miss and fills the local tier from a Redis hit. Purges (Delete, DeleteNamespace,
// Clear) remove the entries from Redis and are published; every replica drops its local
// copies. A purge that does not reach Redis (it is down) is queued and replayed when Redis
// answers again (retried every redisx retry_after, and at once when the purge channel
// reconnects); beyond Options.MaxPendingPurges queued purges, they are replaced by one purge
// of everything. When the subscription is re-established after a Redis outage (purges may
// have been missed meanwhile), the replica empties its local tier, which refills from Redis on
// demand. Every Redis failure falls back to the local tier and is counted (RedisStats).

// purgeTimeout bounds a purge walking Redis (SCAN, many DELs), which may take longer than one
// ordinary call.
const purgeTimeout = 10 * time.Second

// RedisStats counts what the Redis tier did (all zero without Options.Redis).
type RedisStats struct {
	Hits     uint64 `json:"hits"`      // local misses answered by Redis
	Misses   uint64 `json:"misses"`    // local misses Redis did not have either
	Stores   uint64 `json:"stores"`    // entries written to Redis
	Errors   uint64 `json:"errors"`    // failed calls (the local tier answered alone)
	Purges   uint64 `json:"purges"`    // purges received from other replicas
	Resyncs  uint64 `json:"resyncs"`   // local tier emptied after the purge channel reconnected
	Rejected uint64 `json:"malformed"` // Redis values that did not decode
	// Purges made while Redis was unreachable: waiting to be replayed, replayed since, and
	// times more were waiting than Options.MaxPendingPurges (each time they were replaced by
	// one purge of everything).
	PendingPurges  int    `json:"pending_purges"`
	ReplayedPurges uint64 `json:"replayed_purges"`
	PurgeOverflows uint64 `json:"purge_overflows"`
}

// tier is the Redis side of a Cache.
type tier struct {
	c       *Cache
	rc      *redisx.Client
	log     *slog.Logger
	channel string

	writes  redisx.Inflight          // stores in flight, for Wait
	backlog *redisx.Backlog[purgeOp] // purges that did not reach Redis, replayed when it is back

	ps         *redis.PubSub
	subscribed chan struct{} // closed on the first subscription
	subOnce    sync.Once
	done       chan struct{}

	hits, misses, stores, errs, purges, resyncs, rejected atomic.Uint64
}

// purgeOp is one purge: a kind (purgeKey, purgeNS, purgeAll) and its key or namespace.
type purgeOp struct{ kind, arg string }

func newTier(c *Cache, rc *redisx.Client, log *slog.Logger, maxPending int) *tier {
	t := &tier{c: c, rc: rc, log: log, channel: rc.Key("x", "purge"),
		subscribed: make(chan struct{}), done: make(chan struct{})}
	t.backlog = redisx.NewBacklog(rc, redisx.BacklogOptions[purgeOp]{Send: t.send, Collapse: collapsePurges,
		Max: maxPending, What: "exact-cache purges", Logger: log})
	ctx, cancel := context.WithTimeout(context.Background(), rc.Timeout())
	t.ps = rc.R.Subscribe(ctx, t.channel) // on failure, the channel below keeps reconnecting
	cancel()
	go t.listen()
	return t
}

// collapsePurges stands in for purges too many to hold: purging everything does at least as
// much as any of them.
func collapsePurges([]purgeOp) []purgeOp { return []purgeOp{{kind: purgeAll}} }

func (t *tier) entryKey(key string) string { return t.rc.Key("x", redisx.Tag(key)) }
func (t *tier) nsKey(ns string) string     { return t.rc.Key("xn", redisx.Tag(redisx.Hash(ns))) }

// put writes e to Redis in the background.
func (t *tier) put(e *Entry, ttl time.Duration) {
	if t == nil {
		return
	}
	val := encodeEntry(e)
	t.writes.Go(func() {
		nsKey, exp := t.nsKey(e.Namespace), float64(e.Expires.UnixMilli())
		err := t.rc.Do(context.Background(), func(ctx context.Context) error {
			_, err := t.rc.R.Pipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, t.entryKey(e.Key), val, ttl)
				p.ZAdd(ctx, nsKey, redis.Z{Score: exp, Member: e.Key})
				p.ZRemRangeByScore(ctx, nsKey, "-inf", fmt.Sprint(t.c.now().UnixMilli()))
				p.ExpireGT(ctx, nsKey, ttl+time.Minute)
				p.ExpireNX(ctx, nsKey, ttl+time.Minute)
				return nil
			})
			return err
		})
		if err != nil {
			t.errs.Add(1)
			t.log.Debug("cache: redis store failed", "error", err)
			return
		}
		t.stores.Add(1)
	})
}

// wait blocks until the writes started before it are done.
func (t *tier) wait() {
	if t == nil {
		return
	}
	t.writes.Wait()
}

// GetContext returns the live entry stored under key: from the local tier, else from Redis
// (when configured), whose hit is copied into the local tier. ctx bounds the Redis call, as
// does the client's own timeout; on a Redis failure it reports a miss.
func (c *Cache) GetContext(ctx context.Context, key string) (*Entry, bool) {
	e, ok := c.Get(key)
	if ok || c.remote == nil {
		return e, ok
	}
	e, ok = c.remote.get(ctx, key)
	if !ok || e.SemanticOnly {
		return nil, false
	}
	return e, true
}

// GetAnyContext is GetAny with the Redis tier behind the local one (for the semantic cache,
// whose answers another replica may have stored).
func (c *Cache) GetAnyContext(ctx context.Context, key string) (*Entry, bool) {
	e, ok := c.GetAny(key)
	if ok || c.remote == nil {
		return e, ok
	}
	return c.remote.get(ctx, key)
}

func (t *tier) get(ctx context.Context, key string) (*Entry, bool) {
	var val []byte
	err := t.rc.Do(ctx, func(ctx context.Context) error {
		var err error
		val, err = t.rc.R.Get(ctx, t.entryKey(key)).Bytes()
		return err
	})
	if err != nil {
		if errors.Is(err, redis.Nil) {
			t.misses.Add(1)
		} else if ctx.Err() == nil {
			t.errs.Add(1)
		}
		return nil, false
	}
	e, err := decodeEntry(key, val)
	if err != nil {
		t.rejected.Add(1)
		t.log.Debug("cache: undecodable redis entry", "error", err)
		return nil, false
	}
	now := t.c.now()
	ttl := e.Expires.Sub(now)
	if ttl <= 0 {
		t.misses.Add(1)
		return nil, false
	}
	t.hits.Add(1)
	t.c.setLocal(e)
	return e, true
}

// purge kinds, the first word of a message on the purge channel after the sender's id.
const (
	purgeKey = "k"
	purgeNS  = "n"
	purgeAll = "a"
)

// delete removes key from Redis and tells the other replicas.
func (t *tier) delete(key string) {
	if t != nil {
		t.purge(purgeOp{purgeKey, key})
	}
}

// deleteNamespace removes the namespace's entries from Redis and tells the other replicas.
func (t *tier) deleteNamespace(ns string) {
	if t != nil {
		t.purge(purgeOp{purgeNS, ns})
	}
}

// clear removes every entry from Redis and tells the other replicas.
func (t *tier) clear() {
	if t != nil {
		t.purge(purgeOp{kind: purgeAll})
	}
}

// purge sends op; when it does not reach Redis, op is queued and replayed once Redis answers
// again (until then it holds on this replica only).
func (t *tier) purge(op purgeOp) {
	if err := t.send(context.Background(), op); err != nil {
		t.errs.Add(1)
		t.backlog.Add(op)
		t.log.Warn("cache: purge did not reach redis; queued until redis answers again (meanwhile other replicas keep their copies)",
			"scope", op.kind, "error", err)
	}
}

// send removes op's entries from Redis, then publishes op to the other replicas. Both are
// attempted even when the first fails; both are idempotent.
func (t *tier) send(ctx context.Context, op purgeOp) error {
	err := t.rc.DoTimeout(ctx, purgeTimeout, func(ctx context.Context) error { return t.del(ctx, op) })
	if perr := t.rc.Do(ctx, func(ctx context.Context) error {
		return t.rc.R.Publish(ctx, t.channel, t.rc.ID()+" "+op.kind+" "+op.arg).Err()
	}); perr != nil {
		err = errors.Join(err, perr)
	}
	return err
}

// del removes op's entries from Redis.
func (t *tier) del(ctx context.Context, op purgeOp) error {
	switch op.kind {
	case purgeKey:
		return t.rc.R.Del(ctx, t.entryKey(op.arg)).Err()
	case purgeNS:
		nsKey := t.nsKey(op.arg)
		keys, err := t.rc.R.ZRange(ctx, nsKey, 0, -1).Result()
		if err != nil {
			return err
		}
		for len(keys) > 0 {
			n := min(len(keys), 500)
			_, err := t.rc.R.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, k := range keys[:n] {
					p.Del(ctx, t.entryKey(k))
				}
				return nil
			})
			if err != nil {
				return err
			}
			keys = keys[n:]
		}
		return t.rc.R.Del(ctx, nsKey).Err()
	}
	for _, pattern := range []string{t.rc.Key("x", "{*"), t.rc.Key("xn", "{*")} {
		if err := scanDelete(ctx, t.rc.R, pattern); err != nil {
			return err
		}
	}
	return nil
}

// scanDelete deletes every key matching pattern, on every master of a cluster.
func scanDelete(ctx context.Context, rc redis.UniversalClient, pattern string) error {
	one := func(ctx context.Context, c redis.Cmdable) error {
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			if err := c.Del(ctx, iter.Val()).Err(); err != nil {
				return err
			}
		}
		return iter.Err()
	}
	if cc, ok := rc.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return one(ctx, c) })
	}
	return one(ctx, rc)
}

// listen applies the purges of other replicas until close.
func (t *tier) listen() {
	defer close(t.done)
	first := true
	for m := range t.ps.ChannelWithSubscriptions(redis.WithChannelHealthCheckInterval(5 * time.Second)) {
		switch m := m.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			if !first {
				// Reconnected: purges sent meanwhile were missed. Start the local tier afresh.
				t.c.clearLocal()
				t.resyncs.Add(1) // after the clear: a reader seeing the count sees the local tier empty
				t.log.Info("cache: purge channel reconnected; local tier emptied, refilling from redis")
				t.backlog.Kick() // redis is back: replay the purges it missed
			}
			first = false
			t.subOnce.Do(func() { close(t.subscribed) })
		case *redis.Message:
			origin, rest, _ := strings.Cut(m.Payload, " ")
			if origin == t.rc.ID() {
				continue
			}
			kind, arg, _ := strings.Cut(rest, " ")
			t.purges.Add(1)
			switch kind {
			case purgeKey:
				t.c.deleteLocal(arg)
			case purgeNS:
				t.c.deleteNamespaceLocal(arg)
			case purgeAll:
				t.c.clearLocal()
			}
		}
	}
}

func (t *tier) close() {
	if t == nil {
		return
	}
	t.wait()
	t.backlog.Close()
	t.ps.Close()
	<-t.done
}

// WaitPurges blocks until every purge that did not reach Redis has been replayed, or ctx
// ends. Without Options.Redis it returns at once.
func (c *Cache) WaitPurges(ctx context.Context) error {
	if c.remote == nil {
		return nil
	}
	if err := c.remote.backlog.Wait(ctx); err != nil {
		return fmt.Errorf("cache: purges waiting for redis: %w", err)
	}
	return nil
}

// WaitShared blocks until the Redis tier listens for other replicas' purges, or ctx ends.
// Without Options.Redis it returns at once.
func (c *Cache) WaitShared(ctx context.Context) error {
	if c.remote == nil {
		return nil
	}
	select {
	case <-c.remote.subscribed:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cache: redis purge channel: %w", ctx.Err())
	}
}

// RedisStats returns the Redis tier's counters (zero without Options.Redis).
func (c *Cache) RedisStats() RedisStats {
	t := c.remote
	if t == nil {
		return RedisStats{}
	}
	b := t.backlog.Stats()
	return RedisStats{Hits: t.hits.Load(), Misses: t.misses.Load(), Stores: t.stores.Load(), Errors: t.errs.Load(),
		Purges: t.purges.Load(), Resyncs: t.resyncs.Load(), Rejected: t.rejected.Load(),
		PendingPurges: b.Pending, ReplayedPurges: b.Replayed, PurgeOverflows: b.Overflows}
}

// Redis values: a version byte, varints (stored and expiry in unix ms, prompt and completion
// tokens, flags (1 = SemanticOnly), the namespace's and the model's lengths), the namespace and
// model, then the body compressed with DEFLATE (level 1: chat answers are JSON and shrink 3-5x
// at little CPU).
const valueVersion = 2

func encodeEntry(e *Entry) []byte {
	b := make([]byte, 0, 64+len(e.Namespace)+len(e.Model)+len(e.Body)/3)
	b = append(b, valueVersion)
	b = binary.AppendVarint(b, e.Stored.UnixMilli())
	b = binary.AppendVarint(b, e.Expires.UnixMilli())
	b = binary.AppendUvarint(b, uint64(max(e.PromptTokens, 0)))
	b = binary.AppendUvarint(b, uint64(max(e.CompletionTokens, 0)))
	var flags uint64
	if e.SemanticOnly {
		flags |= 1
	}
	b = binary.AppendUvarint(b, flags)
	b = binary.AppendUvarint(b, uint64(len(e.Namespace)))
	b = binary.AppendUvarint(b, uint64(len(e.Model)))
	b = append(b, e.Namespace...)
	b = append(b, e.Model...)
	return redisx.AppendDeflate(b, e.Body)
}

func decodeEntry(key string, b []byte) (*Entry, error) {
	if len(b) == 0 || b[0] != valueVersion {
		return nil, errors.New("cache: redis value: unknown version")
	}
	r := bytes.NewReader(b[1:])
	var v [7]uint64
	for i := range v {
		var err error
		if i < 2 {
			var s int64
			s, err = binary.ReadVarint(r)
			v[i] = uint64(s)
		} else {
			v[i], err = binary.ReadUvarint(r)
		}
		if err != nil {
			return nil, fmt.Errorf("cache: redis value: %w", err)
		}
	}
	flags, nsLen, modelLen := v[4], v[5], v[6]
	if nsLen+modelLen > uint64(r.Len()) {
		return nil, errors.New("cache: redis value: truncated")
	}
	meta := make([]byte, nsLen+modelLen)
	io.ReadFull(r, meta)
	body, err := redisx.Inflate(b[len(b)-r.Len():])
	if err != nil {
		return nil, fmt.Errorf("cache: redis value: %w", err)
	}
	return &Entry{Key: key, Namespace: string(meta[:nsLen]), Model: string(meta[nsLen:]), Body: body,
		Stored: time.UnixMilli(int64(v[0])), Expires: time.UnixMilli(int64(v[1])),
		PromptTokens: int(v[2]), CompletionTokens: int(v[3]), SemanticOnly: flags&1 != 0}, nil
}
