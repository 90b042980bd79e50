package ratelimit

import (
	"strings"
	"sync"

	"github.com/tiktoken-go/tokenizer"
)

// Chat framing overhead as OpenAI counts it: each message costs its content
// plus about 4 tokens (start, role, separator, end), and every reply is
// primed with 3 more.
const (
	tokensPerMessage = 4
	tokensPerReply   = 3
)

// The codecs are built on first use only (building o200k's vocabulary takes
// tens of milliseconds and tens of MB), once per process, and are read-only
// afterwards.
var (
	cl100k = sync.OnceValue(func() tokenizer.Codec { return loadCodec(tokenizer.Cl100kBase) })
	o200k  = sync.OnceValue(func() tokenizer.Codec { return loadCodec(tokenizer.O200kBase) })
)

func loadCodec(e tokenizer.Encoding) tokenizer.Codec {
	c, err := tokenizer.Get(e)
	if err != nil {
		return nil // countText falls back to a byte heuristic
	}
	return c
}

// EstimateTokens returns an offline estimate of the tokens a chat request
// will consume: each text (one per message) counted with the model's
// encoding plus OpenAI's per-message framing, plus maxOutput (the request's
// max_completion_tokens or max_tokens, or the caller's configured default;
// negative counts as 0). The encoding is o200k_base for gpt-4o, gpt-4.1,
// gpt-4.5, gpt-5, gpt-oss and the o-series (o1, o3, o4...), and cl100k_base
// for gpt-4, gpt-3.5 and any unknown model. A provider prefix such as
// "openai/" and a fine-tune prefix "ft:" are ignored.
// The result saturates at MaxEstimate.
func EstimateTokens(model string, texts []string, maxOutput int) int {
	codec := cl100k
	if usesO200k(model) {
		codec = o200k
	}
	n := tokensPerReply + min(max(maxOutput, 0), MaxEstimate)
	for _, t := range texts {
		n = min(n+tokensPerMessage+countText(codec, t), MaxEstimate)
	}
	return n
}

// MaxEstimate caps token estimates (2^40): far above any real limit, far below overflow.
const MaxEstimate = 1 << 40

// countText counts the tokens of s, or estimates ~4 bytes per token when
// the codec is unavailable or fails.
func countText(codec func() tokenizer.Codec, s string) int {
	if s == "" {
		return 0
	}
	if c := codec(); c != nil {
		if n, err := c.Count(s); err == nil {
			return n
		}
	}
	return (len(s) + 3) / 4
}

// usesO200k reports whether model is tokenized with o200k_base.
func usesO200k(model string) bool {
	m := strings.ToLower(model)
	if i := strings.LastIndexByte(m, '/'); i >= 0 {
		m = m[i+1:]
	}
	m = strings.TrimPrefix(m, "ft:")
	for _, p := range [...]string{"gpt-4o", "chatgpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "gpt-oss"} {
		if strings.HasPrefix(m, p) {
			return true
		}
	}
	return len(m) >= 2 && m[0] == 'o' && m[1] >= '1' && m[1] <= '9'
}
