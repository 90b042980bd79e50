// Package sdk_test drives zest with the official `openai` npm client: sdk.mjs sends each kind of
// chat request (plain, streamed, streamed with include_usage, tool calls, and the SDK's stream
// helpers) twice through an in-process zest in front of the in-process mock upstream, and
// checks that the second answer is a cache HIT equal to the first as the SDK parses it.
//
// It needs Node.js and `npm ci` run in this directory. Without them the test skips, except
// when the CI environment variable is set: then it fails, so CI cannot pass without it.
package sdk_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zest-proxy/zest/bench/mock"
	"github.com/zest-proxy/zest/cache"
	"github.com/zest-proxy/zest/proxy"
)

// caseLine is one line sdk.mjs prints per case.
type caseLine struct {
	Case          string   `json:"case"`
	OK            bool     `json:"ok"`
	Cache         []string `json:"cache"`
	UpstreamForm  string   `json:"upstream_form"`
	UpstreamCalls *int     `json:"upstream_calls"`
	Error         string   `json:"error"`
	Summary       bool     `json:"summary"`
	Cases         int      `json:"cases"`
	Failed        int      `json:"failed"`
}

// minCases is the number of cases sdk.mjs runs today; fewer means cases went missing.
const minCases = 11

func TestOpenAINodeSDK(t *testing.T) {
	node := requireNode(t)

	// The mock's clock moves one second per answer, so an answer generated twice differs in
	// `created` and cannot pass for a cached one.
	var tick atomic.Int64
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	m := mock.New(mock.Options{Now: func() time.Time {
		return base.Add(time.Duration(tick.Add(1)) * time.Second)
	}})
	up := httptest.NewServer(m)
	defer up.Close()

	c, err := cache.New(cache.Options{MaxBytes: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h, err := proxy.New(proxy.Options{Upstream: up.URL + "/v1", Cache: c})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Wait(context.Background()) // runs after zest.Close, before c.Close
	zest := httptest.NewServer(h)
	defer zest.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "sdk.mjs")
	cmd.Env = append(os.Environ(), "ZEST_BASE_URL="+zest.URL+"/v1", "ZEST_MOCK_URL="+up.URL)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	t.Logf("node sdk.mjs stdout:\n%s", stdout.String())
	if stderr.Len() > 0 {
		t.Logf("node sdk.mjs stderr:\n%s", stderr.String())
	}
	if ctx.Err() != nil {
		t.Fatalf("node sdk.mjs did not finish within 60s: %v", runErr)
	}

	var lines []caseLine
	var summary *caseLine
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var l caseLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Errorf("sdk.mjs printed a line that is not JSON: %q", sc.Text())
			continue
		}
		if l.Summary {
			summary = &l
			continue
		}
		lines = append(lines, l)
	}

	wantChat, wantStream := int64(0), int64(0)
	for _, l := range lines {
		t.Run(l.Case, func(t *testing.T) {
			if !l.OK {
				t.Errorf("cache %v: %s", l.Cache, l.Error)
			}
			if l.UpstreamCalls == nil {
				t.Error("sdk.mjs did not report the case's upstream calls")
			}
		})
		switch l.UpstreamForm {
		case "chat":
			wantChat++
		case "chat_stream":
			wantStream++
		}
	}
	if runErr != nil {
		var exit *exec.ExitError
		if !errors.As(runErr, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("node sdk.mjs: %v (stderr above)", runErr)
		}
		t.Errorf("node sdk.mjs exited 1: a case failed")
	}
	if summary == nil {
		t.Fatal("sdk.mjs printed no summary line: it stopped before the end")
	}
	if summary.Cases != len(lines) || len(lines) < minCases {
		t.Fatalf("sdk.mjs ran %d cases (summary says %d), want at least %d", len(lines), summary.Cases, minCases)
	}

	// One upstream call per case, of the form the case's first request asked for.
	st := m.Stats()
	if st.Chat != wantChat || st.ChatStream != wantStream {
		t.Errorf("upstream saw %d plain and %d streamed chat calls, want %d and %d (one per case)",
			st.Chat, st.ChatStream, wantChat, wantStream)
	}
	if st.Errors+st.BadRequests+st.NotFound+st.RateLimited != 0 {
		t.Errorf("upstream answered errors: %+v", st)
	}
}

// requireNode returns the node binary once the openai package is installed here. Without
// either it skips the test, or fails it when the CI environment variable is set.
func requireNode(t *testing.T) string {
	t.Helper()
	missing := func(what string) {
		msg := what + `: run "npm ci" in test/sdk (needs Node.js 20+ and npm) to run the openai SDK test`
		if os.Getenv("CI") != "" {
			t.Fatal(msg + " (CI is set, so this test may not skip)")
		}
		t.Skip(msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node not found on PATH")
	}
	pkg := filepath.Join("node_modules", "openai", "package.json")
	b, err := os.ReadFile(pkg)
	if err != nil {
		missing("the openai package is not installed (" + pkg + ")")
	}
	var v struct {
		Version string `json:"version"`
	}
	_ = json.Unmarshal(b, &v)
	t.Logf("node %s, openai %s", nodeVersion(node), v.Version)
	return node
}

func nodeVersion(node string) string {
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		return "(unknown version)"
	}
	return strings.TrimSpace(string(out))
}
