package semantic

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestExpiryQueue drives the queue with random pushes, removals from anywhere and pops of the
// top, against a sorted list: the top is always the live entry that expires first (older first
// on ties), and the marked items it keeps never exceed its bound.
func TestExpiryQueue(t *testing.T) {
	epoch := time.Unix(1_700_000_000, 0)
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 1))
		q := newExpiryQueue(epoch)
		var live []*entry // the reference: sorted by (expires, seq)
		byOrder := func(a, b *entry) int {
			if c := a.expires.Compare(b.expires); c != 0 {
				return c
			}
			return int(a.seq) - int(b.seq)
		}
		var seq uint64
		for range 5000 {
			switch op := r.IntN(10); {
			case op < 5 || len(live) == 0: // push; few distinct times, so ties are common
				seq++
				e := &entry{seq: seq, expires: epoch.Add(time.Duration(r.IntN(50)) * time.Second)}
				q.push(e)
				live = append(live, e)
				slices.SortFunc(live, byOrder)
			case op < 8: // remove an entry from anywhere
				i := r.IntN(len(live))
				q.remove(live[i])
				live = slices.Delete(live, i, i+1)
			default: // evict the top
				if got := q.top(); got != live[0] {
					t.Fatalf("seed %d: top has seq %d, want %d", seed, got.seq, live[0].seq)
				}
				q.remove(live[0])
				live = live[1:]
			}
			if len(live) > 0 {
				if got := q.top(); got != live[0] {
					t.Fatalf("seed %d: top has seq %d, want %d", seed, got.seq, live[0].seq)
				}
			} else if got := q.top(); got != nil {
				t.Fatalf("seed %d: top of an empty queue has seq %d", seed, got.seq)
			}
			if bound := len(live) + max(compactSlack, len(q.items)/8) + 1; len(q.items) > bound {
				t.Fatalf("seed %d: %d items for %d live entries, bound %d", seed, len(q.items), len(live), bound)
			}
		}
	}
}

// TestExpiryQueueDue: due compares the top's expiry with now, equal counting as due.
func TestExpiryQueueDue(t *testing.T) {
	epoch := time.Unix(1_700_000_000, 0)
	q := newExpiryQueue(epoch)
	if q.due(epoch.Add(time.Hour)) {
		t.Fatal("an empty queue is due")
	}
	q.push(&entry{seq: 1, expires: epoch.Add(time.Minute)})
	if q.due(epoch.Add(time.Minute - 1)) {
		t.Error("due a nanosecond before the expiry")
	}
	if !q.due(epoch.Add(time.Minute)) {
		t.Error("not due at the expiry")
	}
}
