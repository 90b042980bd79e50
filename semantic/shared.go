package semantic

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/zest-proxy/zest/internal/redisx"
)

// Sharing through Redis (Options.Redis). Every Store, Delete, DeleteNamespace and Purge is
// appended to one Redis Stream, <prefix>:s:log, with everything another replica needs to file
// the entry without embedding it again: the partition key (namespace, partition and the
// verifier's signature), the namespace, the prompt, the vector, the answer (compressed), and
// the stored and expiry times. Each replica tails the stream with XREAD BLOCK and applies the
// records of the others, so an entry stored on one is a candidate on all within milliseconds.
// A new replica reads the stream from its start first: that is its warm-up. The stream is
// capped (XADD MAXLEN ~ StreamMaxLen, default MaxEntries), so a warm-up reads at most about
// that many records; expired ones are skipped. Deletes travel in the same stream, in order,
// so a replay never brings back an entry that was purged after it was stored.
//
// Cache feedback travels too: a Report appends a refusal (the entry's id and namespace, and the
// 32-byte digests of the refused (query, stored prompt) pairs), which every replica applies by
// dropping the entry and refusing the pairs. The digests are also kept in a list capped at
// MaxRefusedPairs, <prefix>:s:refused, which a new replica loads before the stream (the stream
// is trimmed; the list keeps the newest refusals however old). So that a report made on any
// replica names every pair the entry was served for, each replica records the digest of a pair
// it serves in <prefix>:s:sv:{<hash of namespace and id>} (the last few, expiring with the
// entry). A delete, purge or refusal that cannot be appended (Redis is down) is queued and
// replayed once Redis answers (see redisx.Backlog); beyond MaxPendingDeletes they collapse into
// one purge of every replica's index plus the refusals.

// Record operations (field "op").
const (
	opStore    = "s"
	opDelete   = "d"
	opDeleteNS = "n"
	opPurge    = "a"
	opRefuse   = "r"
)

// Tail parameters: records per XREAD, how long one blocks (also how long Close may wait for
// it), and the pause after a failure.
const (
	tailBatch = 512
	tailBlock = 200 * time.Millisecond
	tailRetry = 250 * time.Millisecond
)

// SharedStats counts what sharing through Redis did (zero without Options.Redis).
type SharedStats struct {
	Published uint64 `json:"published"` // records this replica appended
	Applied   uint64 `json:"applied"`   // records of other replicas applied here
	Skipped   uint64 `json:"skipped"`   // records expired or malformed on arrival
	Errors    uint64 `json:"errors"`    // failed Redis calls (the local index went on alone)
	Warm      bool   `json:"warm"`      // the start-up replay has caught up with the stream
	// Deletes, purges and refusals made while Redis was unreachable: waiting to be appended,
	// appended since, and times more were waiting than MaxPendingDeletes.
	Pending   int    `json:"pending"`
	Replayed  uint64 `json:"replayed"`
	Overflows uint64 `json:"overflows"`
}

// share is the Redis side of a Cache.
type share struct {
	c      *Cache
	rc     *redisx.Client
	log    *slog.Logger
	stream string
	maxLen int64

	writes  redisx.Inflight         // served-pair notes in flight, for Wait
	backlog *redisx.Backlog[change] // deletes and refusals that did not reach Redis

	cancel context.CancelFunc
	done   chan struct{}
	warm   chan struct{}
	once   sync.Once

	published, applied, skipped, errs atomic.Uint64
}

func newShare(c *Cache, rc *redisx.Client, maxLen, maxPending int) *share {
	ctx, cancel := context.WithCancel(context.Background())
	s := &share{c: c, rc: rc, log: c.log, stream: rc.Key("s", "log"), maxLen: int64(maxLen),
		cancel: cancel, done: make(chan struct{}), warm: make(chan struct{})}
	s.backlog = redisx.NewBacklog(rc, redisx.BacklogOptions[change]{Send: s.send, Collapse: s.collapse,
		Max: maxPending, What: "semantic deletes and refusals", Logger: c.log})
	go s.tail(ctx)
	return s
}

// publishStore appends a stored entry to the stream. A failure is counted and logged; the
// entry stays local.
func (s *share) publishStore(ctx context.Context, key, ns string, vec []float32, e *entry) {
	if s == nil {
		return
	}
	vb := make([]byte, 4*len(vec))
	for i, f := range vec {
		binary.LittleEndian.PutUint32(vb[4*i:], math.Float32bits(f))
	}
	s.add(ctx, map[string]any{
		"op": opStore, "o": s.rc.ID(), "id": e.id, "k": key, "ns": ns, "p": e.prompt, "v": vb,
		"a": redisx.AppendDeflate(nil, e.value),
		"t": e.stored.UnixMilli(), "x": e.expires.UnixMilli(),
	})
}

