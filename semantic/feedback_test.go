package semantic

import (
	"context"
	"testing"
	"time"
)

// TestReport checks the feedback path: a reported entry leaves the cache, only its own
// namespace may report it, and the reported (query, stored prompt) pair never matches again,
// even after the stored prompt is stored anew.
func TestReport(t *testing.T) {
	ctx := context.Background()
	c, err := New(Options{Embedder: &bagEmbedder{}, Threshold: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	stored := Query{Namespace: "a", Partition: "p", Prompt: "how do I sort a list in python"}
	asked := Query{Namespace: "a", Partition: "p", Prompt: "how do I sort a python list"}
	other := Query{Namespace: "a", Partition: "p", Prompt: "sort a list in python how"}
	if err := c.Store(ctx, stored, "e1", []byte("x"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := c.Lookup(ctx, asked); !ok {
		t.Fatal("no hit before the report")
	}
	steps := []struct {
		name   string
		ns, id string
		want   bool
	}{
		{"another tenant cannot report", "b", "e1", false},
		{"unknown id", "a", "nope", false},
		{"own tenant reports", "a", "e1", true},
		{"reported twice", "a", "e1", false},
	}
	for _, s := range steps {
		if got := c.Report(ctx, s.ns, s.id); got != s.want {
			t.Errorf("%s: Report(%q, %q) = %v, want %v", s.name, s.ns, s.id, got, s.want)
		}
	}
	if st := c.Stats(); st.Entries != 0 || st.Reports != 1 || st.RefusedPairs != 1 {
		t.Errorf("after the report: %+v", st)
	}
	if err := c.Store(ctx, stored, "e2", []byte("x"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := c.Lookup(ctx, asked); ok {
		t.Error("the reported pair matched again")
	}
	if _, ok, _ := c.Lookup(ctx, other); !ok {
		t.Error("a pair that was never reported stopped matching")
	}
	if st := c.Stats(); st.Refused != 1 {
		t.Errorf("Refused = %d, want 1", st.Refused)
	}
}

// TestRefusalsBounded checks that the refused pairs stay within their bound, oldest forgotten first.
func TestRefusalsBounded(t *testing.T) {
	r := refusals{max: 3}
	keys := make([][32]byte, 5)
	for i := range keys {
		keys[i] = pairKey("ns", string(rune('a'+i)), "stored")
		r.add(keys[i])
	}
	if r.len() != 3 {
		t.Fatalf("len = %d, want 3", r.len())
	}
	for i, k := range keys {
		if want := i >= 2; r.has(k) != want {
			t.Errorf("has(key %d) = %v, want %v", i, r.has(k), want)
		}
	}
}
