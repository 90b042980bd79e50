package semantic

import (
	"context"
	"math"
	"slices"
	"sync"
	"testing"
)

// sharedLocal is one decoded local embedder for the package's tests, so the
// table is decoded once, not per test.
var sharedLocal = sync.OnceValues(func() (*Local, error) {
	l, err := NewLocal()
	if err == nil {
		err = l.Load()
	}
	return l, err
})

func newTestLocal(t testing.TB) *Local {
	t.Helper()
	l, err := sharedLocal()
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func embedOne(t testing.TB, e Embedder, text string) []float32 {
	t.Helper()
	v, err := e.Embed(context.Background(), []string{text})
	if err != nil {
		t.Fatal(err)
	}
	return v[0]
}

func TestLocalKnown(t *testing.T) {
	l := newTestLocal(t)
	for _, w := range []string{"the", "python", "dictionary", "mountain", "spain", "france"} {
		if !l.Known(w) {
			t.Errorf("Known(%q) = false, want true", w)
		}
	}
	for _, w := range []string{"zzqxjv", "Python", "", "gpt-4"} {
		if l.Known(w) {
			t.Errorf("Known(%q) = true, want false", w)
		}
	}
}

func TestLocalEmbed(t *testing.T) {
	l := newTestLocal(t)
	ctx := context.Background()
	vecs, err := l.Embed(ctx, []string{"How do I sort a list in Python?", "", "zzqxjv qqvxz"})
	if err != nil {
		t.Fatal(err)
	}
	if len(vecs) != 3 || len(vecs[0]) != l.Dim() {
		t.Fatalf("got %d vectors of %d dims", len(vecs), len(vecs[0]))
	}
	if n := math.Sqrt(float64(dot32(vecs[0], vecs[0]))); math.Abs(n-1) > 1e-5 {
		t.Errorf("norm = %v, want 1", n)
	}
	for i, v := range vecs[1:] {
		if slices.ContainsFunc(v, func(x float32) bool { return x != 0 }) {
			t.Errorf("text %d has no known word but embeds to a non-zero vector", i+1)
		}
	}

	t.Run("deterministic, case and unknown words ignored", func(t *testing.T) {
		a := embedOne(t, l, "How do I sort a list in Python?")
		b := embedOne(t, l, "how DO i sort a list in python zzqxjv")
		if !slices.Equal(a, b) || !slices.Equal(a, vecs[0]) {
			t.Error("same known words embed differently")
		}
	})

	t.Run("related closer than unrelated", func(t *testing.T) {
		q := embedOne(t, l, "How do I sort a list in Python?")
		near := embedOne(t, l, "What is the way to order a Python list?")
		far := embedOne(t, l, "What is the capital city of France?")
		if dot32(q, near) <= dot32(q, far) {
			t.Errorf("paraphrase similarity %.3f <= unrelated %.3f", dot32(q, near), dot32(q, far))
		}
	})

	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := l.Embed(ctx, []string{"hello"}); err == nil {
			t.Error("Embed with a cancelled context succeeded")
		}
	})
}

func TestLocalConcurrentFirstUse(t *testing.T) {
	l, err := NewLocal() // not yet decoded: every goroutine races to load it
	if err != nil {
		t.Fatal(err)
	}
	want := embedOne(t, newTestLocal(t), "concurrent first use")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			v, err := l.Embed(context.Background(), []string{"concurrent first use"})
			if err != nil || !slices.Equal(v[0], want) {
				t.Errorf("concurrent Embed = %v, %v", v, err)
			}
			l.Known("python")
		})
	}
	wg.Wait()
}
