package semantic

import "sync/atomic"

// Stats is a snapshot of a Cache's counters. Counters only grow (Purge does
// not reset them); Entries and Partitions are current sizes.
type Stats struct {
	Entries      int    // live entries (some may have expired but not yet been swept)
	Bytes        int64  // bytes charged against MaxBytes
	MaxBytes     int64  // the budget
	Partitions   int    // non-empty (namespace, partition) collections
	Lookups      uint64 // Lookup calls
	Hits         uint64 // lookups that returned an entry
	Misses       uint64 // lookups that did not, errors included
	EmbedErrors  uint64 // embedder failures and timeouts (Lookup and Store)
	IndexErrors  uint64 // vector index failures
	Rejected     uint64 // candidates above the threshold the Verifier refused
	Unembeddable uint64 // prompts with nothing to embed (no known word)
	Evictions    uint64 // entries dropped by the MaxEntries cap
	Expired      uint64 // entries dropped because their TTL passed
	Reports      uint64 // entries removed by Report (a client said the answer was wrong)
	Refused      uint64 // candidates skipped because their pair was reported
	Anchored     uint64 // lookups that read only the entries filed under the query's words (see Anchorer)
	RefusedPairs int    // pairs currently refused (at most Options.MaxRefusedPairs)
}

type counters struct {
	lookups, hits, misses, embedErrors, indexErrors, rejected, unembeddable, evictions, expired, reports, refused, anchored atomic.Uint64
}

// Stats returns a snapshot of the counters.
func (c *Cache) Stats() Stats {
	c.mu.RLock()
	entries, parts, bytes := len(c.entries), len(c.parts), c.bytes
	c.mu.RUnlock()
	return Stats{
		Entries:      entries,
		Bytes:        bytes,
		MaxBytes:     c.maxBytes,
		Partitions:   parts,
		Lookups:      c.stats.lookups.Load(),
		Hits:         c.stats.hits.Load(),
		Misses:       c.stats.misses.Load(),
		EmbedErrors:  c.stats.embedErrors.Load(),
		IndexErrors:  c.stats.indexErrors.Load(),
		Rejected:     c.stats.rejected.Load(),
		Unembeddable: c.stats.unembeddable.Load(),
		Evictions:    c.stats.evictions.Load(),
		Expired:      c.stats.expired.Load(),
		Reports:      c.stats.reports.Load(),
		Refused:      c.stats.refused.Load(),
		Anchored:     c.stats.anchored.Load(),
		RefusedPairs: c.refusals.len(),
	}
}
