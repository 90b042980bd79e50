package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/zest-proxy/zest/bench/mock"
)

const dashToken = "dash-admin-token-for-tests"

// TestDashboardInBrowser runs zest with traffic and drives its dashboard page in Debian's
// headless Chromium over the DevTools protocol: a wrong token is refused and forgotten, the
// right one shows tiles whose numbers are the ones GET /admin/stats reports, the charts are
// drawn, nothing overflows a phone-width window, and screenshots land in the test's temp dir
// (and in the folder $ZEST_DASHBOARD_SCREENSHOTS, when set, for the README).
func TestDashboardInBrowser(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (apt-get install chromium; .ci/run does): skipping the browser test")
	}
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	addr := startDashboardZest(t, ctx)
	sendDashboardTraffic(t, addr)

	dir := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.WindowSize(1400, 1000),
	)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()

	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// The page asks for the token; a wrong one is refused and not kept.
	run("open the page", chromedp.Navigate(addr+"/admin/?refresh=1"), chromedp.WaitVisible(chromedp.CSS("#token")))
	run("wrong token",
		chromedp.SendKeys(chromedp.CSS("#token"), "not-the-token"),
		chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.Poll[chromedp.Void](`document.getElementById("login-error").textContent.includes("refused")`))
	kept := eval[any](t, bctx, `sessionStorage.getItem("zest-admin-token")`)
	boardHidden := eval[bool](t, bctx, `document.getElementById("board").classList.contains("hidden")`)
	if kept != nil || !boardHidden {
		t.Fatalf("after a wrong token: stored %v, board hidden %v", kept, boardHidden)
	}

	// The right token: the page polls and draws, while bursts of traffic come in between its
	// refreshes.
	run("right token",
		chromedp.SendKeys(chromedp.CSS("#token"), dashToken),
		chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.Poll[chromedp.Void](`Number(document.body.dataset.updates || 0) >= 2`))
	for round := range 5 {
		before := eval[int](t, bctx, `Number(document.body.dataset.updates)`)
		sendBurst(t, addr, round)
		run("refresh after a burst", chromedp.Poll[chromedp.Void](fmt.Sprintf(`Number(document.body.dataset.updates) >= %d`, before+1)))
	}
	loc, err := chromedp.Run(bctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(loc, dashToken) {
		t.Fatalf("the token is in the URL: %s", loc)
	}

	stats := compareTiles(t, bctx, addr)
	checkModelTable(t, bctx, stats)

	charts := eval[int](t, bctx, `document.querySelectorAll(".chart .uplot canvas").length`)
	if charts != 9 {
		t.Errorf("%d chart canvases, want 9", charts)
	}
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	saveShot(t, dir, "dashboard.png", png)

	// A phone-width window: one column, nothing wider than the screen.
	run("phone width",
		chromedp.EmulateViewport(390, 844),
		chromedp.Poll[chromedp.Void](`[...document.querySelectorAll(".chart")].every(c =>
			c.clientWidth < 400 && c.querySelector(".uplot").offsetWidth <= c.clientWidth)`))
	if eval[bool](t, bctx, `document.documentElement.scrollWidth > window.innerWidth`) {
		t.Error("the page is wider than a 390px window")
	}
	if png, err = chromedp.Run(bctx, chromedp.FullScreenshot(100)); err != nil {
		t.Fatal(err)
	}
	saveShot(t, dir, "dashboard-phone.png", png)
}

// startDashboardZest runs zest (mock upstream, semantic cache in shadow mode, a small request
// limit, prices, the admin token) until the test ends, and returns its base URL.
func startDashboardZest(t *testing.T, ctx context.Context) string {
	t.Helper()
	up := httptest.NewServer(mock.New(mock.Options{ErrorRate: 0.1, Seed: 7, Latency: 30 * time.Millisecond, TTFT: 10 * time.Millisecond}))
	t.Cleanup(up.Close)
	cfg := writeConfig(t, `
listen = "127.0.0.1:0"
[upstream]
url = "`+up.URL+`/v1"
[semantic]
shadow = true
[ratelimit]
requests_per_minute = 30
[telemetry.prices]
"gpt-4o-mini" = { input = 0.15, output = 0.6 }
"gpt-4o" = { input = 2.5, output = 10 }
`)
	env := func(k string) string {
		if k == "ZEST_ADMIN_TOKEN" {
			return dashToken
		}
		return ""
	}
	zctx, stop := context.WithCancel(ctx)
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(zctx, []string{"-config", cfg}, env, &out, &errb) }()
	t.Cleanup(func() {
		stop()
		if code := <-done; code != 0 {
			t.Errorf("zest exited %d: %s", code, errb.String())
		}
		if strings.Contains(errb.String(), dashToken) {
			t.Error("the admin token reached the log")
		}
	})
	return waitForAddr(t, &errb)
}

