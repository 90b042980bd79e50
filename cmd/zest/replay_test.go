package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zest-proxy/zest/cache"
	"github.com/zest-proxy/zest/replay"
)

const testCompletion = `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`

func TestReplayConfig(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"[replay]\nmode = \"bogus\"\n", "replay.mode"},
		{"[replay]\nmode = \"record\"\n", "replay.file"},
		{"[replay]\nspeed = -1.0\n", "replay.speed"},
		{"[replay]\nmiss = \"maybe\"\n", "replay.miss"},
		{"[replay]\nfiles = \"x\"\n", `unknown key "replay.files"`},
	} {
		if _, err := loadConfig(writeConfig(t, tc.text)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one naming %s", tc.text, err, tc.want)
		}
	}
	cfg, err := loadConfig(writeConfig(t, "[replay]\nmode = \"replay\"\nfile = \"r.jsonl\"\nspeed = 0.0\nmiss = \"synthetic\"\n[cache]\npreload = \"r.jsonl\"\n"))
	if err != nil || cfg.Replay != (ReplayConfig{Mode: "replay", File: "r.jsonl", Speed: 0, Miss: "synthetic"}) || cfg.Cache.Preload != "r.jsonl" {
		t.Errorf("cfg %+v %v", cfg.Replay, err)
	}
	var out, errb syncBuffer
	if code := run(context.Background(), []string{"-record", "a", "-replay", "b"}, noEnv, &out, &errb); code != 2 ||
		!strings.Contains(errb.String(), "exclude each other") {
		t.Errorf("-record with -replay: exit %d, %q", code, errb.String())
	}
}

// TestPreload: a recording warms the exact cache; each answer keeps what is left of its TTL,
// expired ones are skipped, a cut last line is logged and skipped.
func TestPreload(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "rec.jsonl")
	w, err := replay.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []replay.Record{
		{Key: "live", Namespace: "k:aa", Model: "m", Completion: []byte(testCompletion), RecordedAt: now.Add(-10 * time.Minute), TTL: 3600},
		{Key: "old", Namespace: "k:aa", Completion: []byte(testCompletion), RecordedAt: now.Add(-2 * time.Hour), TTL: 3600},
	} {
		if err := w.Record(&r); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"key":"cut","completion":{"id"`)
	f.Close()

	c, err := cache.New(cache.Options{MaxBytes: 1 << 20, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var logs bytes.Buffer
	if err := preload(c, "cache.preload", path, now, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
		t.Fatal(err)
	}
	e, ok := c.Get("live")
	if !ok || !e.Expires.Equal(now.Add(50*time.Minute)) || string(e.Body) != testCompletion || e.PromptTokens != 3 || e.Namespace != "k:aa" {
		t.Errorf("live entry: %v %+v", ok, e)
	}
	if _, ok := c.Get("old"); ok {
		t.Error("an expired answer was preloaded")
	}
	if !strings.Contains(logs.String(), "line=3") || !strings.Contains(logs.String(), "loaded=1 expired=1") {
		t.Errorf("logs: %s", logs.String())
	}
}

// countingUpstream answers every request with testCompletion and counts the calls.
func countingUpstream(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	calls := new(atomic.Int64)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, testCompletion)
	}))
	t.Cleanup(up.Close)
	return up, calls
}

// TestRecordRestartReplay: zest built from config records a streamed answer through a real
// upstream; a second zest built with replay mode answers it from the file without calling the
// upstream, and one built with cache.preload serves it as an exact hit.
func TestRecordRestartReplay(t *testing.T) {
	up, calls := countingUpstream(t)
	path := filepath.Join(t.TempDir(), "rec.jsonl")
	logger := slog.New(slog.DiscardHandler)
	serve := func(mut func(*Config)) *http.Response {
		t.Helper()
		cfg := defaultConfig()
		cfg.Upstream.URL = up.URL + "/v1"
		cfg.Semantic.Enabled = false
		mut(&cfg)
		a, err := build(context.Background(), cfg, noEnv, logger)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(a.handler)
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions",
			strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"hello"}]}`))
		req.Header.Set("Authorization", "Bearer sk-secret-client")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		srv.Close()
		a.wait(context.Background())
		a.close()
		return resp
	}
	if r := serve(func(c *Config) { c.Replay = ReplayConfig{Mode: "record", File: path, Speed: 1, Miss: "error"} }); r.StatusCode != 200 {
		t.Fatalf("record: %d", r.StatusCode)
	}
	raw, _ := os.ReadFile(path)
	if bytes.Count(raw, []byte("\n")) != 1 || bytes.Contains(raw, []byte("sk-secret-client")) {
		t.Fatalf("recording: %s", raw)
	}
	r := serve(func(c *Config) { c.Replay = ReplayConfig{Mode: "replay", File: path, Speed: 0, Miss: "error"} })
	body, _ := io.ReadAll(r.Body)
	if r.StatusCode != 200 || r.Header.Get("X-Cache-Type") != "replay" || string(body) != testCompletion {
		t.Errorf("replay: %d %v %s", r.StatusCode, r.Header, body)
	}
	r = serve(func(c *Config) { c.Cache.Preload = path })
	if r.StatusCode != 200 || r.Header.Get("X-Cache-Status") != "HIT" || r.Header.Get("X-Cache-Type") != "exact" {
		t.Errorf("preload: %d %v", r.StatusCode, r.Header)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("upstream calls = %d, want 1 (replay and preload must not call it)", n)
	}
}
