package semantic

import (
	"context"
	"encoding/binary"
	"errors"
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

// Record operations (field "op").
const (
	opStore    = "s"
	opDelete   = "d"
	opDeleteNS = "n"
	opPurge    = "a"
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
}

// share is the Redis side of a Cache.
type share struct {
	c      *Cache
	rc     *redisx.Client
	log    *slog.Logger
	stream string
	maxLen int64

	cancel context.CancelFunc
	done   chan struct{}
	warm   chan struct{}
	once   sync.Once

	published, applied, skipped, errs atomic.Uint64
}

func newShare(c *Cache, rc *redisx.Client, maxLen int) *share {
	ctx, cancel := context.WithCancel(context.Background())
	s := &share{c: c, rc: rc, log: c.log, stream: rc.Key("s", "log"), maxLen: int64(maxLen),
		cancel: cancel, done: make(chan struct{}), warm: make(chan struct{})}
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

// publishDelete appends a delete (op opDelete with an id, opDeleteNS with a namespace, or
// opPurge).
func (s *share) publishDelete(op, arg string) {
	if s == nil {
		return
	}
	s.add(context.Background(), map[string]any{"op": op, "o": s.rc.ID(), "id": arg})
}

func (s *share) add(ctx context.Context, values map[string]any) {
	err := s.rc.Do(context.WithoutCancel(ctx), func(ctx context.Context) error {
		return s.rc.R.XAdd(ctx, &redis.XAddArgs{Stream: s.stream, MaxLen: s.maxLen, Approx: true, Values: values}).Err()
	})
	if err != nil {
		s.errs.Add(1)
		s.log.Warn("semantic: sharing through redis failed; the change stays on this replica", "error", err)
		return
	}
	s.published.Add(1)
}

// tail reads the stream from its start, then follows it, until ctx ends.
func (s *share) tail(ctx context.Context) {
	defer close(s.done)
	last := "0"
	warm := false
	for ctx.Err() == nil {
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
		switch {
		case errors.Is(err, redis.Nil):
			warm = true
			s.caughtUp()
			continue
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			if !errors.Is(err, redisx.ErrUnavailable) {
				s.errs.Add(1)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(tailRetry):
			}
			continue
		}
		n := 0
		for _, st := range res {
			for _, m := range st.Messages {
				s.apply(m.Values)
				last = m.ID
				n++
			}
		}
		if n < tailBatch {
			warm = true
			s.caughtUp()
		}
	}
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
		if err := s.c.insert(context.Background(), str("k"), str("ns"), vec, e); err != nil {
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
	s.cancel()
	<-s.done
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
	return SharedStats{Published: s.published.Load(), Applied: s.applied.Load(), Skipped: s.skipped.Load(),
		Errors: s.errs.Load(), Warm: warm}
}
