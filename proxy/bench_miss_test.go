package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/zest-proxy/zest/cache"
	"github.com/zest-proxy/zest/internal/cputime"
	"github.com/zest-proxy/zest/semantic"
	"github.com/zest-proxy/zest/semantic/verify"
)

// BenchmarkMissVsReverseProxy compares, in one run, a miss through a bare httputil.ReverseProxy
// (the reference, in its best configuration: shared Transport, a buffer pool), through zest with
// the exact cache only, and through zest with its defaults (exact + semantic with the local
// embedder and verifier). Every iteration is a new prompt (a different number, so the semantic
// cache never matches) to the same loopback upstream. Besides ns/op it reports cpu-ns/op: the
// process's CPU time per request, the in-process upstream's share included (the same for all
// three) and the work zest leaves to background goroutines (it waits for them before reading).
func BenchmarkMissVsReverseProxy(b *testing.B) {
	srv := benchUpstream(b, jsonAnswer(200, completionJSON))
	u, _ := url.Parse(srv.URL)
	tr := NewTransport()
	b.Cleanup(tr.CloseIdleConnections)
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.SetXForwarded() },
		Transport: tr, BufferPool: copyBuffers{}}
	ztr := shippedTransport(b, srv.URL) // zest's own default
	b.Cleanup(ztr.CloseIdleConnections)

	local, err := semantic.NewLocal()
	if err != nil {
		b.Fatal(err)
	}
	v, err := verify.New(verify.Options{})
	if err != nil {
		b.Fatal(err)
	}
	zest := func(withSemantic bool) *Handler {
		c, err := cache.New(cache.Options{MaxBytes: 256 << 20})
		if err != nil {
			b.Fatal(err)
		}
		o := Options{Upstream: srv.URL + "/v1", Cache: c, Transport: ztr}
		if withSemantic {
			s, err := semantic.New(semantic.Options{Embedder: local, Verifier: v, Threshold: 0.5})
			if err != nil {
				b.Fatal(err)
			}
			o.Semantic = s
		}
		h, err := New(o)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { h.Wait(context.Background()); c.Close() })
		return h
	}
	seq := 0
	for _, tc := range []struct {
		name string
		h    http.Handler
		wait func(context.Context) error // background work to count in cpu-ns/op
		cc   string                      // the request's Cache-Control header
	}{
		{"reverseproxy", rp, nil, ""},
		{"zest-bypass", zest(false), nil, "no-cache"},
		{"zest-exact", zest(false), nil, ""},
		{"zest-defaults", zest(true), nil, ""},
	} {
		if z, ok := tc.h.(*Handler); ok {
			tc.wait = z.Wait
		}
		b.Run(tc.name, func(b *testing.B) {
			w := &benchWriter{h: http.Header{}}
			b.ReportAllocs()
			cpu0 := cputime.Process()
			for b.Loop() {
				seq++
				body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"What is ` + strconv.Itoa(seq) + ` times 7?"}]}`
				req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer sk-bench")
				if tc.cc != "" {
					req.Header.Set("Cache-Control", tc.cc)
				}
				w.reset()
				tc.h.ServeHTTP(w, req)
				if w.code != 200 {
					b.Fatalf("status %d", w.code)
				}
			}
			if tc.wait != nil {
				tc.wait(context.Background())
			}
			if cpu := cputime.Process() - cpu0; cpu > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
			}
		})
	}
}

// copyBuffers is the reference proxy's httputil.BufferPool: 32 KiB copy buffers reused.
type copyBuffers struct{}

var copyBufferPool = sync.Pool{New: func() any { return make([]byte, 32<<10) }}

func (copyBuffers) Get() []byte  { return copyBufferPool.Get().([]byte) }
func (copyBuffers) Put(b []byte) { copyBufferPool.Put(b) }
