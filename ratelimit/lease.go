package ratelimit

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultLeaseTTL is Options.LeaseTTL when it is 0.
const DefaultLeaseTTL = 30 * time.Second

// leaseSet is the concurrency leases this replica holds in Redis: lease id → lease key.
// A live replica renews them every LeaseTTL/3; a replica that dies stops renewing, and its
// leases expire (the next admission of the identity on any replica removes them), so its
// slots come back within LeaseTTL.
type leaseSet struct {
	mu   sync.Mutex
	m    map[string]string
	stop chan struct{}
	done chan struct{}
}

func (s *leaseSet) add(id, key string) {
	s.mu.Lock()
	if s.m == nil {
		s.m = map[string]string{}
	}
	s.m[id] = key
	s.mu.Unlock()
}

func (s *leaseSet) remove(id string) {
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
}

// Len is the number of leases held.
func (s *leaseSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// startRenewing renews the leases every LeaseTTL/3 until Close.
func (l *Limiter) startRenewing() {
	s := &l.remote.leases
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s.done)
		tick := time.NewTicker(l.remote.leaseTTL / 3)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tick.C:
				l.renewLeases(context.Background())
			}
		}
	}()
}

// renewLeases pushes the expiry of every held lease to now + LeaseTTL, in one pipeline. A lease
// that already expired and was removed is not brought back (ZADD XX).
func (l *Limiter) renewLeases(ctx context.Context) error {
	r := l.remote
	r.leases.mu.Lock()
	ids := make([]string, 0, len(r.leases.m))
	keys := make([]string, 0, len(r.leases.m))
	for id, k := range r.leases.m {
		ids, keys = append(ids, id), append(keys, k)
	}
	r.leases.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	exp := float64(l.now().Add(r.leaseTTL).UnixMilli())
	err := r.c.Do(ctx, func(ctx context.Context) error {
		_, err := r.c.R.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range ids {
				p.ZAddXX(ctx, keys[i], redis.Z{Score: exp, Member: id})
				p.PExpire(ctx, keys[i], r.leaseTTL+time.Second)
			}
			return nil
		})
		return err
	})
	if err != nil {
		l.log.Debug("ratelimit: renewing leases failed", "leases", len(ids), "error", err)
	}
	return err
}

// Close stops renewing the concurrency leases held in Redis (nothing to do without
// Options.Redis). Leases of tickets still open then expire after LeaseTTL. Close does not close
// the Redis client, which the caller owns.
func (l *Limiter) Close() {
	if l.remote == nil || l.remote.leases.stop == nil {
		return
	}
	l.closeOnce.Do(func() {
		close(l.remote.leases.stop)
		<-l.remote.leases.done
	})
}
