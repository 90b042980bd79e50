package ratelimit

import (
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
)

// warmIdentities returns n identities that already hold a bucket in l.
func warmIdentities(l *Limiter, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "sha256:" + strconv.Itoa(i*7919)
		_, tk := l.Admit(ids[i], 1)
		tk.Done(1, true)
	}
	return ids
}

// BenchmarkAdmitParallel measures one check (Admit and its Done) from all
// cores over a warm set of 10k identities, each request admitted.
// Goal: under 1µs and 0 allocs/op.
func BenchmarkAdmitParallel(b *testing.B) {
	l, err := New(Options{Default: Limits{RequestsPerMinute: maxUnits, TokensPerMinute: maxUnits, MaxConcurrent: 100}})
	if err != nil {
		b.Fatal(err)
	}
	ids := warmIdentities(l, 10_000)
	var next atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(7_777))
		for pb.Next() {
			i++
			d, tk := l.Admit(ids[i%len(ids)], 300)
			if !d.Allowed {
				b.Error("rejected")
			}
			tk.Done(250, true)
		}
	})
}

// BenchmarkAdmitRejectedParallel measures the rejection path: every
// identity's request bucket is empty.
func BenchmarkAdmitRejectedParallel(b *testing.B) {
	l, err := New(Options{Default: Limits{RequestsPerMinute: 1, TokensPerMinute: 1000}})
	if err != nil {
		b.Fatal(err)
	}
	ids := warmIdentities(l, 10_000)
	var next atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(7_777))
		for pb.Next() {
			i++
			if d, _ := l.Admit(ids[i%len(ids)], 300); d.Allowed {
				b.Error("admitted")
			}
		}
	})
}

// BenchmarkMemoryPerIdentity fills a limiter with one million identities
// and reports the heap it holds per identity. Run with -benchtime=1x.
func BenchmarkMemoryPerIdentity(b *testing.B) {
	const n = 1_000_000
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		l, err := New(Options{Default: Limits{RequestsPerMinute: 60, TokensPerMinute: 100_000, MaxConcurrent: 4}})
		if err != nil {
			b.Fatal(err)
		}
		var buf []byte
		for i := range n {
			buf = strconv.AppendInt(append(buf[:0], "sha256:"...), int64(i), 16)
			_, tk := l.Admit(string(buf), 500)
			tk.Done(400, true)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if l.Len() != n {
			b.Fatalf("Len() = %d, want %d", l.Len(), n)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/identity")
		runtime.KeepAlive(l)
	}
}
