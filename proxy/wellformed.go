package proxy

import (
	"bytes"
	"encoding/json"
)

// wellFormed reports whether a 200 answer is a chat.completion zest may store: a JSON object
// with no top-level error, a non-empty choices list, and every choice carrying a message
// object and a finish_reason other than "error". Anything else is relayed, never stored
// (gateways such as OpenRouter report failures inside a 200 this way).
func wellFormed(b []byte) bool {
	var v struct {
		Error   json.RawMessage `json:"error"`
		Choices json.RawMessage `json:"choices"`
	}
	if json.Unmarshal(b, &v) != nil || !isNull(v.Error) {
		return false
	}
	var choices []struct {
		Message      json.RawMessage `json:"message"`
		FinishReason json.RawMessage `json:"finish_reason"`
	}
	if len(v.Choices) == 0 || v.Choices[0] != '[' || json.Unmarshal(v.Choices, &choices) != nil || len(choices) == 0 {
		return false
	}
	for _, c := range choices {
		var reason string
		if len(c.Message) == 0 || c.Message[0] != '{' || json.Unmarshal(c.FinishReason, &reason) != nil ||
			reason == "" || reason == "error" {
			return false
		}
	}
	return true
}

// hasErrorMember reports an SSE data payload that is a JSON object with a non-null top-level
// "error" (a failure reported mid-stream).
func hasErrorMember(data []byte) bool {
	if !bytes.Contains(data, []byte(`"error"`)) {
		return false
	}
	var v struct {
		Error json.RawMessage `json:"error"`
	}
	return json.Unmarshal(data, &v) == nil && !isNull(v.Error)
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}
