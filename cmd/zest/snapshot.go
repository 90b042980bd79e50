package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/zest-proxy/zest/cache"
	"github.com/zest-proxy/zest/replay"
)

// loadSnapshot warms the exact cache from the snapshot at path (cache.snapshot) when there is
// one: a first start has none and starts cold. Unreadable lines (a file cut short) are logged
// and skipped. It also checks that the snapshot's directory takes new files, so a bad path
// fails at start rather than at shutdown.
func loadSnapshot(exact *cache.Cache, path string, now time.Time, logger *slog.Logger) error {
	if path == "" {
		return nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".probe-*")
	if err != nil {
		return fmt.Errorf("cache.snapshot: the snapshot could not be written: %w", err)
	}
	f.Close()
	os.Remove(f.Name())
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		logger.Info("cache.snapshot: no snapshot yet, starting cold; one is written on shutdown", "file", path)
		return nil
	}
	return preload(exact, "cache.snapshot", path, now, logger)
}

// writeSnapshot saves the live exact-cache entries to path (see replay.WriteFile: the old
// snapshot stays whole until the new one is), each as a record with no timing whose
// recorded_at is when the answer was stored and whose ttl_s runs to its expiry, so a load
// keeps its remaining TTL and its Age. Entries kept only for the semantic cache are left out
// (loaded, they would become exact answers). Namespaces are tenant ids, never API keys.
func writeSnapshot(exact *cache.Cache, path string, now time.Time, logger *slog.Logger) {
	began := time.Now()
	entries := exact.Entries()
	n, err := replay.WriteFile(path, func(yield func(*replay.Record) bool) {
		for _, e := range entries {
			ttl := int64(e.Expires.Sub(e.Stored) / time.Second)
			if e.SemanticOnly || !now.Before(e.Expires) || ttl <= 0 {
				continue
			}
			rec := replay.Record{Key: e.Key, Namespace: e.Namespace, Model: e.Model, Completion: e.Body,
				RecordedAt: e.Stored.UTC(), TTL: ttl}
			if !yield(&rec) {
				return
			}
		}
	})
	if err != nil {
		logger.Error("cache.snapshot: not saved; the previous snapshot, if any, is unchanged", "file", path, "error", err)
		return
	}
	logger.Info("cache.snapshot: exact cache saved", "file", path, "entries", n, "took", time.Since(began).Round(time.Millisecond))
}