// dashboardPrompts are the prompts of the test traffic; the last one is the first one
// reworded, for the semantic cache.
var dashboardPrompts = []string{"Say hi", "What is the capital of France?", "Name three primary colours",
	"Write a haiku about autumn", "Translate good morning to Spanish", "what is the capital of france"}

// sendChat sends one chat completion with a client key and returns its status.
func sendChat(t *testing.T, addr, key, model, prompt string, stream bool) int {
	t.Helper()
	body := fmt.Sprintf(`{"model":%q,"stream":%v,"messages":[{"role":"user","content":%q}]}`, model, stream, prompt)
	return postChat(t, addr, body, key).StatusCode
}

// sendBurst sends round+2 tenants' worth of the prompts (new tenants miss, known ones hit).
func sendBurst(t *testing.T, addr string, round int) {
	t.Helper()
	for k := range round + 2 {
		for i, p := range dashboardPrompts {
			model := []string{"gpt-4o-mini", "gpt-4o"}[i%2]
			sendChat(t, addr, fmt.Sprint("sk-tenant-", k), model, p, (i+k)%3 == 0)
		}
	}
}

// sendDashboardTraffic sends a bounded mix: misses, exact hits, streams, a paraphrase for the
// shadow semantic cache, and more requests than the limit admits (429s).
func sendDashboardTraffic(t *testing.T, addr string) {
	t.Helper()
	for round := range 3 {
		for i, p := range dashboardPrompts {
			model := []string{"gpt-4o-mini", "gpt-4o"}[i%2]
			sendChat(t, addr, "sk-dashboard", model, p, round == 2 && i == 0)
		}
	}
	rejected := 0
	for range 20 {
		if sendChat(t, addr, "sk-dashboard", "gpt-4o-mini", "Say hi", false) == http.StatusTooManyRequests {
			rejected++
		}
	}
	if rejected == 0 {
		t.Fatal("no request was rate limited")
	}
}

// tile is what the page shows for one [data-stat] element.
type tile struct {
	Stat, Fmt, Raw, Raw2, Text string
}

// compareTiles waits for a page refresh that began after a GET /admin/stats of the test's own
// (no traffic runs meanwhile) and checks that every tile shows that reading's number. The
// store of the last answer may land between two readings, so a mismatch is retried on the
// next refresh until the context's deadline.
func compareTiles(t *testing.T, bctx context.Context, addr string) map[string]any {
	t.Helper()
	var lastErr string
	for attempt := 0; ; attempt++ {
		if bctx.Err() != nil || attempt == 20 {
			t.Fatalf("the page never showed /admin/stats' numbers: %s", lastErr)
		}
		before := eval[int](t, bctx, `Number(document.body.dataset.updates)`)
		stats := adminStats(t, addr)
		if err := chromedp.Do(bctx, chromedp.Poll[chromedp.Void](fmt.Sprintf(`Number(document.body.dataset.updates) >= %d`, before+2))); err != nil {
			t.Fatal(err)
		}
		tiles := eval[[]tile](t, bctx, `[...document.querySelectorAll("[data-stat]")].map(e => ({stat: e.dataset.stat,
			fmt: e.dataset.fmt || "", raw: e.dataset.raw, raw2: e.dataset.raw2 || "", text: e.textContent}))`)
		if len(tiles) < 20 {
			t.Fatalf("%d tiles on the page", len(tiles))
		}
		if lastErr = tileMismatch(tiles, stats); lastErr == "" {
			m := stats["metrics"].(map[string]any)
			req := m["requests"].(map[string]any)
			if req["exact_hit"].(float64) == 0 || req["rate_limited"].(float64) == 0 || req["miss"].(float64) == 0 {
				t.Errorf("the traffic made no hit, miss or 429: %v", req)
			}
			return stats
		}
	}
}

