// Command memory measures zest's memory against its configured budget: it builds zest, starts
// it against an in-process upstream that answers with large distinct answers, and reports the
// zest process's peak and final RSS.
//
//	go run ./bench/memory                      # the defaults below (about 2 minutes)
//	go run ./bench/memory -answers 500 -big 0  # a quick look
//
// Phase 1 asks -answers distinct prompts whose answers are -size bytes (half streamed, each asked
// three times: a miss, then two hits) under cache.max_bytes = -budget, semantic cache on.
// Phase 2 starts a fresh zest and streams one answer of -big bytes through it, reporting the RSS
// growth over the idle process.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	answers := flag.Int("answers", 5000, "distinct prompts in phase 1")
	size := flag.Int("size", 200<<10, "bytes of content in each phase-1 answer")
	budget := flag.String("budget", "64MiB", "cache.max_bytes")
	big := flag.Int64("big", 200<<20, "bytes of content in the phase-2 stream (0 skips it)")
	workers := flag.Int("c", 8, "concurrent clients")
	gomemlimit := flag.String("gomemlimit", "", "GOMEMLIMIT for zest (empty: unset)")
	flag.Parse()
	if err := run(*answers, *size, *budget, *big, *workers, *gomemlimit); err != nil {
		fmt.Fprintln(os.Stderr, "memory:", err)
		os.Exit(1)
	}
}

