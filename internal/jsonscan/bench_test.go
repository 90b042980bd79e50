package jsonscan

import "testing"

// answer is a chat.completion as an upstream sends it (the bench's mock answer).
const answer = `{"id":"chatcmpl-mock6924c5ab93a308b1","object":"chat.completion","created":1796686135,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Clear large upstream memory system remote method check signal store local large similar memory cache remote window proxy record large proxy local number similar fast shared simple number budget the stream reply server signal record server time header the answer entry request exact the entry upstream token similar.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":48,"total_tokens":53},"system_fingerprint":"fp_mock"}`

// BenchmarkCheckValue validates a whole answer: the cost of skipping a value.
func BenchmarkCheckValue(b *testing.B) {
	in := []byte(answer)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := CheckValue(in); err != nil {
			b.Fatal(err)
		}
	}
}
