package proxy

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"

	"github.com/zest-proxy/zest/semantic"
)

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestMemoryWithinBudget fills the exact and semantic caches far past their budgets with large
// answers, plain and streamed (each hit twice, so stream renderings are built), and checks that
// the bytes each cache accounts stay within its budget and that the live heap grows by no more
// than the two budgets plus a fixed overhead.
func TestMemoryWithinBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("fills caches with ~13 MB of answers; skipped in -short")
	}
	const (
		exactBudget = 4 << 20
		semBudget   = 1 << 20
		overhead    = 16 << 20 // maps, counters, pools, buffers, goroutines, GC slack
		answers     = 100
		answerBytes = 128 << 10
	)
	content := strings.Repeat("y", answerBytes)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if isStreamRequest(body) {
			w.Header().Set("Content-Type", "text/event-stream")
			for i := 0; i < len(content); i += 4 << 10 {
				fmt.Fprintf(w, `data: {"id":"m","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"%s"}}]}`+"\n\n", content[i:i+4<<10])
			}
			fmt.Fprint(w, `data: {"id":"m","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\ndata: [DONE]\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"m","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"%s"},"finish_reason":"stop"}]}`, content)
	})
	x := xNewEnv(t, up, xCfg{semantic: true, cacheBytes: exactBudget,
		semOpts: func(o *semantic.Options) {
			o.MaxBytes = semBudget
			// The fake embedder puts unlisted prompts close together; only the same prompt matches.
			o.Verifier = semantic.VerifierFunc(func(q, s string) bool { return q == s })
		}})
	c := x.cache

	before := liveHeap()
	streamedHits := 0
	for i := range answers {
		extra := ""
		if i%2 == 1 {
			extra = `"stream":true`
		}
		body := xChat(fmt.Sprintf("Tell me about topic %d", i), extra)
		for j := range 3 { // a miss, then two hits
			r := x.chat(body)
			if r.err != nil || r.status != 200 {
				t.Fatalf("answer %d/%d: status %d err %v", i, j, r.status, r.err)
			}
			// Once the budget is full the admission policy may turn a new answer away, so a
			// repeat may miss; the first ask always does.
			switch st := r.header.Get("X-Cache-Status"); {
			case j == 0 && st != "MISS":
				t.Fatalf("answer %d: first ask %s, want MISS", i, st)
			case j > 0 && st == "HIT" && i%2 == 1:
				streamedHits++
			}
		}
	}
	x.h.Wait(t.Context())
	c.Wait()
	after := liveHeap()

	es, ss := c.Stats(), x.sem.Stats()
	t.Logf("exact: %d entries, %d bytes of %d; semantic: %d entries, %d bytes of %d; live heap %d -> %d MiB",
		es.Entries, es.Bytes, es.MaxBytes, ss.Entries, ss.Bytes, ss.MaxBytes, before>>20, after>>20)
	if es.Bytes > exactBudget || ss.Bytes > semBudget {
		t.Errorf("accounted bytes past budget: exact %d/%d, semantic %d/%d", es.Bytes, exactBudget, ss.Bytes, semBudget)
	}
	if streamedHits == 0 {
		t.Error("no streamed hit: no rendering was built")
	}
	if es.Entries == 0 || ss.Entries == 0 {
		t.Errorf("nothing cached: exact %d, semantic %d entries", es.Entries, ss.Entries)
	}
	if grown := int64(after) - int64(before); grown > exactBudget+semBudget+overhead {
		t.Errorf("live heap grew by %d MiB, budgets %d MiB + overhead %d MiB",
			grown>>20, (exactBudget+semBudget)>>20, overhead>>20)
	}
}

// TestSemanticAnswerKeptOnce: the semantic cache keeps no copy of an answer the exact cache
// holds; when the exact cache lets the answer go (evicted, expired), the semantic entry no
// longer answers.
func TestSemanticAnswerKeptOnce(t *testing.T) {
	answer := xCompletion(strings.Repeat("long answer ", 1000), 10, 3000)
	up := newUpstream(t, jsonAnswer(200, answer))
	x := xNewEnv(t, up, xCfg{semantic: true})
	key := x.prime(t, xChat(xPromptA, "")).header.Get("X-Cache-Key")
	if st := x.sem.Stats(); st.Bytes >= int64(len(answer)) {
		t.Errorf("semantic entry charged %d bytes: it holds its own copy of the %d-byte answer", st.Bytes, len(answer))
	}
	wantStatus(t, x.chat(xChat(xPromptA2, "")), 200, "HIT") // served by meaning from the one copy
	x.cache.Delete(key)                                     // as an eviction would
	wantStatus(t, x.chat(xChat(xPromptA2, "")), 200, "MISS")
	wantCalls(t, up, 2)
}