func run(answers, size int, budget string, big int64, workers int, gomemlimit string) error {
	dir, err := os.MkdirTemp("", "zest-memory")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "zest")
	build := exec.Command("go", "build", "-o", bin, "./cmd/zest")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build (run from the repository root): %w", err)
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { answer(w, r, size, big) }))
	defer up.Close()

	fmt.Printf("zest memory, %s: cache.max_bytes = %s, semantic defaults, GOMEMLIMIT=%q\n",
		time.Now().Format(time.DateOnly), budget, gomemlimit)
	z, err := startZest(dir, bin, up.URL+"/v1", budget, gomemlimit)
	if err != nil {
		return err
	}
	idle := z.rss()
	cpu0 := z.cpu()
	start := time.Now()
	var hits, misses, failures int
	var mu sync.Mutex
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				for j := range 3 {
					st, err := z.chat(fmt.Sprintf("Tell me everything about topic number %d.", i), i%2 == 1)
					mu.Lock()
					switch {
					case err != nil:
						failures++
					case st == "HIT":
						hits++
					case j == 0:
						misses++
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range answers {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	fmt.Printf("phase 1: %d answers of %d KiB (half streamed), %d requests in %s: %d misses, %d hits, %d failures\n",
		answers, size>>10, 3*answers, time.Since(start).Round(time.Second), misses, hits, failures)
	fmt.Printf("  RSS idle %s, peak %s, at the end %s; zest CPU %.1f s\n", mib(idle), mib(z.peak()), mib(z.rss()),
		(z.cpu() - cpu0).Seconds())
	if stats, err := z.get("/admin/stats"); err == nil {
		fmt.Printf("  /admin/stats: %s\n", oneLine(stats))
	}
	z.stop()

	if big <= 0 {
		return nil
	}
	z, err = startZest(dir, bin, up.URL+"/v1", budget, gomemlimit)
	if err != nil {
		return err
	}
	defer z.stop()
	z.chat("warm up", false)
	base := z.rss()
	start = time.Now()
	n, err := z.stream(big)
	if err != nil {
		return fmt.Errorf("phase 2: %w", err)
	}
	peak := z.peak()
	fmt.Printf("phase 2: one streamed answer, %d MiB relayed in %s: RSS before %s, peak %s, growth %s\n",
		n>>20, time.Since(start).Round(100*time.Millisecond), mib(base), mib(peak), mib(peak-base))
	return nil
}

// answer is the upstream: a chat.completion or a stream whose content is size bytes derived
// from the prompt; the prompt "big" streams big bytes without holding them.
func answer(w http.ResponseWriter, r *http.Request, size int, big int64) {
	body, _ := io.ReadAll(r.Body)
	stream := strings.Contains(string(body), `"stream":true`)
	n := int64(size)
	if strings.Contains(string(body), `"content":"big"`) {
		n = big
	}
	h := fnv.New64a()
	h.Write(body)
	fill := strconv.FormatUint(h.Sum64(), 36) + strings.Repeat("z", 4096)
	chunk := fill[:4096]
	if !stream {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"m","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"`)
		for left := n; left > 0; left -= 4096 {
			io.WriteString(w, chunk[:min(left, 4096)])
		}
		io.WriteString(w, `"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":1000,"total_tokens":1010}}`)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	bw := bufio.NewWriterSize(w, 64<<10)
	for left := n; left > 0; left -= 4096 {
		fmt.Fprintf(bw, `data: {"id":"m","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"%s"}}]}`+"\n\n", chunk[:min(left, 4096)])
	}
	io.WriteString(bw, `data: {"id":"m","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":1000,"total_tokens":1010}}`+"\n\ndata: [DONE]\n\n")
	bw.Flush()
}

type zest struct {
	cmd    *exec.Cmd
	base   string
	client *http.Client
}

func startZest(dir, bin, upstream, budget, gomemlimit string) (*zest, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := filepath.Join(dir, "config.toml")
	conf := fmt.Sprintf("listen = %q\n[upstream]\nurl = %q\n[cache]\nmax_bytes = %q\n[log]\nlevel = \"warn\"\n", addr, upstream, budget)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-config", cfg)
	cmd.Env = append(os.Environ(), "ZEST_ADMIN_TOKEN=memory-bench")
	if gomemlimit != "" {
		cmd.Env = append(cmd.Env, "GOMEMLIMIT="+gomemlimit)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	z := &zest{cmd: cmd, base: "http://" + addr, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := z.client.Get(z.base + "/healthz"); err == nil {
			resp.Body.Close()
			return z, nil
		}
	}
	z.stop()
	return nil, errors.New("zest did not come up")
}

func (z *zest) stop() {
	z.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { z.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		z.cmd.Process.Kill()
		<-done
	}
}

// chat asks one prompt and reads the whole answer; it returns X-Cache-Status.
func (z *zest) chat(prompt string, stream bool) (string, error) {
	body := fmt.Sprintf(`{"model":"m","stream":%v,"messages":[{"role":"user","content":%q}]}`, stream, prompt)
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, z.base+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer sk-memory")
	req.Header.Set("Content-Type", "application/json")
	resp, err := z.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return "", err
	}
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("status %d", resp.StatusCode)
	}
	return resp.Header.Get("X-Cache-Status"), nil
}

// stream asks for the big streamed answer and returns the bytes read.
func (z *zest) stream(big int64) (int64, error) {
	body := `{"model":"m","stream":true,"messages":[{"role":"user","content":"big"}]}`
	req, _ := http.NewRequest(http.MethodPost, z.base+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer sk-memory")
	resp, err := z.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && n < big {
		err = fmt.Errorf("read %d bytes, want at least %d", n, big)
	}
	return n, err
}

func (z *zest) get(path string) (string, error) {
	req, _ := http.NewRequest(http.MethodGet, z.base+path, nil)
	req.Header.Set("Authorization", "Bearer memory-bench")
	resp, err := z.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// rss and peak read VmRSS and VmHWM (the peak since start) of zest from /proc.
func (z *zest) rss() int64  { return z.status("VmRSS:") }
func (z *zest) peak() int64 { return z.status("VmHWM:") }

func (z *zest) status(field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", z.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// cpu reads the user and system time zest has used from /proc (clock ticks of 10 ms, the
// Linux default).
func (z *zest) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", z.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses: state is the first, utime the 12th.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 600 {
		s = s[:600] + "..."
	}
	return s
}
