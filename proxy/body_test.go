package proxy

import (
	"encoding/json"
	"testing"
)

func TestStripNullUsage(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`data: {"id":"x","choices":[],"usage":null}` + "\n\n", `data: {"id":"x","choices":[]}` + "\n\n"},
		{`data: {"usage": null, "id":"x"}` + "\n\n", `data: { "id":"x"}` + "\n\n"},
		{`data: {"id":"x","usage":{"prompt_tokens":1}}` + "\n\n", `data: {"id":"x","usage":{"prompt_tokens":1}}` + "\n\n"},
		{`data: {"id":"x","choices":[{"delta":{"content":"\"usage\":null"}}]}` + "\n\n", `data: {"id":"x","choices":[{"delta":{"content":"\"usage\":null"}}]}` + "\n\n"},
		{`data: [DONE]` + "\n\n", `data: [DONE]` + "\n\n"},
		{`data: {"choices":[{"logprobs":{"content":[{"token":"usage","logprob":-1}]}}],"usage":null}` + "\n\n",
			`data: {"choices":[{"logprobs":{"content":[{"token":"usage","logprob":-1}]}}]}` + "\n\n"},
	} {
		got := string(stripNullUsage([]byte(tc.in)))
		if got != tc.want {
			t.Errorf("stripNullUsage(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if data := got[len("data: ") : len(got)-2]; data != "[DONE]" && !json.Valid([]byte(data)) {
			t.Errorf("result is not valid JSON: %q", data)
		}
	}
}