// change is a record that must reach every replica: a delete (opDelete with an id,
// opDeleteNS with a namespace, opPurge) or a refusal (opRefuse: the entry id, "" for none, its
// namespace and the refused pairs' digests, 32 bytes each).
type change struct {
	op, arg, ns string
	pairs       []byte
}

// publish appends ch to the stream, or queues it when Redis cannot be reached.
func (s *share) publish(ch change) {
	if s == nil {
		return
	}
	if err := s.send(context.Background(), ch); err != nil {
		s.errs.Add(1)
		s.backlog.Add(ch)
		s.log.Warn("semantic: sharing a delete or refusal through redis failed; queued until redis answers again", "op", ch.op, "error", err)
		return
	}
	s.published.Add(1)
}

// send appends ch to the stream (and a refusal's digests to the refused list).
func (s *share) send(ctx context.Context, ch change) error {
	values := map[string]any{"op": ch.op, "o": s.rc.ID(), "id": ch.arg}
	if ch.op != opRefuse {
		return s.xadd(ctx, values)
	}
	values["ns"], values["h"] = ch.ns, ch.pairs
	return s.rc.Do(ctx, func(ctx context.Context) error {
		_, err := s.rc.R.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.XAdd(ctx, &redis.XAddArgs{Stream: s.stream, MaxLen: s.maxLen, Approx: true, Values: values})
			if len(ch.pairs) > 0 {
				digests := make([]any, 0, len(ch.pairs)/32)
				for i := 0; i+32 <= len(ch.pairs); i += 32 {
					digests = append(digests, ch.pairs[i:i+32])
				}
				p.LPush(ctx, s.refusedKey(), digests...)
				p.LTrim(ctx, s.refusedKey(), 0, int64(s.c.refusals.max)-1)
			}
			return nil
		})
		return err
	})
}

// collapse stands in for changes too many to hold: a purge of every replica's index, and the
// refusals' digests (the newest MaxRefusedPairs) in one refusal.
func (s *share) collapse(items []change) []change {
	var pairs []byte
	for _, ch := range items {
		if ch.op == opRefuse {
			pairs = append(pairs, ch.pairs...)
		}
	}
	out := []change{{op: opPurge}}
	if len(pairs) > 0 {
		pairs = pairs[max(0, len(pairs)-32*s.c.refusals.max):]
		out = append(out, change{op: opRefuse, pairs: pairs})
	}
	return out
}

func (s *share) add(ctx context.Context, values map[string]any) {
	if err := s.xadd(ctx, values); err != nil {
		s.errs.Add(1)
		s.log.Warn("semantic: sharing through redis failed; the change stays on this replica", "error", err)
		return
	}
	s.published.Add(1)
}

func (s *share) xadd(ctx context.Context, values map[string]any) error {
	return s.rc.Do(context.WithoutCancel(ctx), func(ctx context.Context) error {
		return s.rc.R.XAdd(ctx, &redis.XAddArgs{Stream: s.stream, MaxLen: s.maxLen, Approx: true, Values: values}).Err()
	})
}

// tail loads the refused pairs, reads the stream from its start, then follows it, until ctx
// ends. After a failure it retries every tailRetry; the first success after one replays the
// changes queued meanwhile.
func (s *share) tail(ctx context.Context) {
	defer close(s.done)
	last := "0"
	warm, loaded, failed := false, false, false
	for ctx.Err() == nil {
		var res []redis.XStream
		var err error
		reading := loaded
		if reading {
			res, err = s.read(ctx, last, warm)
		} else {
			err = s.loadRefused(ctx)
			loaded = err == nil
		}
		switch {
		case errors.Is(err, redis.Nil):
			warm = true
			s.caughtUp()
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			if !errors.Is(err, redisx.ErrUnavailable) {
				s.errs.Add(1)
			}
			failed = true
			select {
			case <-ctx.Done():
				return
			case <-time.After(tailRetry):
			}
			continue
		}
		if failed {
			failed = false
			s.backlog.Kick() // redis answers again
		}
		n := 0
		for _, st := range res {
			for _, m := range st.Messages {
				s.apply(m.Values)
				last = m.ID
				n++
			}
		}
		if reading && err == nil && n < tailBatch {
			warm = true
			s.caughtUp()
		}
	}
}

