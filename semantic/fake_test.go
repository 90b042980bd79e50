package semantic

import (
	"context"
	"errors"
	"hash/fnv"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// bagEmbedder is a deterministic fake: a hashed bag of words in 64
// dimensions. Equal word multisets embed identically; every shared word
// raises the similarity. It counts its calls.
type bagEmbedder struct{ calls atomic.Int64 }

const bagDim = 64

func (e *bagEmbedder) Dim() int { return bagDim }
func (e *bagEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	e.calls.Add(1)
	out := make([][]float32, len(texts))
	for i, t := range texts {
		v := make([]float32, bagDim)
		for _, w := range strings.Fields(strings.ToLower(t)) {
			h := fnv.New32a()
			h.Write([]byte(w))
			x := h.Sum32()
			sign := float32(1)
			if x&1<<31 != 0 {
				sign = -1
			}
			v[x%bagDim] += sign
		}
		normalize(v)
		out[i] = v
	}
	return out, nil
}

// vecEmbedder embeds each prompt as the vector it is given in the map; an
// unknown prompt is an error.
type vecEmbedder map[string][]float32

func (e vecEmbedder) Dim() int { return 2 }
func (e vecEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i, t := range texts {
		v, ok := e[t]
		if !ok {
			return nil, errors.New("vecEmbedder: unknown prompt " + t)
		}
		out[i] = append([]float32(nil), v...)
	}
	return out, nil
}

// unit2 is the 2-d unit vector whose cosine with (1, 0) is cos.
func unit2(cos float64) []float32 {
	return []float32{float32(cos), float32(math.Sqrt(1 - cos*cos))}
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// forEachIndex runs f once per index kind: the cache must behave the same
// over both.
func forEachIndex(t *testing.T, f func(t *testing.T, kind IndexKind)) {
	for _, kind := range []IndexKind{IndexFlat, IndexChromem} {
		t.Run(string(kind), func(t *testing.T) { f(t, kind) })
	}
}

func mustNew(t *testing.T, o Options) *Cache {
	t.Helper()
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustStore(t *testing.T, c *Cache, q Query, id, value string, ttl time.Duration) {
	t.Helper()
	if err := c.Store(context.Background(), q, id, []byte(value), ttl); err != nil {
		t.Fatalf("Store(%q): %v", id, err)
	}
}

// lookupID returns the id Lookup finds for q, or "" on a miss.
func lookupID(t *testing.T, c *Cache, q Query) string {
	t.Helper()
	h, ok, err := c.Lookup(context.Background(), q)
	if err != nil {
		t.Fatalf("Lookup(%+v): %v", q, err)
	}
	if !ok {
		return ""
	}
	return h.ID
}
