package strtab

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

func TestTable(t *testing.T) {
	words := []string{"cache", "", "proxy", "cachE", "über", "a"}
	tab, err := New(words)
	if err != nil {
		t.Fatal(err)
	}
	if tab.Len() != len(words) {
		t.Fatalf("Len %d, want %d", tab.Len(), len(words))
	}
	for i, w := range words {
		if got := tab.Name(int32(i)); got != w {
			t.Errorf("Name(%d) = %q, want %q", i, got, w)
		}
	}
	tests := []struct {
		s    string
		id   int32
		want bool
	}{
		{"cache", 0, true},
		{"", 1, true},
		{"proxy", 2, true},
		{"cachE", 3, true},
		{"über", 4, true},
		{"a", 5, true},
		{"caches", -1, false},
		{"b", -1, false},
		{"Cache", -1, false},
	}
	for _, tt := range tests {
		id, ok := tab.ID(tt.s)
		if id != tt.id || ok != tt.want {
			t.Errorf("ID(%q) = %d, %v; want %d, %v", tt.s, id, ok, tt.id, tt.want)
		}
		if id, ok := tab.IDBytes([]byte(tt.s)); id != tt.id || ok != tt.want {
			t.Errorf("IDBytes(%q) = %d, %v; want %d, %v", tt.s, id, ok, tt.id, tt.want)
		}
	}
}

func TestEmpty(t *testing.T) {
	tab, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tab.ID("x"); ok {
		t.Error("an empty table holds x")
	}
	if _, ok := tab.IDBytes(nil); ok {
		t.Error("an empty table holds the empty string")
	}
}

func TestDuplicateIsAnError(t *testing.T) {
	if _, err := New([]string{"cache", "proxy", "cache"}); err == nil || !strings.Contains(err.Error(), `"cache"`) {
		t.Errorf("a string given twice: error %v, want one naming it", err)
	}
}

// TestLikeAMap checks a large table against the map it replaces.
func TestLikeAMap(t *testing.T) {
	var words []string
	m := map[string]int32{}
	for i := range 50000 {
		w := fmt.Sprintf("w%x", i*7919)
		words = append(words, w)
		m[w] = int32(i)
	}
	tab, err := New(words)
	if err != nil {
		t.Fatal(err)
	}
	for w, want := range m {
		if id, ok := tab.ID(w); !ok || id != want {
			t.Fatalf("ID(%q) = %d, %v; want %d", w, id, ok, want)
		}
	}
	for i := range 50000 {
		w := fmt.Sprintf("x%x", i)
		if _, ok := m[w]; ok {
			continue
		}
		if _, ok := tab.ID(w); ok {
			t.Fatalf("ID(%q) found a string never given", w)
		}
	}
}

// TestLookupsDoNotAllocate: the table is read on every prompt the verifier and the embedder
// see.
func TestLookupsDoNotAllocate(t *testing.T) {
	tab, _ := New([]string{"alpha", "beta", strings.Repeat("long", 20)})
	key := []byte(strings.Repeat("long", 20))
	n := testing.AllocsPerRun(100, func() {
		tab.ID("beta")
		tab.ID("gamma")
		tab.IDBytes(key)
		_ = tab.Name(1)
	})
	if n != 0 {
		t.Errorf("%v allocations per lookup round", n)
	}
	runtime.KeepAlive(tab)
}

func FuzzTable(f *testing.F) {
	f.Add("a b c", "b")
	f.Add("x\x00y x", "x")
	f.Fuzz(func(t *testing.T, list, probe string) {
		var words []string
		first := map[string]int32{}
		for _, w := range strings.Split(list, " ") {
			if _, ok := first[w]; !ok {
				first[w] = int32(len(words))
				words = append(words, w)
			}
		}
		tab, err := New(words)
		if err != nil {
			t.Fatal(err)
		}
		for i, w := range words {
			if tab.Name(int32(i)) != w {
				t.Fatalf("Name(%d) = %q, want %q", i, tab.Name(int32(i)), w)
			}
		}
		want, wantOK := first[probe]
		if id, ok := tab.ID(probe); ok != wantOK || (ok && id != want) {
			t.Fatalf("ID(%q) = %d, %v; want %d, %v", probe, id, ok, want, wantOK)
		}
	})
}

func BenchmarkID(b *testing.B) {
	var words []string
	for i := range 65536 {
		words = append(words, fmt.Sprintf("word%d", i))
	}
	tab, _ := New(words)
	m := map[string]int32{}
	for i, w := range words {
		m[w] = int32(i)
	}
	b.Run("strtab", func(b *testing.B) {
		i := 0
		for b.Loop() {
			tab.ID(words[i&65535])
			i += 7
		}
	})
	b.Run("map", func(b *testing.B) {
		i := 0
		for b.Loop() {
			_ = m[words[i&65535]]
			i += 7
		}
	})
}
