package cache

// Peek returns the live entry stored under key like Get, without counting a hit or a miss:
// for zest's own bookkeeping (cache feedback), not for serving.
func (c *Cache) Peek(key string) (*Entry, bool) {
	e, ok := c.store.Get(key)
	if !ok || !c.now().Before(e.Expires) {
		return nil, false
	}
	return e, true
}
