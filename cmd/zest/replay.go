package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/zest-proxy/zest/cache"
	"github.com/zest-proxy/zest/proxy"
	"github.com/zest-proxy/zest/proxy/sse"
	"github.com/zest-proxy/zest/replay"
)

// buildReplay opens the recording of [replay]: a Writer in record mode (closed, and so
// flushed, with the app), the loaded recording in replay mode, nothing when off.
func buildReplay(c ReplayConfig, logger *slog.Logger, a *app) (proxy.Recorder, *proxy.ReplayOptions, error) {
	switch c.Mode {
	case "record":
		w, err := replay.Create(c.File)
		if err != nil {
			return nil, nil, fmt.Errorf("replay.file: %w", err)
		}
		a.closers = append(a.closers, func() {
			if err := w.Close(); err != nil {
				logger.Error("replay: the recording may be incomplete", "file", c.File, "error", err)
				return
			}
			logger.Info("replay: recording closed", "file", c.File, "records", w.Count())
		})
		logger.Info("replay: recording clean answers", "file", c.File)
		return w, nil, nil
	case "replay":
		recs, err := readRecording(c.File, logger)
		if err != nil {
			return nil, nil, fmt.Errorf("replay.file: %w", err)
		}
		book := replay.NewBook(recs)
		if book.Len() == 0 {
			logger.Warn("replay: the recording holds no answers; every request gets the miss outcome", "file", c.File)
		}
		logger.Info("replay: answering from the recording, never calling the upstream for chat completions",
			"file", c.File, "answers", book.Len(), "speed", c.Speed, "miss", c.Miss)
		return nil, &proxy.ReplayOptions{Book: book, Speed: c.Speed, Miss: c.Miss}, nil
	}
	return nil, nil, nil
}

// maxLoggedBadLines is how many unreadable lines of a recording are logged one by one; the
// rest are counted in one more line.
const maxLoggedBadLines = 10

// readRecording reads a recording, logging (not failing on) lines it had to skip.
func readRecording(path string, logger *slog.Logger) ([]replay.Record, error) {
	recs, bad, err := replay.ReadFile(path)
	for i, b := range bad {
		if i == maxLoggedBadLines {
			logger.Warn("replay: skipped more lines of the recording", "file", path, "more", len(bad)-i)
			break
		}
		logger.Warn("replay: skipped a line of the recording", "file", path, "line", b.Line, "error", b.Err)
	}
	return recs, err
}

// preload loads the recording at path (none when "") into the exact cache: each answer
// stored with what is left of its TTL at now; expired ones are skipped. key names the config
// key in errors and logs.
func preload(exact *cache.Cache, key, path string, now time.Time, logger *slog.Logger) error {
	if path == "" {
		return nil
	}
	recs, err := readRecording(path, logger)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	loaded, expired := 0, 0
	for _, r := range replay.NewBook(recs).Records() {
		if !now.Before(r.Expires()) {
			expired++
			continue
		}
		p, c, _ := sse.CompletionUsage(r.Completion)
		if exact.Set(&cache.Entry{Key: r.Key, Namespace: r.Namespace, Model: r.Model, Body: []byte(r.Completion),
			Stored: r.RecordedAt, Expires: r.Expires(), PromptTokens: p, CompletionTokens: c}) {
			loaded++
		}
	}
	exact.Wait()
	logger.Info(key+": exact cache warmed", "file", path, "loaded", loaded, "expired", expired)
	return nil
}
