package ratelimit

import (
	"testing"

	"github.com/zest-proxy/zest/internal/redisx/redistest"
)

// BenchmarkAdmitRedis is the limiter's cost per request in Redis mode: one admission (script)
// and its settlement (script) with a token refund, against the local buckets.
func BenchmarkAdmitRedis(b *testing.B) {
	lim := Limits{RequestsPerMinute: 1_000_000_000, TokensPerMinute: 1_000_000_000, MaxConcurrent: 1000}
	for _, mode := range []string{"local", "redis"} {
		b.Run(mode, func(b *testing.B) {
			opts := Options{Default: lim}
			if mode == "redis" {
				opts.Redis = redistest.New(b)
			}
			l, err := New(opts)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			for b.Loop() {
				d, t := l.Admit("tenant", 500)
				if !d.Allowed {
					b.Fatal("rejected")
				}
				t.Done(300, true)
			}
		})
	}
}
