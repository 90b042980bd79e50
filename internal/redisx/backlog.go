package redisx

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultBacklog is how many writes a Backlog holds when BacklogOptions.Max is 0.
const DefaultBacklog = 10000

// BacklogOptions configure NewBacklog.
type BacklogOptions[T any] struct {
	// Send writes one item to Redis (through Client.Do or DoTimeout). Required. It is called
	// by one goroutine at a time, and may be called again for an item it already wrote (after
	// a collapse): items must be idempotent, like deletes.
	Send func(ctx context.Context, x T) error
	// Collapse is called when an Add would make the backlog hold more than Max items: it gets
	// them all and returns fewer (at most Max) that do at least as much — say, one "delete
	// everything" in place of many deletes. Required.
	Collapse func(items []T) []T
	// Max bounds the items held. Default DefaultBacklog.
	Max int
	// What names the items in logs ("cache purges").
	What string
	// Logger receives the overflows and the replays; nil discards.
	Logger *slog.Logger
}

// Backlog holds writes that did not reach Redis (it was down or slow) and replays them,
// oldest first, once it answers again: while it holds any, a goroutine retries every
// Client.RetryAfter (the breaker's period, so a retry is the probe that finds Redis back), and
// at once on Kick. It never holds more than Max items (see BacklogOptions.Collapse). Items
// that Redis refuses with a reply error (a bug, not an outage) are dropped and logged. Safe for
// concurrent use; Close stops it.
type Backlog[T any] struct {
	rc   *Client
	opts BacklogOptions[T]
	log  *slog.Logger

	mu    sync.Mutex
	items []T
	gen   uint64        // bumped by every collapse, which replaces items
	idle  chan struct{} // closed while items is empty

	kick chan struct{}
	stop chan struct{}
	done chan struct{}

	replayed, overflows atomic.Uint64
}

// BacklogStats are a Backlog's counters.
type BacklogStats struct {
	Pending   int    `json:"pending"`   // items waiting for Redis
	Replayed  uint64 `json:"replayed"`  // items written after a failure
	Overflows uint64 `json:"overflows"` // times the backlog was full and collapsed
}

// NewBacklog returns an empty Backlog replaying through rc, and starts its goroutine.
func NewBacklog[T any](rc *Client, opts BacklogOptions[T]) *Backlog[T] {
	if opts.Send == nil || opts.Collapse == nil {
		panic("redisx: BacklogOptions.Send and Collapse are required")
	}
	if opts.Max <= 0 {
		opts.Max = DefaultBacklog
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	idle := make(chan struct{})
	close(idle)
	b := &Backlog[T]{rc: rc, opts: opts, log: log, idle: idle,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go b.loop()
	return b
}

// Add queues x, which failed to reach Redis, for a replay.
func (b *Backlog[T]) Add(x T) {
	b.mu.Lock()
	if len(b.items) == 0 {
		b.idle = make(chan struct{})
	}
	b.items = append(b.items, x)
	if n := len(b.items); n > b.opts.Max {
		b.items = b.opts.Collapse(b.items)
		b.gen++
		b.overflows.Add(1)
		b.log.Warn("redis: too many writes waiting for redis; collapsed into broader ones", "what", b.opts.What,
			"held", n, "now", len(b.items))
		if len(b.items) == 0 {
			b.items = nil
			close(b.idle)
		}
	}
	b.mu.Unlock()
	b.Kick()
}

// Kick makes the goroutine try a replay now (Redis may be back), if anything is held.
func (b *Backlog[T]) Kick() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// Wait blocks until the backlog is empty, or ctx ends.
func (b *Backlog[T]) Wait(ctx context.Context) error {
	b.mu.Lock()
	idle := b.idle
	b.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stats returns the counters.
func (b *Backlog[T]) Stats() BacklogStats {
	b.mu.Lock()
	n := len(b.items)
	b.mu.Unlock()
	return BacklogStats{Pending: n, Replayed: b.replayed.Load(), Overflows: b.overflows.Load()}
}

// Close stops the goroutine. Items still held are lost (and logged).
func (b *Backlog[T]) Close() {
	close(b.stop)
	<-b.done
	if n := b.Stats().Pending; n > 0 {
		b.log.Warn("redis: closing with writes that never reached redis", "what", b.opts.What, "held", n)
	}
}

func (b *Backlog[T]) loop() {
	defer close(b.done)
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	for {
		select {
		case <-b.stop:
			retry.Stop()
			return
		case <-b.kick:
		case <-retry.C:
		}
		if !b.flush() {
			retry.Reset(b.rc.RetryAfter())
		}
	}
}

// flush replays the items, oldest first, and reports whether it emptied the backlog.
func (b *Backlog[T]) flush() bool {
	ctx := context.Background()
	for {
		b.mu.Lock()
		if len(b.items) == 0 {
			b.mu.Unlock()
			return true
		}
		x, gen := b.items[0], b.gen
		b.mu.Unlock()
		err := b.opts.Send(ctx, x)
		if err != nil && (errors.Is(err, ErrUnavailable) || !isReplyError(err)) {
			return false // Redis is still away: retry later
		}
		if err != nil {
			b.log.Error("redis: a queued write was refused; dropped", "what", b.opts.What, "error", err)
		} else {
			b.replayed.Add(1)
		}
		b.mu.Lock()
		if b.gen == gen { // else a collapse replaced the items; the new ones cover x
			b.items = b.items[1:]
		}
		if len(b.items) == 0 {
			b.items = nil
			close(b.idle)
			b.log.Info("redis: writes made during the outage replayed", "what", b.opts.What,
				"replayed", b.replayed.Load())
		}
		b.mu.Unlock()
	}
}