// tileMismatch returns the first tile that does not show its number in stats, or "".
func tileMismatch(tiles []tile, stats map[string]any) string {
	for _, tl := range tiles {
		v := lookup(stats, tl.Stat)
		if v == nil {
			return tl.Stat + ": not in /admin/stats"
		}
		var want, want2 float64
		switch tl.Fmt {
		case "clock": // uptime moves on between two readings
			continue
		case "text":
			if tl.Raw != fmt.Sprint(v) {
				return fmt.Sprintf("%s: page %q, stats %q", tl.Stat, tl.Raw, v)
			}
			continue
		case "sum":
			for _, x := range v.(map[string]any) {
				want += x.(float64)
			}
		case "tokens":
			o := v.(map[string]any)
			want = o["input_tokens"].(float64) + o["output_tokens"].(float64)
		case "p50p99":
			o := v.(map[string]any)
			want, want2 = o["p50_seconds"].(float64), o["p99_seconds"].(float64)
		case "bytes":
			o := v.(map[string]any)
			want, want2 = o["bytes"].(float64), o["max_bytes"].(float64)
		case "entries":
			o := v.(map[string]any)
			want, want2 = o["entries"].(float64), o["max_entries"].(float64)
		default:
			want = v.(float64)
		}
		got, err := strconv.ParseFloat(tl.Raw, 64)
		if err != nil || got != want {
			return fmt.Sprintf("%s: page %q, stats %v", tl.Stat, tl.Raw, want)
		}
		if tl.Raw2 != "" {
			if got2, _ := strconv.ParseFloat(tl.Raw2, 64); got2 != want2 {
				return fmt.Sprintf("%s: page %q (second number), stats %v", tl.Stat, tl.Raw2, want2)
			}
		}
		var text string
		switch tl.Fmt {
		case "", "sum", "tokens":
			text = strconv.Itoa(int(math.Round(want)))
		case "usd":
			text = fmt.Sprintf("$%.4f", want)
		case "pct":
			text = fmt.Sprintf("%.1f%%", want*100)
		default:
			continue
		}
		if tl.Text != text {
			return fmt.Sprintf("%s: page shows %q, want %q", tl.Stat, tl.Text, text)
		}
	}
	return ""
}

// checkModelTable: the per-model table lists /admin/stats' models in its order.
func checkModelTable(t *testing.T, bctx context.Context, stats map[string]any) {
	t.Helper()
	rows := eval[[][]string](t, bctx, `[...document.querySelectorAll("#models tbody tr")].map(r => [...r.cells].map(c => c.textContent))`)
	models := lookup(stats, "metrics.saved.by_model").([]any)
	if len(rows) != len(models) || len(rows) == 0 {
		t.Fatalf("model table has %d rows, stats %d models", len(rows), len(models))
	}
	for i, m := range models {
		o := m.(map[string]any)
		want := []string{o["model"].(string), strconv.Itoa(int(o["input_tokens"].(float64))),
			strconv.Itoa(int(o["output_tokens"].(float64))), fmt.Sprintf("$%.4f", o["usd"].(float64))}
		if strings.Join(rows[i], "|") != strings.Join(want, "|") {
			t.Errorf("model row %d = %v, want %v", i, rows[i], want)
		}
	}
}

func adminStats(t *testing.T, addr string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, addr+"/admin/stats", nil)
	req.Header.Set("Authorization", "Bearer "+dashToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /admin/stats: %d %v", resp.StatusCode, err)
	}
	return st
}

// lookup follows a dotted path through decoded JSON; nil when absent.
func lookup(v any, path string) any {
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// saveShot writes a screenshot into dir and, when set, into $ZEST_DASHBOARD_SCREENSHOTS.
func saveShot(t *testing.T, dir, name string, png []byte) {
	t.Helper()
	for _, d := range []string{dir, os.Getenv("ZEST_DASHBOARD_SCREENSHOTS")} {
		if d == "" {
			continue
		}
		p := filepath.Join(d, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s (%d bytes)", p, len(png))
	}
}

// eval evaluates a JavaScript expression in the page and decodes its value.
func eval[T any](t *testing.T, bctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(bctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %.60q: %v", expr, err)
	}
	return v
}