// read returns the records after last: at once while replaying (redis.Nil when caught up),
// else waiting up to tailBlock for new ones.
func (s *share) read(ctx context.Context, last string, warm bool) ([]redis.XStream, error) {
	var res []redis.XStream
	block := tailBlock
	if !warm {
		block = -1 // no BLOCK while replaying: an empty answer means caught up
	}
	// Redis checks blocked clients' timeouts only every 1/hz seconds (100ms by default):
	// the deadline leaves a second of slack beyond the block.
	err := s.rc.DoTimeout(ctx, tailBlock+s.rc.Timeout()+time.Second, func(ctx context.Context) error {
		var err error
		res, err = s.rc.R.XRead(ctx, &redis.XReadArgs{Streams: []string{s.stream, last}, Count: tailBatch,
			Block: block}).Result()
		return err
	})
	return res, err
}

func (s *share) caughtUp() {
	s.once.Do(func() {
		close(s.warm)
		s.log.Info("semantic: index warmed from redis", "entries", s.c.Stats().Entries)
	})
}

// apply files one record of another replica.
func (s *share) apply(v map[string]any) {
	str := func(k string) string { x, _ := v[k].(string); return x }
	if str("o") == s.rc.ID() {
		return
	}
	switch str("op") {
	case opDelete:
		s.c.deleteLocal(str("id"))
	case opDeleteNS:
		s.c.deleteNamespaceLocal(str("id"))
	case opPurge:
		s.c.purgeLocal()
	case opRefuse:
		if id := str("id"); id != "" {
			s.c.deleteLocalIn(str("ns"), id)
		}
		h := str("h")
		for i := 0; i+32 <= len(h); i += 32 {
			s.c.refusals.add([32]byte([]byte(h[i : i+32])))
		}
	case opStore:
		stored, err1 := strconv.ParseInt(str("t"), 10, 64)
		expires, err2 := strconv.ParseInt(str("x"), 10, 64)
		vb := str("v")
		value, err3 := redisx.Inflate([]byte(str("a")))
		if err := errors.Join(err1, err2, err3); err != nil || len(vb) == 0 || len(vb)%4 != 0 || str("id") == "" {
			s.skipped.Add(1)
			return
		}
		if len(value) == 0 {
			value = nil // the publisher's exact cache keeps the answer (see Store)
		}
		exp := time.UnixMilli(expires)
		if !exp.After(s.c.now()) {
			s.skipped.Add(1)
			return
		}
		vec := make([]float32, len(vb)/4)
		for i := range vec {
			vec[i] = math.Float32frombits(binary.LittleEndian.Uint32([]byte(vb[4*i:])))
		}
		e := &entry{id: str("id"), value: value, prompt: str("p"), stored: time.UnixMilli(stored), expires: exp}
		s.c.key(e, nil, "")
		if _, err := s.c.insert(context.Background(), str("k"), str("ns"), vec, e, false); err != nil {
			s.skipped.Add(1)
			return
		}
	default:
		s.skipped.Add(1)
		return
	}
	s.applied.Add(1)
}

func (s *share) close() {
	if s == nil {
		return
	}
	s.writes.Wait()
	s.cancel()
	<-s.done
	s.backlog.Close()
}

// Wait blocks until this replica's background writes to Redis started before it (the notes of
// the pairs it served) are done. Without Options.Redis it returns at once.
func (c *Cache) Wait() {
	if c.share != nil {
		c.share.writes.Wait()
	}
}

// WaitPurges blocks until every delete, purge and refusal that did not reach Redis has been
// appended to the stream, or ctx ends. Without Options.Redis it returns at once.
func (c *Cache) WaitPurges(ctx context.Context) error {
	if c.share == nil {
		return nil
	}
	if err := c.share.backlog.Wait(ctx); err != nil {
		return fmt.Errorf("semantic: deletes waiting for redis: %w", err)
	}
	return nil
}

// Close stops following the Redis stream (nothing to do without Options.Redis). The Redis
// client is the caller's to close.
func (c *Cache) Close() { c.share.close() }

// WaitWarm blocks until the start-up replay of the Redis stream has caught up (at once
// without Options.Redis), or ctx ends. The cache serves lookups meanwhile.
func (c *Cache) WaitWarm(ctx context.Context) error {
	if c.share == nil {
		return nil
	}
	select {
	case <-c.share.warm:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SharedStats returns the counters of sharing through Redis.
func (c *Cache) SharedStats() SharedStats {
	s := c.share
	if s == nil {
		return SharedStats{}
	}
	warm := false
	select {
	case <-s.warm:
		warm = true
	default:
	}
	b := s.backlog.Stats()
	return SharedStats{Published: s.published.Load(), Applied: s.applied.Load(), Skipped: s.skipped.Load(),
		Errors: s.errs.Load(), Warm: warm, Pending: b.Pending, Replayed: b.Replayed, Overflows: b.Overflows}
}
