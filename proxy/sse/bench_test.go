package sse

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

const benchHeader = `"id":"chatcmpl-BxT2f9KqLm0","object":"chat.completion.chunk","created":1753958400,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_34a54ae93c"`

// benchStream returns an OpenAI-shaped stream of n chunks: a role chunk,
// n-3 one-token content chunks, a finish chunk and an include_usage chunk,
// as separate events (one upstream read each).
func benchStream(n int) [][]byte {
	words := strings.Fields("the quick brown fox jumps over the lazy dog while a cache answers repeated questions")
	var evs [][]byte
	add := func(s string) { evs = append(evs, []byte("data: {"+benchHeader+","+s+"}\n\n")) }
	add(`"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null`)
	for i := 0; i < n-3; i++ {
		add(fmt.Sprintf(`"choices":[{"index":0,"delta":{"content":" %s"},"logprobs":null,"finish_reason":null}],"usage":null`, words[i%len(words)]))
	}
	add(`"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null`)
	add(`"choices":[],"usage":{"prompt_tokens":31,"completion_tokens":97,"total_tokens":128,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`)
	evs = append(evs, []byte("data: [DONE]\n\n"))
	return evs
}

func BenchmarkAssembler100Chunks(b *testing.B) {
	evs := benchStream(100)
	size := 0
	for _, e := range evs {
		size += len(e)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		a := NewAssembler()
		for _, e := range evs {
			a.Write(e)
		}
		if _, err := a.Complete(); err != nil {
			b.Fatal(err)
		}
	}
}

// benchCompletion is a ~700-byte stored chat.completion (compact).
var benchCompletion = []byte(`{"id":"chatcmpl-C3hQ1nY7rW2","object":"chat.completion","created":1753958500,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"A cache stores answers so that repeated questions are served quickly. For a chat API this means hashing the request body, looking the hash up before calling the model, and on a miss calling the model and storing the clean answer.\n\nStreaming answers are assembled first, then stored, so one entry serves both streaming and non-streaming clients.","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":31,"completion_tokens":66,"total_tokens":97,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0}},"service_tier":"default","system_fingerprint":"fp_07871e2ad8"}`)

func BenchmarkAppendReplay(b *testing.B) {
	for _, tc := range []struct {
		name  string
		reuse bool
		opts  ReplayOptions
	}{
		{"reused-buffer", true, ReplayOptions{}},
		{"reused-buffer/include_usage", true, ReplayOptions{IncludeUsage: true}},
		{"fresh-buffer", false, ReplayOptions{}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(benchCompletion)))
			b.ReportAllocs()
			var dst []byte
			var err error
			for b.Loop() {
				if !tc.reuse {
					dst = nil
				}
				if dst, err = AppendReplay(dst[:0], benchCompletion, tc.opts); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(strings.Count(string(dst), "\n\n")), "events")
			b.ReportMetric(float64(len(dst)), "out-bytes")
		})
	}
}

func BenchmarkIsUsageOnly(b *testing.B) {
	evs := benchStream(4)
	content, usage := Data(evs[1]), Data(evs[3])
	b.ReportAllocs()
	for b.Loop() {
		if IsUsageOnly(content) || !IsUsageOnly(usage) {
			b.Fatal("wrong answer")
		}
	}
}

// Reference points measured in the same run (machines here are shared, so
// compare ratios): what encoding/json costs for the same inputs.

// BenchmarkRefUnmarshalChunks decodes the same 100 chunk payloads with
// encoding/json into a minimal chunk struct (no assembly, no SSE parsing).
func BenchmarkRefUnmarshalChunks(b *testing.B) {
	evs := benchStream(100)
	type refChunk struct {
		ID      string `json:"id"`
		Choices []struct {
			Index        int             `json:"index"`
			Delta        map[string]any  `json:"delta"`
			FinishReason *string         `json:"finish_reason"`
			Logprobs     json.RawMessage `json:"logprobs"`
		} `json:"choices"`
		Usage json.RawMessage `json:"usage"`
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, e := range evs[:len(evs)-1] {
			var c refChunk
			if err := json.Unmarshal(Data(e), &c); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkRefValidCompletion runs json.Valid over the stored completion.
func BenchmarkRefValidCompletion(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if !json.Valid(benchCompletion) {
			b.Fatal("invalid")
		}
	}
}
