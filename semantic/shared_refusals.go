package semantic

import (
	"context"

	"github.com/redis/go-redis/v9"
	"github.com/zest-proxy/zest/internal/redisx"
)

// Cache feedback across replicas (see shared.go): the refused list a replica loads at start,
// and the notes of the pairs each replica served, which a report on any replica reads.

// loadRefused adds the refused pairs kept in Redis (oldest first, as they were refused).
func (s *share) loadRefused(ctx context.Context) error {
	var digests []string
	err := s.rc.Do(ctx, func(ctx context.Context) error {
		var err error
		digests, err = s.rc.R.LRange(ctx, s.refusedKey(), 0, int64(s.c.refusals.max)-1).Result()
		return err
	})
	if err != nil {
		return err
	}
	for i := len(digests) - 1; i >= 0; i-- {
		var k [32]byte
		if copy(k[:], digests[i]) == 32 && len(digests[i]) == 32 {
			s.c.refusals.add(k)
		}
	}
	return nil
}

func (s *share) refusedKey() string { return s.rc.Key("s", "refused") }

// servedKey names the list of pairs an entry was served for, per namespace and id.
func (s *share) servedKey(ns, id string) string {
	return s.rc.Key("s", "sv", redisx.Tag(redisx.Hash(ns+"\x00"+id)))
}

// noteServed records in Redis, in the background, that e was served for a query whose pair
// digest is pair, so that a report on any replica refuses it.
func (s *share) noteServed(ns string, e *entry, pair [32]byte) {
	if s == nil {
		return
	}
	key, ttl := s.servedKey(ns, e.id), e.expires.Sub(s.c.now())
	if ttl <= 0 {
		return
	}
	s.writes.Go(func() {
		err := s.rc.Do(context.Background(), func(ctx context.Context) error {
			_, err := s.rc.R.Pipelined(ctx, func(p redis.Pipeliner) error {
				p.LPush(ctx, key, pair[:])
				p.LTrim(ctx, key, 0, maxServedPrompts-1)
				p.PExpire(ctx, key, ttl) // relative, as the exact tier's entries: replicas' clocks need not agree with Redis's
				return nil
			})
			return err
		})
		if err != nil {
			s.errs.Add(1)
		}
	})
}

// served returns (and forgets) the digests of the pairs every replica recorded for the entry id
// of namespace ns; nil when Redis cannot say.
func (s *share) served(ctx context.Context, ns, id string) [][32]byte {
	if s == nil {
		return nil
	}
	var list *redis.StringSliceCmd
	key := s.servedKey(ns, id)
	err := s.rc.Do(ctx, func(ctx context.Context) error {
		_, err := s.rc.R.TxPipelined(ctx, func(p redis.Pipeliner) error {
			list = p.LRange(ctx, key, 0, -1)
			p.Del(ctx, key)
			return nil
		})
		return err
	})
	if err != nil {
		s.errs.Add(1)
		s.log.Warn("semantic: reading the pairs other replicas served failed; refusing this replica's only", "error", err)
		return nil
	}
	var out [][32]byte
	for _, d := range list.Val() {
		var k [32]byte
		if copy(k[:], d) == 32 && len(d) == 32 {
			out = append(out, k)
		}
	}
	return out
}
