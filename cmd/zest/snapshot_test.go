package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zest-proxy/zest/cache"
	"github.com/zest-proxy/zest/replay"
)

// snapCache is an exact cache on the fake clock *now.
func snapCache(t *testing.T, now *time.Time) *cache.Cache {
	t.Helper()
	c, err := cache.New(cache.Options{MaxBytes: 1 << 20, Now: func() time.Time { return *now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestSnapshotKeepsTTLAndAge: a snapshot holds the live exact answers with when they were
// stored and their lifetime, and a cache loaded from it later serves them with the same stored
// time (so Age goes on counting) and the same expiry. Expired answers and answers kept only
// for the semantic cache are not written.
func TestSnapshotKeepsTTLAndAge(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "snap.jsonl")
	logger := slog.New(slog.DiscardHandler)
	c := snapCache(t, &now)
	stored := now.Add(-10 * time.Minute)
	set := func(key string, ttl time.Duration, semOnly bool) {
		if !c.Set(&cache.Entry{Key: key, Namespace: "k:aa", Model: "m", Body: []byte(testCompletion), Stored: stored,
			Expires: stored.Add(ttl), PromptTokens: 3, CompletionTokens: 1, SemanticOnly: semOnly}) {
			t.Fatalf("Set %s refused", key)
		}
	}
	set("live", time.Hour, false)
	set("dying", 11*time.Minute, false)
	set("semantic", time.Hour, true)
	now = now.Add(2 * time.Minute) // "dying" expired a minute ago
	writeSnapshot(c, path, now, logger)

	recs, bad, err := replay.ReadFile(path)
	if err != nil || len(bad) > 0 || len(recs) != 1 {
		t.Fatalf("snapshot holds %d records (%v, %v), want the live one", len(recs), bad, err)
	}
	if r := recs[0]; r.Key != "live" || r.Namespace != "k:aa" || r.Model != "m" || !r.RecordedAt.Equal(stored) || r.TTL != 3600 ||
		string(r.Completion) != testCompletion {
		t.Errorf("record %+v", r)
	}

	now = now.Add(5 * time.Minute) // a restart later
	c2 := snapCache(t, &now)
	if err := loadSnapshot(c2, path, now, logger); err != nil {
		t.Fatal(err)
	}
	e, ok := c2.Get("live")
	if !ok || !e.Stored.Equal(stored) || !e.Expires.Equal(stored.Add(time.Hour)) || e.PromptTokens != 3 || e.Namespace != "k:aa" {
		t.Fatalf("loaded entry %v %+v: want stored %v, expiring %v", ok, e, stored, stored.Add(time.Hour))
	}
	if age := now.Sub(e.Stored); age != 17*time.Minute {
		t.Errorf("age %v after the restart, want 17m (10m before the snapshot, 2m, then 5m)", age)
	}
}

// TestSnapshotDamaged: a snapshot cut short or with a corrupt line is loaded as far as it
// reads, the bad lines logged; a missing one is a cold start; a directory that does not exist
// fails at start, not at shutdown.
func TestSnapshotDamaged(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	path := filepath.Join(dir, "snap.jsonl")
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	if err := loadSnapshot(snapCache(t, &now), path, now, logger); err != nil || !strings.Contains(logs.String(), "no snapshot yet") {
		t.Fatalf("missing snapshot: %v, logs %s", err, logs.String())
	}

	c := snapCache(t, &now)
	for _, k := range []string{"a", "b", "c"} {
		c.Set(&cache.Entry{Key: k, Namespace: "k:aa", Body: []byte(testCompletion), Stored: now, Expires: now.Add(time.Hour)})
	}
	writeSnapshot(c, path, now, logger)
	raw, err := os.ReadFile(path)
	if err != nil || bytes.Count(raw, []byte("\n")) != 3 {
		t.Fatalf("snapshot: %q %v", raw, err)
	}
	lines := bytes.SplitAfter(raw, []byte("\n"))
	damaged := append(append([]byte{}, lines[0]...), []byte("\x00\x01 not json\n")...)
	damaged = append(damaged, lines[1][:len(lines[1])/2]...) // cut mid-line, as by a full disk
	if err := os.WriteFile(path, damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	logs.Reset()
	c2 := snapCache(t, &now)
	if err := loadSnapshot(c2, path, now, logger); err != nil {
		t.Fatalf("a damaged snapshot stopped the start: %v", err)
	}
	if n := len(c2.Entries()); n != 1 {
		t.Errorf("loaded %d entries, want the 1 intact line", n)
	}
	for _, want := range []string{"line=2", "line=3", "cut short", "loaded=1"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q: %s", want, logs.String())
		}
	}
	if err := loadSnapshot(c2, filepath.Join(dir, "nope", "snap.jsonl"), now, logger); err == nil ||
		!strings.Contains(err.Error(), "cache.snapshot") {
		t.Errorf("a snapshot in a missing directory: %v, want a start error naming cache.snapshot", err)
	}
}

// TestSnapshotAcrossRestart: zest run from a config with cache.snapshot saves its answers when
// it is stopped, and the next zest serves them as exact hits without calling the upstream. The
// file never holds the client's API key.
func TestSnapshotAcrossRestart(t *testing.T) {
	up, calls := countingUpstream(t)
	snap := filepath.Join(t.TempDir(), "snap.jsonl")
	cfg := writeConfig(t, "listen = \"127.0.0.1:0\"\n[upstream]\nurl = \""+up.URL+"/v1\"\n[semantic]\nenabled = false\n[cache]\nsnapshot = \""+snap+"\"\n")
	serve := func() *http.Response {
		t.Helper()
		ctx, stop := context.WithCancel(context.Background())
		defer stop()
		var out, errb syncBuffer
		done := make(chan int, 1)
		go func() { done <- run(ctx, []string{"-config", cfg}, noEnv, &out, &errb) }()
		addr := waitForAddr(t, &errb)
		resp := postChat(t, addr, `{"model":"m","messages":[{"role":"user","content":"hello"}]}`, "sk-secret-client")
		stop()
		if code := <-done; code != 0 || !strings.Contains(errb.String(), "exact cache saved") {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
		return resp
	}
	before := time.Now()
	if r := serve(); r.Header.Get("X-Cache-Status") != "MISS" {
		t.Fatalf("first run: %v", r.Header)
	}
	raw, _ := os.ReadFile(snap)
	recs, _, _ := replay.ReadFile(snap)
	if len(recs) != 1 || bytes.Contains(raw, []byte("sk-secret-client")) || !strings.HasPrefix(recs[0].Namespace, "k:") ||
		recs[0].RecordedAt.Before(before.Add(-time.Second)) || recs[0].TTL != 3600 {
		t.Fatalf("snapshot: %s", raw)
	}
	r := serve()
	if r.Header.Get("X-Cache-Status") != "HIT" || r.Header.Get("X-Cache-Type") != "exact" || r.Header.Get("X-Cache-Key") != recs[0].Key ||
		r.Header.Get("Age") == "" {
		t.Errorf("after the restart: %v", r.Header)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("upstream calls = %d, want 1", n)
	}
}
