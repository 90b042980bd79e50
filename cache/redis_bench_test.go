package cache

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/zest-proxy/zest/internal/redisx/redistest"
)

// BenchmarkTierHit compares a hit from the local tier with one from the Redis tier (a local
// miss, GET, inflate, decode, local fill), for a 2 KiB answer.
func BenchmarkTierHit(b *testing.B) {
	rc := redistest.New(b)
	c, err := New(Options{MaxBytes: 64 << 20, Redis: rc})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	now := time.Now()
	body := `{"choices":[{"message":{"content":"` + strings.Repeat("Paris is the capital of France. ", 64) + `"}}]}`
	c.Set(&Entry{Key: "k", Namespace: "ns", Model: "m", Body: []byte(body), Stored: now, Expires: now.Add(time.Hour)})
	c.Wait()
	ctx := context.Background()
	b.Run("local", func(b *testing.B) {
		for b.Loop() {
			if _, ok := c.GetContext(ctx, "k"); !ok {
				b.Fatal("miss")
			}
		}
	})
	b.Run("redis", func(b *testing.B) {
		for b.Loop() {
			if _, ok := c.remote.get(ctx, "k"); !ok {
				b.Fatal("miss")
			}
		}
	})
}
