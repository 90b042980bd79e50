package proxy

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/zest-proxy/zest/cache"
	"github.com/zest-proxy/zest/ratelimit"
)

// chatMessage is the part of a message zest reads: who said it and what.
type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// parseMessages decodes the messages array (nil when it is absent or not an array).
func parseMessages(raw []byte) []chatMessage {
	if len(raw) == 0 {
		return nil
	}
	var ms []chatMessage
	if json.Unmarshal(raw, &ms) != nil {
		return nil
	}
	return ms
}

// contentText is a message's text: the string content, or its text parts joined by newlines.
// ok is false when the content holds anything but text (images, audio, files).
func contentText(c json.RawMessage) (text string, ok bool) {
	if len(c) == 0 || string(c) == "null" {
		return "", true
	}
	if c[0] == '"' {
		if raw := c[1 : len(c)-1]; bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
			return string(raw), true // nothing to decode
		}
		var s string
		err := json.Unmarshal(c, &s)
		return s, err == nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if json.Unmarshal(c, &parts) != nil {
		return "", false
	}
	var b strings.Builder
	ok = true
	for i, p := range parts {
		if p.Type != "text" {
			ok = false
			continue
		}
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.Text)
	}
	return b.String(), ok
}

// promptTexts are the texts whose tokens a request sends, one per message.
func promptTexts(ms []chatMessage) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		t, _ := contentText(m.Content)
		out = append(out, t)
	}
	return out
}

// maxOutput is the request's cap on generated tokens: max_completion_tokens, else max_tokens,
// else def; times n when n > 1.
func maxOutput(req *cache.Request, def int) int {
	out := def
	for _, f := range []cache.Field{req.MaxCompletionTokens, req.MaxTokens} {
		if v, ok := positiveCount(f); ok {
			out = v
			break
		}
	}
	if n, ok := positiveCount(req.N); ok && n > 1 {
		if out > ratelimit.MaxEstimate/n {
			return ratelimit.MaxEstimate
		}
		out *= n
	}
	return out
}

// positiveCount reads a positive JSON number, saturated at ratelimit.MaxEstimate (a huge
// max_tokens must get the "can never fit" answer, never wrap around to a small one).
func positiveCount(f cache.Field) (int, bool) {
	if !f.Present {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(f.Value), 64)
	if err != nil || !(v > 0) {
		return 0, false
	}
	if v >= ratelimit.MaxEstimate {
		return ratelimit.MaxEstimate, true
	}
	return int(v), true
}
