package cache

import (
	"container/list"
	"time"
)

// The window keeps the newest entries outside the store. ristretto admits a new item only when
// its estimated frequency beats that of the items it would evict (TinyLFU), and a just-answered
// prompt has been asked once: once the store was full, nearly every new answer was turned away
// before it could be asked a second time. In the window (W-TinyLFU's, as in Caffeine) an entry
// is served and its hits are counted; when newer entries push it out it is offered to the store,
// whose policy then weighs what it was actually asked.

// slot is a key's entry while the store has not (yet) applied it: in the window (elem set), or
// offered to the store (elem nil; seq 0 until the store's write is queued, so that only a Wait
// queued after the write settles it).
type slot struct {
	e    *Entry
	cost int64         // what the window charges for e
	elem *list.Element // e's place in the window's FIFO; nil once offered
	seq  uint64
}

// enter puts e, whose cost is cost, in the window in place of any earlier slot of its key, and
// returns the entries pushed out of the window (already marked offered), oldest first.
func (c *Cache) enter(e *Entry, cost int64) []*Entry {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	c.dropSlot(e.Key)
	c.slots[e.Key] = slot{e: e, cost: cost, elem: c.fifo.PushBack(e)}
	c.nslots.Add(1)
	c.winBytes += cost
	return c.overflow()
}

// overflow takes the oldest entries out of the window until it fits its share; under pmu.
func (c *Cache) overflow() []*Entry {
	var out []*Entry
	for c.winBytes > c.winMax {
		e := c.fifo.Remove(c.fifo.Front()).(*Entry)
		s := c.slots[e.Key]
		c.winBytes -= s.cost
		c.slots[e.Key] = slot{e: e}
		out = append(out, e)
	}
	return out
}

// promote offers each entry to the store at its current cost and remaining TTL, and reports
// whether any write was queued (a Wait then settles it). An entry the store's write buffer
// turns away twice, or that expired, leaves the table.
func (c *Cache) promote(entries []*Entry) bool {
	queued := false
	for _, e := range entries {
		ttl := e.Expires.Sub(c.now())
		cost := c.Cost(e)
		if ttl <= 0 || !c.write(e, cost, ttl) {
			c.unpend(e.Key, e)
			continue
		}
		c.pmu.Lock()
		c.queued(e, cost)
		c.pmu.Unlock()
		queued = true
	}
	return queued
}

// write queues e's write to the store; when the store's write buffer is full it lets it drain
// and tries once more.
func (c *Cache) write(e *Entry, cost int64, ttl time.Duration) bool {
	if c.store.SetWithTTL(e.Key, e, cost, ttl) {
		return true
	}
	c.store.Wait()
	if c.store.SetWithTTL(e.Key, e, cost, ttl) {
		return true
	}
	c.rejections.Add(1)
	return false
}

// rechargeWindow charges e at its current cost if it is in the window, and returns whether it
// was, with the entries that no longer fit there.
func (c *Cache) rechargeWindow(e *Entry) (bool, []*Entry) {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	s, ok := c.slots[e.Key]
	if !ok || s.e != e || s.elem == nil {
		return false, nil
	}
	cost := c.Cost(e)
	c.winBytes += cost - s.cost
	s.cost = cost
	c.slots[e.Key] = s
	return true, c.overflow()
}

// pendIfCurrent marks e offered to the store again, visible through the table meanwhile,
// provided it is still what its key holds; it reports whether it was.
func (c *Cache) pendIfCurrent(e *Entry) bool {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	if s, ok := c.slots[e.Key]; ok {
		if s.e != e || s.elem != nil {
			return false
		}
	} else if cur, ok := c.store.Get(e.Key); !ok || cur != e {
		return false
	} else {
		c.nslots.Add(1)
	}
	c.slots[e.Key] = slot{e: e}
	return true
}

// queued records that e's write, charged cost, is in the store's queue, so that a later settle
// may drop its slot; under pmu.
func (c *Cache) queued(e *Entry, cost int64) {
	if s, ok := c.slots[e.Key]; ok && s.e == e && s.elem == nil {
		c.pseq++
		c.slots[e.Key] = slot{e: e, seq: c.pseq}
		c.offers = append(c.offers, offer{key: e.Key, seq: c.pseq})
		c.offerBytes += cost
	}
}

// unpend drops key's slot if it still holds e (any entry when e is nil).
func (c *Cache) unpend(key string, e *Entry) {
	c.pmu.Lock()
	if s, ok := c.slots[key]; ok && (e == nil || s.e == e) {
		c.dropSlot(key)
	}
	c.pmu.Unlock()
}

// dropSlot removes key's slot, from the window too; under pmu.
func (c *Cache) dropSlot(key string) {
	s, ok := c.slots[key]
	if !ok {
		return
	}
	if s.elem != nil {
		c.fifo.Remove(s.elem)
		c.winBytes -= s.cost
	}
	delete(c.slots, key)
	c.nslots.Add(-1)
}

// offer is a write queued to the store: its slot's key and seq.
type offer struct {
	key string
	seq uint64
}

// Offered entries wait in the table until a settle; one starts in the background once this
// many are waiting, or a quarter of the window's bytes. That bounds what the table holds
// beyond the budget (entries the store may yet turn away) without a Wait per Set.
const settleBatch = 64

// settleLocal is Wait for the in-memory tier only: it waits for the store to apply the writes
// queued so far and drops their slots. Entries in the window stay. Its cost is that of the
// writes it settles, not of the table.
func (c *Cache) settleLocal() {
	c.pmu.Lock()
	batch := c.offers
	c.offers, c.offerBytes = nil, 0
	c.pmu.Unlock()
	c.store.Wait()
	if len(batch) == 0 {
		return
	}
	c.pmu.Lock()
	for _, o := range batch {
		if s, ok := c.slots[o.key]; ok && s.seq == o.seq {
			delete(c.slots, o.key)
			c.nslots.Add(-1)
		}
	}
	c.pmu.Unlock()
}

// settleSoon starts a background settle when enough offered writes wait (see settleBatch) and
// none is running. A settle that ends looks again, so offers queued while it ran, whose own
// settleSoon found it running, are not left waiting.
func (c *Cache) settleSoon() {
	c.pmu.RLock()
	over := len(c.offers) >= settleBatch || c.offerBytes >= c.winMax/4
	c.pmu.RUnlock()
	if !over || !c.settling.CompareAndSwap(false, true) {
		return
	}
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		c.settleLocal()
		c.settling.Store(false)
		c.settleSoon()
	}()
}

// windowKeys returns the keys of the window's entries that keep says to.
func (c *Cache) windowKeys(keep func(*Entry) bool) map[string]struct{} {
	keys := map[string]struct{}{}
	c.pmu.RLock()
	defer c.pmu.RUnlock()
	for el := c.fifo.Front(); el != nil; el = el.Next() {
		if e := el.Value.(*Entry); keep(e) {
			keys[e.Key] = struct{}{}
		}
	}
	return keys
}

// clearWindow empties the window and the table.
func (c *Cache) clearWindow() {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	clear(c.slots)
	c.offers, c.offerBytes = nil, 0
	c.fifo.Init()
	c.winBytes = 0
	c.nslots.Store(0)
}
