package ratelimit

import (
	"strings"
	"sync"
	"testing"
)

func TestEstimateTokens(t *testing.T) {
	tests := []struct {
		name      string
		model     string
		texts     []string
		maxOutput int
		want      int
	}{
		// "hello world" is 2 tokens in cl100k and o200k; +4 framing, +3 reply.
		{"cl100k", "gpt-4", []string{"hello world"}, 0, 9},
		{"unknown model uses cl100k", "llama3:8b", []string{"hello world"}, 0, 9},
		{"output budget added", "gpt-3.5-turbo", []string{"hello world"}, 100, 109},
		{"negative output ignored", "gpt-4", []string{"hello world"}, -5, 9},
		{"o200k", "gpt-4o-mini", []string{"hello world"}, 0, 9},
		{"two messages", "gpt-4", []string{"You are terse.", "hello world"}, 0, 3 + 4 + 4 + 4 + 2},
		{"no messages", "gpt-4", nil, 16, 19},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EstimateTokens(tt.model, tt.texts, tt.maxOutput); got != tt.want {
				t.Fatalf("EstimateTokens = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestEstimateTokensLongTextInSaneRange(t *testing.T) {
	// 1000 common English words: between 1 and 1.5 tokens a word.
	text := strings.Repeat("the quick brown fox jumps over the lazy dog again ", 100)
	for _, model := range []string{"gpt-4", "gpt-4o"} {
		n := EstimateTokens(model, []string{text}, 0) - 7
		if n < 1000 || n > 1500 {
			t.Fatalf("%s: %d tokens for 1000 words", model, n)
		}
	}
}

func TestEstimateTokensConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if got := EstimateTokens("gpt-4", []string{"hello world"}, 0); got != 9 {
				t.Errorf("concurrent EstimateTokens = %d, want 9", got)
			}
		})
	}
	wg.Wait()
}

func TestUsesO200k(t *testing.T) {
	tests := map[string]bool{
		"gpt-4o": true, "gpt-4o-2024-08-06": true, "GPT-4.1-mini": true, "gpt-5": true,
		"gpt-5-nano": true, "o1": true, "o3-mini": true, "o4-mini": true, "openai/gpt-4o": true,
		"chatgpt-4o-latest": true, "ft:gpt-4o-mini:org::id": true, "gpt-oss-120b": true,
		"gpt-4": false, "gpt-4-turbo": false, "gpt-3.5-turbo": false, "llama3": false,
		"mistral-large": false, "omni": false, "": false,
	}
	for model, want := range tests {
		t.Run(model, func(t *testing.T) {
			if got := usesO200k(model); got != want {
				t.Fatalf("usesO200k(%q) = %v, want %v", model, got, want)
			}
		})
	}
}
