package cache

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkKey is a request's key derivation on the hit path: parse and canonicalise the body,
// then hash it with the namespace and target.
func BenchmarkKey(b *testing.B) {
	body := []byte(`{"model":"gpt-4o-mini","temperature":0.2,"messages":[{"role":"system","content":"You are terse."},` +
		`{"role":"user","content":"What is the capital of France? Answer in one word, please."}],"max_tokens":64}`)
	var r Request
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		r.Reset()
		if err := ParseRequest(body, &r); err != nil {
			b.Fatal(err)
		}
		_ = Key("k:0123", "POST https://api.openai.com/v1/chat/completions", r.Canonical)
	}
}

// BenchmarkSetFullWindow is the store of a miss once the window is full: each Set pushes the
// oldest window entry out to ristretto. Its cost must not grow with the number of entries.
func BenchmarkSetFullWindow(b *testing.B) {
	c, err := New(Options{MaxBytes: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	body := make([]byte, 1024)
	exp := time.Now().Add(time.Hour)
	keys := make([]string, 1<<16)
	for i := range keys {
		keys[i] = fmt.Sprint("k", i)
	}
	for _, k := range keys[:1<<15] { // fill the window (4 MiB of ~1.3 KiB entries) and more
		c.Set(&Entry{Key: k, Body: body, Expires: exp})
	}
	c.Wait()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.Set(&Entry{Key: keys[i&(1<<16-1)], Body: body, Expires: exp})
		i++
	}
}
