package redisx_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/zest-proxy/zest/internal/redisx"
	"github.com/zest-proxy/zest/internal/redisx/redistest"
)

func TestNewURLForms(t *testing.T) {
	tests := []struct {
		name, url string
		want      string // client type, or "error"
	}{
		{"single", "redis://127.0.0.1:6379/2", "*redis.Client"},
		{"tls", "rediss://user:secret@example.com:6380", "*redis.Client"},
		{"sentinel", "redis://s1:26379?master_name=mymaster&addr=s2:26379", "*redis.Client"},
		{"cluster", "redis://n1:7000?addr=n2:7000&addr=n3:7000", "*redis.ClusterClient"},
		{"cluster forced", "redis://n1:7000?cluster=true", "*redis.ClusterClient"},
		{"bad scheme", "http://:secret@host:1", "error"},
		{"unknown param", "redis://:hunter2@host:1?bogus=1", "error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := redisx.New(redisx.Options{URL: tt.url})
			if tt.want == "error" {
				if err == nil {
					t.Fatal("New succeeded, want an error")
				}
				if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "secret") {
					t.Fatalf("error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer c.Close()
			if got := typeName(c.R); got != tt.want {
				t.Fatalf("client is %s, want %s", got, tt.want)
			}
		})
	}
}

func typeName(c redis.UniversalClient) string {
	switch c.(type) {
	case *redis.Client:
		return "*redis.Client"
	case *redis.ClusterClient:
		return "*redis.ClusterClient"
	}
	return "other"
}

func TestKeyNames(t *testing.T) {
	c, err := redisx.New(redisx.Options{URL: "redis://127.0.0.1:1", Prefix: "p"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, want := c.Key("x", redisx.Tag("ab")), "p:x:{ab}"; got != want {
		t.Fatalf("Key = %q, want %q", got, want)
	}
	if h := redisx.Hash("u:alice"); len(h) != 32 || strings.Contains(h, "alice") {
		t.Fatalf("Hash = %q", h)
	}
	if _, err := redisx.New(redisx.Options{URL: "redis://h:1", Prefix: "a{b"}); err == nil {
		t.Fatal("a prefix with a brace was accepted")
	}
}

// TestBreaker cuts Redis: calls fail, the breaker refuses calls until RetryAfter passes, and
// the first call after Redis is back closes it again.
func TestBreaker(t *testing.T) {
	addr := redistest.Addr(t)
	px := redistest.NewProxy(t, addr)
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	c := redistest.Client(t, px.Addr(), redistest.Prefix(t), func(o *redisx.Options) {
		o.RetryAfter = time.Minute
		o.Now = clock
	})
	ctx := context.Background()
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	px.Cut()
	if err := c.Ping(ctx); err == nil {
		t.Fatal("Ping through a cut proxy succeeded")
	}
	h := c.Health()
	if h.Up || h.Errors != 1 || h.LastError == "" {
		t.Fatalf("after a failure: %+v", h)
	}
	px.Restore()
	if err := c.Ping(ctx); !errors.Is(err, redisx.ErrUnavailable) {
		t.Fatalf("Ping with the breaker open = %v, want ErrUnavailable", err)
	}
	now = now.Add(time.Minute)
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping after RetryAfter: %v", err)
	}
	if h := c.Health(); !h.Up || h.Skipped != 1 || h.Errors != 1 {
		t.Fatalf("after recovery: %+v", h)
	}
	// A missing key and a reply error do not open the breaker.
	c.Do(ctx, func(ctx context.Context) error { return c.R.Get(ctx, c.Key("missing")).Err() })
	c.Do(ctx, func(ctx context.Context) error { return c.R.Do(ctx, "NOSUCHCOMMAND").Err() })
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping after a reply error: %v", err)
	}
}
