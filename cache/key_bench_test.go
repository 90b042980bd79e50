package cache

import "testing"

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
