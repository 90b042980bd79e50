package semantic

import "time"

// expiryItem is an entry's place in the expiry order. Its sort key is kept inline, so that
// ordering never reads the entry itself: at a full cache every store evicts one entry, and a
// heap of entry pointers read two scattered entries per step of that pop (BenchmarkStoreFull).
type expiryItem struct {
	at  int64  // the entry's expiry, in nanoseconds since the queue's epoch
	seq uint64 // insertion order, breaks ties (older first)
	e   *entry
}

// expiryQueue orders entries by expiry time, then by insertion (older first): its top is the
// next entry to expire and the first to evict. It is a binary heap. Taking out an entry that
// is not at the top only marks it (entry.dequeued); marked items are dropped when they reach
// the top, and all at once when they are more than an eighth of the queue (and over
// compactSlack), so the queue never holds more than that beyond the live entries. The zero
// value is not ready: use newExpiryQueue.
type expiryQueue struct {
	epoch time.Time // carries a monotonic reading when the cache's clock does
	items []expiryItem
	dead  int // marked items still in items
}

// compactSlack is how many marked items the queue may hold before an eighth of it does.
const compactSlack = 64

func newExpiryQueue(epoch time.Time) expiryQueue { return expiryQueue{epoch: epoch} }

// push adds e, which expires at e.expires.
func (q *expiryQueue) push(e *entry) {
	q.items = append(q.items, expiryItem{at: int64(e.expires.Sub(q.epoch)), seq: e.seq, e: e})
	q.up(len(q.items) - 1)
}

// top returns the entry that expires first, nil when there is none.
func (q *expiryQueue) top() *entry {
	for len(q.items) > 0 && q.items[0].e.dequeued {
		q.pop()
		q.dead--
	}
	if len(q.items) == 0 {
		return nil
	}
	return q.items[0].e
}

// due reports whether the top item expires at or before now (a marked top may make it report
// true early; the caller's sweep then finds nothing to remove).
func (q *expiryQueue) due(now time.Time) bool {
	return len(q.items) > 0 && q.items[0].at <= int64(now.Sub(q.epoch))
}

// remove takes e out of the order: e must be in it.
func (q *expiryQueue) remove(e *entry) {
	e.dequeued = true
	if len(q.items) > 0 && q.items[0].e == e {
		q.pop()
		return
	}
	q.dead++
	if q.dead > compactSlack && q.dead > len(q.items)/8 {
		q.compact()
	}
}

// compact drops every marked item and restores the heap order.
func (q *expiryQueue) compact() {
	live := q.items[:0]
	for _, it := range q.items {
		if !it.e.dequeued {
			live = append(live, it)
		}
	}
	clear(q.items[len(live):])
	q.items, q.dead = live, 0
	for i := len(q.items)/2 - 1; i >= 0; i-- {
		q.down(i)
	}
}

// pop removes the top item.
func (q *expiryQueue) pop() {
	n := len(q.items) - 1
	q.items[0] = q.items[n]
	q.items[n] = expiryItem{}
	q.items = q.items[:n]
	q.down(0)
}

func (q *expiryQueue) less(i, j int) bool {
	a, b := &q.items[i], &q.items[j]
	return a.at < b.at || a.at == b.at && a.seq < b.seq
}

func (q *expiryQueue) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !q.less(i, p) {
			return
		}
		q.items[i], q.items[p] = q.items[p], q.items[i]
		i = p
	}
}

func (q *expiryQueue) down(i int) {
	n := len(q.items)
	for {
		c := 2*i + 1
		if c >= n {
			return
		}
		if r := c + 1; r < n && q.less(r, c) {
			c = r
		}
		if !q.less(c, i) {
			return
		}
		q.items[i], q.items[c] = q.items[c], q.items[i]
		i = c
	}
}
