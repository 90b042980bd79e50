package sse

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden .json files in testdata")

// goldenStreams returns the hand-written SSE inputs in testdata.
func goldenStreams(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob("testdata/*.sse")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden streams: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".sse")] = b
	}
	return out
}

// assemble feeds in to a new Assembler in pieces of size step (0 = one
// Write) and returns Complete's result.
func assemble(in []byte, step int) ([]byte, error) {
	a := NewAssembler()
	if step <= 0 {
		step = len(in) + 1
	}
	for i := 0; i < len(in); i += step {
		a.Write(in[i:min(i+step, len(in))])
	}
	return a.Complete()
}

func toCRLF(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")) }
func toCR(b []byte) []byte   { return bytes.ReplaceAll(b, []byte("\n"), []byte("\r")) }

func TestAssembleGolden(t *testing.T) {
	for name, in := range goldenStreams(t) {
		t.Run(name, func(t *testing.T) {
			got, err := assemble(in, 0)
			if err != nil {
				t.Fatalf("Complete: %v", err)
			}
			if !json.Valid(got) {
				t.Fatalf("output is not valid JSON: %s", got)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, got, "", "  "); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			golden := filepath.Join("testdata", name+".json")
			if *update {
				if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Errorf("assembled completion differs from %s:\n got: %s\nwant: %s", golden, pretty.Bytes(), want)
			}
			variants := []struct {
				name string
				in   []byte
				step int
			}{
				{"crlf", toCRLF(in), 0},
				{"cr", toCR(in), 0},
				{"byte-by-byte", in, 1},
				{"crlf-byte-by-byte", toCRLF(in), 1},
				{"cr-byte-by-byte", toCR(in), 1},
				{"7-byte pieces", in, 7},
			}
			for _, v := range variants {
				again, err := assemble(v.in, v.step)
				if err != nil {
					t.Errorf("%s: %v", v.name, err)
					continue
				}
				if !bytes.Equal(again, got) {
					t.Errorf("%s: got %s\nwant %s", v.name, again, got)
				}
			}
		})
	}
}

// TestAssembleFields checks, in decoded form, what a client of each golden
// stream must see.
func TestAssembleFields(t *testing.T) {
	streams := goldenStreams(t)
	type choice struct {
		Index   int `json:"index"`
		Message struct {
			Role      string  `json:"role"`
			Content   *string `json:"content"`
			Refusal   *string `json:"refusal"`
			Reasoning *string `json:"reasoning_content"`
			ToolCalls []struct {
				ID       string `json:"id"`
				Type     string `json:"type"`
				Function struct {
					Name      string `json:"name"`
					Arguments string `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
		} `json:"message"`
		Logprobs *struct {
			Content []struct {
				Token string `json:"token"`
			} `json:"content"`
		} `json:"logprobs"`
		FinishReason string `json:"finish_reason"`
	}
	type completion struct {
		ID          string          `json:"id"`
		Object      string          `json:"object"`
		Created     int64           `json:"created"`
		Model       string          `json:"model"`
		Fingerprint string          `json:"system_fingerprint"`
		ServiceTier string          `json:"service_tier"`
		Usage       json.RawMessage `json:"usage"`
		Choices     []choice        `json:"choices"`
		Obfuscation *string         `json:"obfuscation"`
	}
	decode := func(t *testing.T, name string) completion {
		t.Helper()
		b, err := assemble(streams[name], 0)
		if err != nil {
			t.Fatal(err)
		}
		var c completion
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		if c.Object != "chat.completion" || c.Obfuscation != nil {
			t.Errorf("object = %q, obfuscation = %v", c.Object, c.Obfuscation)
		}
		return c
	}
	str := func(p *string) string {
		if p == nil {
			return "<null>"
		}
		return *p
	}

	t.Run("text", func(t *testing.T) {
		c := decode(t, "text")
		if c.ID != "chatcmpl-BxT2f9KqLm0" || c.Created != 1753958400 || c.Model != "gpt-4o-mini-2024-07-18" ||
			c.Fingerprint != "fp_34a54ae93c" || c.ServiceTier != "default" {
			t.Errorf("top level = %+v", c)
		}
		m := c.Choices[0].Message
		want := "Hello! Here is a \"quote\" and a new line:\n\ncafé – naïve 😀 done."
		if str(m.Content) != want || m.Role != "assistant" || m.Refusal != nil || c.Choices[0].FinishReason != "stop" {
			t.Errorf("message = %q role %q refusal %q finish %q", str(m.Content), m.Role, str(m.Refusal), c.Choices[0].FinishReason)
		}
		if c.Usage != nil {
			t.Errorf("usage = %s, want absent", c.Usage)
		}
	})
	t.Run("tools", func(t *testing.T) {
		c := decode(t, "tools")
		m := c.Choices[0].Message
		if m.Content != nil || len(m.ToolCalls) != 2 || c.Choices[0].FinishReason != "tool_calls" {
			t.Fatalf("message = %+v", m)
		}
		for i, want := range []struct{ id, name, args string }{
			{"call_8sX2bW1r", "get_weather", `{"location": "Paris, France"}`},
			{"call_Qm7vT0aa", "get_time", `{"tz": "Europe/Paris"}`},
		} {
			tc := m.ToolCalls[i]
			if tc.ID != want.id || tc.Type != "function" || tc.Function.Name != want.name || tc.Function.Arguments != want.args {
				t.Errorf("tool call %d = %+v, want %+v", i, tc, want)
			}
		}
	})
	t.Run("n2", func(t *testing.T) {
		c := decode(t, "n2")
		if len(c.Choices) != 2 || c.Choices[0].Index != 0 || c.Choices[1].Index != 1 {
			t.Fatalf("choices = %+v", c.Choices)
		}
		if str(c.Choices[0].Message.Content) != "First answer." || str(c.Choices[1].Message.Content) != "Second answer, longer" ||
			c.Choices[1].FinishReason != "length" {
			t.Errorf("choices = %+v", c.Choices)
		}
	})
	t.Run("usage", func(t *testing.T) {
		c := decode(t, "usage")
		var u map[string]any
		if err := json.Unmarshal(c.Usage, &u); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"prompt_tokens": 19.0, "completion_tokens": 2.0, "total_tokens": 21.0,
			"prompt_tokens_details":     map[string]any{"cached_tokens": 0.0, "audio_tokens": 0.0},
			"completion_tokens_details": map[string]any{"reasoning_tokens": 0.0, "audio_tokens": 0.0, "accepted_prediction_tokens": 0.0, "rejected_prediction_tokens": 0.0}}
		if !reflect.DeepEqual(u, want) {
			t.Errorf("usage = %v", u)
		}
	})
	t.Run("reasoning", func(t *testing.T) {
		c := decode(t, "reasoning")
		m := c.Choices[0].Message
		if str(m.Reasoning) != "The user asks 2+2. That is 4." || str(m.Content) != "2 + 2 = 4" {
			t.Errorf("reasoning %q content %q", str(m.Reasoning), str(m.Content))
		}
	})
	t.Run("logprobs", func(t *testing.T) {
		c := decode(t, "logprobs")
		lp := c.Choices[0].Logprobs
		if lp == nil || len(lp.Content) != 3 || lp.Content[0].Token != "Hi" || lp.Content[2].Token != "!" {
			t.Errorf("logprobs = %+v", lp)
		}
	})
	t.Run("refusal", func(t *testing.T) {
		c := decode(t, "refusal")
		m := c.Choices[0].Message
		if m.Content != nil || str(m.Refusal) != "I'm sorry, I can't help with that." {
			t.Errorf("content %q refusal %q", str(m.Content), str(m.Refusal))
		}
	})
}

func TestAssemblerUsage(t *testing.T) {
	a := NewAssembler()
	a.Write(goldenStreams(t)["usage"])
	p, c, ok := a.Usage()
	if !ok || p != 19 || c != 2 {
		t.Errorf("Usage() = %d, %d, %v; want 19, 2, true", p, c, ok)
	}
	a = NewAssembler()
	a.Write(goldenStreams(t)["text"])
	if _, _, ok := a.Usage(); ok {
		t.Error("Usage() ok on a stream without usage")
	}
}

func TestAssembleErrors(t *testing.T) {
	text := goldenStreams(t)["text"]
	cut := text[:bytes.Index(text, []byte("data: [DONE]"))]
	chunk := `data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":null}]}` + "\n\n"
	finish := `data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n"
	done := "data: [DONE]\n\n"
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"cut before [DONE]", string(cut), ErrIncomplete},
		{"cut mid-event", string(text[:len(text)/2]), ErrIncomplete},
		{"cut inside [DONE]", chunk + finish + "data: [DON", ErrIncomplete},
		{"empty stream", "", ErrIncomplete},
		{"only [DONE]", done, ErrIncomplete},
		{"no finish_reason", chunk + done, ErrIncomplete},
		{"empty finish_reason", strings.Replace(chunk, `"finish_reason":null`, `"finish_reason":""`, 1) + done, ErrIncomplete},
		{"error object", chunk + `data: {"error":{"message":"overloaded","type":"server_error","code":null}}` + "\n\n" + done, ErrUpstreamError},
		{"error object in chunk", chunk + `data: {"id":"x","choices":[],"error":{"message":"boom"}}` + "\n\n" + finish + done, ErrUpstreamError},
		{"event: error", chunk + "event: error\ndata: {\"message\":\"boom\"}\n\n" + finish + done, ErrUpstreamError},
		{"malformed JSON", chunk + "data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a}]}\n\n" + finish + done, ErrMalformed},
		{"trailing garbage", chunk + "data: {\"id\":\"x\"} x\n\n" + finish + done, ErrMalformed},
		{"not an object", chunk + "data: [1,2]\n\n" + finish + done, ErrMalformed},
		{"bad index", chunk + `data: {"choices":[{"index":"0","delta":{}}]}` + "\n\n" + finish + done, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := assemble([]byte(tt.in), 0)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Complete() = %s, %v; want error %v", got, err, tt.want)
			}
		})
	}
	for _, end := range []string{done, "data: [DONE]", "data: [DONE]\r\n"} {
		t.Run("clean control "+strings.TrimSpace(end), func(t *testing.T) {
			got, err := assemble([]byte(chunk+finish+end), 0)
			if err != nil || !strings.Contains(string(got), `"content":"hi"`) {
				t.Fatalf("Complete() = %s, %v", got, err)
			}
		})
	}
	t.Run("event over MaxEventBytes", func(t *testing.T) {
		a := NewAssembler()
		a.Write([]byte(chunk))
		a.Write([]byte("data: {\"x\":\""))
		big := bytes.Repeat([]byte("x"), 1<<20)
		for i := 0; i <= MaxEventBytes>>20; i++ {
			a.Write(big)
		}
		a.Write([]byte("\"}\n\n" + finish + done))
		if got, err := a.Complete(); !errors.Is(err, ErrIncomplete) {
			t.Fatalf("Complete() = %.80s, %v; want ErrIncomplete", got, err)
		}
		if n := cap(a.sc.Rest()); n > 0 {
			t.Errorf("scanner still holds %d bytes after overflow", n)
		}
	})
}

// TestAssembleProviderQuirks covers deltas seen from OpenAI-compatible
// servers other than OpenAI.
func TestAssembleProviderQuirks(t *testing.T) {
	ev := func(s string) string { return "data: " + s + "\n\n" }
	tests := []struct {
		name, in, want string
	}{
		{
			"tool calls without index (one call per chunk)",
			ev(`{"id":"a","choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]}}]}`) +
				ev(`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"id":"c2","type":"function","function":{"name":"g","arguments":"{\"x\":"}}]}}]}`) +
				ev(`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"function":{"arguments":"1}"}}]},"finish_reason":"tool_calls"}]}`) +
				"data: [DONE]\n\n",
			`{"id":"a","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}},{"id":"c2","type":"function","function":{"name":"g","arguments":"{\"x\":1}"}}]},"logprobs":null,"finish_reason":"tool_calls"}]}`,
		},
		{
			"missing type, extra fields kept (last value), reasoning, vLLM stop_reason",
			ev(`{"id":"b","created":5,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","reasoning":"th","tool_calls":[{"index":0,"id":"c","function":{"name":"f","arguments":""}}]},"logprobs":null,"finish_reason":null,"stop_reason":null}],"usage":null}`) +
				ev(`{"id":"b","created":5,"model":"m","choices":[{"index":0,"delta":{"reasoning":"ink","annotations":[1],"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]},"logprobs":null,"finish_reason":null}]}`) +
				ev(`{"id":"b","created":5,"model":"m","choices":[{"index":0,"delta":{"annotations":[2]},"finish_reason":"tool_calls","stop_reason":128008}],"provider":"X"}`) +
				"data: [DONE]\n\n",
			`{"id":"b","object":"chat.completion","created":5,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":null,"reasoning":"think","annotations":[2],"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},"logprobs":null,"finish_reason":"tool_calls","stop_reason":128008}],"provider":"X"}`,
		},
		{
			"escaped keys",
			ev(`{"id":"e","choices":[{"index":0,"delta":{"role":"assistant","\u0063ontent":"a\u0022"},"finish_reason":"stop"}]}`) + "data: [DONE]\n\n",
			`{"id":"e","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"a\u0022","refusal":null},"logprobs":null,"finish_reason":"stop"}]}`,
		},
		{
			"legacy function_call and multi-line data",
			"data: {\"id\":\"c\",\"choices\":[{\"index\":0,\n" +
				"data: \"delta\":{\"role\":\"assistant\",\"content\":null,\"function_call\":{\"name\":\"f\",\"arguments\":\"{\\\"a\"}}}]}\n\n" +
				ev(`{"id":"c","choices":[{"index":0,"delta":{"function_call":{"arguments":"\":1}"}},"finish_reason":"function_call"}]}`) +
				"data: [DONE]\n\n",
			`{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":null,"function_call":{"name":"f","arguments":"{\"a\":1}"}},"logprobs":null,"finish_reason":"function_call"}]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := assemble([]byte(tt.in), 0)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestAssemblerWriteAfterDone(t *testing.T) {
	in := goldenStreams(t)["usage"]
	want, err := assemble(in, 0)
	if err != nil {
		t.Fatal(err)
	}
	a := NewAssembler()
	a.Write(in)
	n, err := a.Write([]byte("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"late\"}}]}\n\n"))
	if n == 0 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	got, err := a.Complete()
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("data after [DONE] changed the completion: %s, %v", got, err)
	}
}

func TestCompletionUsage(t *testing.T) {
	for _, tc := range []struct {
		in     string
		p, c   int
		wantOK bool
	}{
		{`{"id":"x","choices":[{"message":{"content":"\"usage\":{}"}}],"usage":{"prompt_tokens":6,"completion_tokens":32,"total_tokens":38}}`, 6, 32, true},
		{"\n {\"usage\": {\"completion_tokens\": 2, \"prompt_tokens\": 1}}", 1, 2, true},
		{`{"usage":null}`, 0, 0, false},
		{`{"choices":[]}`, 0, 0, false},
		{`not json`, 0, 0, false},
	} {
		p, c, ok := CompletionUsage([]byte(tc.in))
		if p != tc.p || c != tc.c || ok != tc.wantOK {
			t.Errorf("CompletionUsage(%s) = %d, %d, %v; want %d, %d, %v", tc.in, p, c, ok, tc.p, tc.c, tc.wantOK)
		}
	}
}
