// Package redistest helps tests use the real Redis named by the ZEST_TEST_REDIS environment
// variable (host:port): each test gets its own key prefix, whose keys are deleted when the test
// ends, so parallel runs never collide. Tests skip, saying why, when the variable is unset.
// It also offers a TCP proxy that a test can cut and restore, to play a Redis outage.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zest-proxy/zest/internal/redisx"
)

// Env is the environment variable naming the test Redis.
const Env = "ZEST_TEST_REDIS"

// Addr returns the test Redis address, or skips the test when Env is unset.
func Addr(t testing.TB) string {
	t.Helper()
	a := os.Getenv(Env)
	if a == "" {
		t.Skip(Env + " is unset: skipping a test that needs a real Redis (set it to host:port, e.g. 127.0.0.1:6379)")
	}
	return strings.TrimPrefix(a, "redis://")
}

// Prefix returns a key prefix unique to this test run and deletes every key under it when
// the test ends.
func Prefix(t testing.TB) string {
	t.Helper()
	addr := Addr(t)
	var b [4]byte
	rand.Read(b[:])
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, t.Name())
	p := "zt-" + name + "-" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		c := Client(t, addr, p, nil)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := c.R.Scan(ctx, 0, p+":*", 1000).Iterator()
		for iter.Next(ctx) {
			c.R.Del(ctx, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Logf("redistest: cleaning %s: %v", p, err)
		}
	})
	return p
}

// Client returns a client of addr with prefix, a generous timeout (5s: the suite runs on busy
// machines, and a spurious timeout would send a call to its local fallback) and a short
// breaker (20ms); tweak may change the options. The client is closed when the test ends.
func Client(t testing.TB, addr, prefix string, tweak func(*redisx.Options)) *redisx.Client {
	t.Helper()
	o := redisx.Options{URL: "redis://" + addr, Prefix: prefix, Timeout: 5 * time.Second, RetryAfter: 20 * time.Millisecond}
	if tweak != nil {
		tweak(&o)
	}
	c, err := redisx.New(o)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// New returns a client of the test Redis under a fresh prefix.
func New(t testing.TB) *redisx.Client {
	t.Helper()
	return Client(t, Addr(t), Prefix(t), nil)
}

// Proxy is a TCP proxy in front of a Redis that a test can cut (every connection closed, new
// ones refused at once) and restore, on the same address.
type Proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

// NewProxy listens on a loopback port and forwards to target until the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: proxy: %v", err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// Addr is the proxy's address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every connection and refuses new ones until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Restore forwards new connections again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		cut := p.cut
		p.mu.Unlock()
		if cut {
			c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			up.Close()
			continue
		}
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	io.Copy(dst, src) // ends when either side closes, or on a cut
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}
