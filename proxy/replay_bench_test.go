package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zest-proxy/zest/replay"
)

// pacedStream is an upstream that streams like a model: the first event after a per-prompt
// delay (20 ms plus 4 ms per prompt number, so the workload has a spread of TTFTs), then
// ten content chunks 5 ms apart.
func pacedStream(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	n := 0
	if i := strings.Index(string(body), "prompt "); i >= 0 {
		fmt.Sscanf(string(body[i+len("prompt "):]), "%d", &n)
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(200)
	fl := w.(http.Flusher)
	fl.Flush()
	time.Sleep(time.Duration(20+4*n) * time.Millisecond)
	chunk := func(delta, finish string) {
		fmt.Fprintf(w, `data: {"id":"c%d","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":%s,"finish_reason":%s}]}`+"\n\n", n, delta, finish)
		fl.Flush()
	}
	chunk(`{"role":"assistant","content":""}`, "null")
	for i := range 10 {
		time.Sleep(5 * time.Millisecond)
		chunk(fmt.Sprintf(`{"content":"word%d "}`, i), "null")
	}
	chunk(`{}`, `"stop"`)
	io.WriteString(w, "data: [DONE]\n\n")
}

// BenchmarkReplayTTFT records a streamed workload of 20 prompts at concurrency 2, then
// replays it at 100x that concurrency (200 clients at once per iteration) at speed 1, and
// reports the recorded and the achieved time to first token (p50/p95/p99, ms). The replay must
// not be faster than the recording (that would mean pacing is lost); slower is what a busy
// machine gives and is only reported.
//
//	go test -run '^$' -bench ReplayTTFT -benchtime 5x ./proxy
func BenchmarkReplayTTFT(b *testing.B) {
	const prompts, recordConc, factor = 20, 2, 100
	bodies := make([]string, prompts)
	for i := range bodies {
		bodies[i] = `{"model":"m","stream":true,"messages":[{"role":"user","content":"prompt ` + fmt.Sprint(i) + `"}]}`
	}
	up := newUpstream(b, pacedStream)
	path := filepath.Join(b.TempDir(), "rec.jsonl")
	// Record at concurrency 2.
	var recs []replay.Record
	{
		w, err := replay.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		e := newEnv(b, up, func(o *Options) { o.Recorder = w; o.Now = time.Now })
		var wg sync.WaitGroup
		for c := range recordConc {
			wg.Go(func() {
				for i := c; i < prompts; i += recordConc {
					e.chat(bodies[i])
				}
			})
		}
		wg.Wait()
		e.h.Wait(b.Context())
		w.Close()
		var bad []*replay.LineError
		recs, bad, err = replay.ReadFile(path)
		if err != nil || len(bad) > 0 || len(recs) != prompts {
			b.Fatalf("recording: %d records, %v %v", len(recs), bad, err)
		}
	}
	recorded := make([]float64, len(recs))
	for i, r := range recs {
		recorded[i] = r.TTFT
	}
	calls := up.count()

	e := newEnv(b, up, func(o *Options) {
		o.Now = time.Now
		o.Replay = &ReplayOptions{Book: replay.NewBook(recs), Speed: 1}
	})
	e.client.Transport.(*http.Transport).MaxIdleConnsPerHost = recordConc * factor
	var mu sync.Mutex
	var achieved []float64
	wave := func() {
		var wg sync.WaitGroup
		for c := range recordConc * factor {
			wg.Go(func() {
				ttft, err := firstEvent(e, bodies[c%prompts])
				if err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				achieved = append(achieved, float64(ttft)/1e6)
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	wave() // open the 200 connections first: a load test's clients keep theirs
	achieved = achieved[:0]
	for b.Loop() {
		wave()
	}
	b.StopTimer()
	if up.count() != calls {
		b.Errorf("the upstream was called in replay")
	}
	// Every prompt is replayed equally often, so the recorded distribution weighs alike.
	rp, ap := pcts(recorded), pcts(achieved)
	for i, q := range []string{"p50", "p95", "p99"} {
		b.ReportMetric(rp[i], "rec-ttft-"+q+"-ms")
		b.ReportMetric(ap[i], "ttft-"+q+"-ms")
	}
	if ap[0] < rp[0]*0.9 {
		b.Errorf("replayed TTFT p50 %.1f ms is below the recorded %.1f ms: pacing lost", ap[0], rp[0])
	}
}

// firstEvent sends body to zest and returns the time until the first SSE event arrives,
// reading the rest of the stream.
func firstEvent(e *env, body string) (time.Duration, error) {
	start := time.Now()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer sk-client-one")
	resp, err := e.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "data:") {
		return 0, fmt.Errorf("first line %q: %v", line, err)
	}
	ttft := time.Since(start)
	io.Copy(io.Discard, br)
	return ttft, nil
}

// pcts returns the 50th, 95th and 99th percentiles of v (nearest rank).
func pcts(v []float64) [3]float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	var out [3]float64
	for i, q := range []float64{0.50, 0.95, 0.99} {
		k := int(q*float64(len(s))+0.5) - 1
		out[i] = s[max(0, min(k, len(s)-1))]
	}
	return out
}
