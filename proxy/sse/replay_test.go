package sse

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// storedCompletions returns every completion a cache could hold: the
// assembled golden streams and the non-streamed answers in
// testdata/completions.
func storedCompletions(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for name, in := range goldenStreams(t) {
		c, err := assemble(in, 0)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out["stream/"+name] = c
	}
	files, _ := filepath.Glob("testdata/completions/*.json")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out["json/"+strings.TrimSuffix(filepath.Base(f), ".json")] = b
	}
	return out
}

func decodeMap(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return m
}

// streamable reduces a stored completion to what an SSE stream can carry, so
// that a replayed-and-reassembled completion compares equal to it:
//   - top-level members other than id, object, created, model, choices,
//     usage, service_tier and system_fingerprint are dropped;
//   - usage is dropped unless the replay included it;
//   - a message without refusal gets "refusal": null and an empty
//     tool_calls array is dropped (a stream has no deltas for it);
//   - a logprobs object gets "content" and "refusal" (null when absent).
func streamable(m map[string]any, withUsage bool) map[string]any {
	out := map[string]any{}
	for _, k := range []string{"id", "object", "created", "model", "choices", "usage", "service_tier", "system_fingerprint"} {
		if v, ok := m[k]; ok {
			out[k] = v
		}
	}
	if !withUsage {
		delete(out, "usage")
	}
	for _, c := range out["choices"].([]any) {
		msg := c.(map[string]any)["message"].(map[string]any)
		if _, ok := msg["refusal"]; !ok {
			msg["refusal"] = nil
		}
		if tc, ok := msg["tool_calls"].([]any); ok && len(tc) == 0 {
			delete(msg, "tool_calls")
		}
		if lp, ok := c.(map[string]any)["logprobs"].(map[string]any); ok {
			for _, k := range []string{"content", "refusal"} {
				if _, ok := lp[k]; !ok {
					lp[k] = nil
				}
			}
		}
	}
	return out
}

func TestReplayRoundTrip(t *testing.T) {
	for name, stored := range storedCompletions(t) {
		for _, withUsage := range []bool{false, true} {
			t.Run(name+map[bool]string{false: "", true: "/include_usage"}[withUsage], func(t *testing.T) {
				sse, err := AppendReplay(nil, stored, ReplayOptions{IncludeUsage: withUsage})
				if err != nil {
					t.Fatal(err)
				}
				for _, step := range []int{0, 1} {
					got, err := assemble(sse, step)
					if err != nil {
						t.Fatalf("reassembling the replay (step %d): %v\n%s", step, err, sse)
					}
					want := streamable(decodeMap(t, stored), withUsage)
					if g := decodeMap(t, got); !reflect.DeepEqual(g, want) {
						t.Errorf("round trip differs:\n got %v\nwant %v", g, want)
					}
					// A completion this package assembled comes back byte for byte.
					if strings.HasPrefix(name, "stream/") && withUsage && !bytes.Equal(got, stored) {
						t.Errorf("round trip not byte-identical:\n got %s\nwant %s", got, stored)
					}
				}
				var w bytes.Buffer
				if err := Replay(&w, stored, ReplayOptions{IncludeUsage: withUsage}); err != nil || !bytes.Equal(w.Bytes(), sse) {
					t.Errorf("Replay differs from AppendReplay (err %v)", err)
				}
			})
		}
	}
}

// chunk is the decoded form of a replayed chat.completion.chunk.
type chunk struct {
	ID          string  `json:"id"`
	Object      string  `json:"object"`
	Created     int64   `json:"created"`
	Model       string  `json:"model"`
	Fingerprint *string `json:"system_fingerprint"`
	Choices     []struct {
		Index        int                        `json:"index"`
		Delta        map[string]json.RawMessage `json:"delta"`
		Logprobs     json.RawMessage            `json:"logprobs"`
		FinishReason *string                    `json:"finish_reason"`
	} `json:"choices"`
}

// TestReplayShape checks the stream a streaming client receives on a hit.
func TestReplayShape(t *testing.T) {
	for name, stored := range storedCompletions(t) {
		for _, withUsage := range []bool{false, true} {
			t.Run(name+map[bool]string{false: "", true: "/include_usage"}[withUsage], func(t *testing.T) {
				sse, err := AppendReplay(nil, stored, ReplayOptions{IncludeUsage: withUsage})
				if err != nil {
					t.Fatal(err)
				}
				checkReplayShape(t, stored, sse, withUsage)
			})
		}
	}
}

func checkReplayShape(t *testing.T, stored, sse []byte, withUsage bool) {
	t.Helper()
	var top struct {
		ID          string          `json:"id"`
		Created     int64           `json:"created"`
		Model       string          `json:"model"`
		Fingerprint *string         `json:"system_fingerprint"`
		Usage       json.RawMessage `json:"usage"`
		Choices     []struct {
			Index   int `json:"index"`
			Message struct {
				Content *string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(stored, &top); err != nil {
		t.Fatal(err)
	}
	var events [][]byte
	var s Scanner
	s.Feed(sse, func(ev []byte) { events = append(events, bytes.Clone(ev)) })
	if len(s.Rest()) != 0 {
		t.Fatalf("unterminated tail %q", s.Rest())
	}
	if string(events[len(events)-1]) != "data: [DONE]\n\n" {
		t.Fatalf("last event %q, want data: [DONE]", events[len(events)-1])
	}
	hasUsage := len(top.Usage) > 0 && string(top.Usage) != "null"
	seen := map[int]int{}      // chunks per choice
	finished := map[int]bool{} // finish chunk seen
	pieces := map[int]int{}    // content pieces per choice
	for i, ev := range events[:len(events)-1] {
		if !bytes.HasPrefix(ev, []byte("data: {")) || !bytes.HasSuffix(ev, []byte("}\n\n")) || bytes.Count(ev, []byte("\n")) != 2 {
			t.Fatalf("event %d is not one data line: %q", i, ev)
		}
		d := Data(ev)
		var c chunk
		if err := json.Unmarshal(d, &c); err != nil {
			t.Fatalf("event %d: %v: %s", i, err, d)
		}
		if c.Object != "chat.completion.chunk" || c.ID != top.ID || c.Created != top.Created || c.Model != top.Model ||
			!reflect.DeepEqual(c.Fingerprint, top.Fingerprint) {
			t.Fatalf("event %d header = %s", i, d)
		}
		if usageOnly := IsUsageOnly(d); usageOnly {
			if !withUsage || i != len(events)-2 {
				t.Fatalf("usage chunk at %d (include_usage %v): %s", i, withUsage, d)
			}
			continue
		}
		var members map[string]json.RawMessage
		_ = json.Unmarshal(d, &members)
		u, present := members["usage"]
		if withUsage != present || (present && string(u) != "null") || len(c.Choices) != 1 {
			t.Fatalf("event %d: usage member %q present = %v with include_usage %v, %d choices", i, u, present, withUsage, len(c.Choices))
		}
		ch := c.Choices[0]
		if finished[ch.Index] {
			t.Fatalf("event %d: chunk for choice %d after its finish_reason", i, ch.Index)
		}
		if seen[ch.Index] == 0 && string(ch.Delta["role"]) != `"assistant"` {
			t.Errorf("first chunk of choice %d has no role: %s", ch.Index, d)
		}
		seen[ch.Index]++
		if ch.FinishReason != nil {
			finished[ch.Index] = true
			if len(ch.Delta) != 0 {
				t.Errorf("finish chunk has a non-empty delta: %s", d)
			}
		}
		for k, v := range ch.Delta {
			var s string
			if json.Unmarshal(v, &s) != nil || k == "role" {
				continue
			}
			if strings.ContainsRune(s, utf8.RuneError) {
				t.Errorf("piece %q of %s splits a character", s, k)
			}
			if k == "content" && s != "" {
				pieces[ch.Index]++
			}
		}
	}
	if got := IsUsageOnly(Data(events[len(events)-2])); got != (withUsage && hasUsage) {
		t.Errorf("usage chunk present = %v, want %v", got, withUsage && hasUsage)
	}
	for _, c := range top.Choices {
		if !finished[c.Index] {
			t.Errorf("choice %d has no finish chunk", c.Index)
		}
		if c.Message.Content == nil {
			continue
		}
		n := len(*c.Message.Content)
		if n > 3*maxPiece && pieces[c.Index] < 2 {
			t.Errorf("choice %d: %d bytes of content replayed as %d piece(s)", c.Index, n, pieces[c.Index])
		}
		if n > 0 && pieces[c.Index] > n/8+1 {
			t.Errorf("choice %d: %d bytes of content replayed as %d pieces (too fine)", c.Index, n, pieces[c.Index])
		}
	}
}

func TestReplayToolCallDeltas(t *testing.T) {
	stored, err := os.ReadFile("testdata/completions/tools.json")
	if err != nil {
		t.Fatal(err)
	}
	sse, err := AppendReplay(nil, stored, ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	type tc struct {
		Index    int     `json:"index"`
		ID       *string `json:"id"`
		Type     *string `json:"type"`
		Function struct {
			Name      *string `json:"name"`
			Arguments *string `json:"arguments"`
		} `json:"function"`
	}
	heads, argPieces := map[int]tc{}, map[int]int{}
	var s Scanner
	s.Feed(sse, func(ev []byte) {
		var c struct {
			Choices []struct {
				Delta struct {
					ToolCalls []tc `json:"tool_calls"`
				} `json:"delta"`
			} `json:"choices"`
		}
		if IsDone(Data(ev)) || json.Unmarshal(Data(ev), &c) != nil || len(c.Choices) == 0 {
			return
		}
		for _, x := range c.Choices[0].Delta.ToolCalls {
			if _, ok := heads[x.Index]; !ok {
				heads[x.Index] = x
				continue
			}
			if x.ID != nil || x.Type != nil || x.Function.Name != nil || x.Function.Arguments == nil {
				t.Errorf("arguments delta carries more than arguments: %+v", x)
			}
			argPieces[x.Index]++
		}
	})
	if len(heads) != 2 {
		t.Fatalf("tool call heads = %v", heads)
	}
	for i, want := range []string{"get_weather", "get_time"} {
		h := heads[i]
		if h.ID == nil || h.Type == nil || *h.Type != "function" || h.Function.Name == nil || *h.Function.Name != want ||
			h.Function.Arguments == nil || *h.Function.Arguments != "" {
			t.Errorf("head %d = %+v", i, h)
		}
	}
	if argPieces[0] < 2 || argPieces[1] != 1 {
		t.Errorf("arguments pieces = %v, want several for call 0 and one for call 1", argPieces)
	}
}

func TestReplayErrors(t *testing.T) {
	for _, in := range []string{``, `null`, `{"id":"x"}`, `{"choices":{}}`, `{"choices":[{"index":"a"}]}`, `{"choices":[]`, `[1]`} {
		t.Run(in, func(t *testing.T) {
			dst := []byte("keep")
			out, err := AppendReplay(dst, []byte(in), ReplayOptions{})
			if !errors.Is(err, ErrMalformed) || string(out) != "keep" {
				t.Errorf("AppendReplay(%q) = %q, %v; want ErrMalformed and dst untouched", in, out, err)
			}
		})
	}
}

func TestPieceEnd(t *testing.T) {
	tests := []struct {
		name string
		s    string
		want []string
	}{
		{"short", "Hello", []string{"Hello"}},
		{"words", "one two three four five six seven eight nine ten",
			[]string{"one two three four five ", "six seven eight nine ", "ten"}},
		{"newline escape is a boundary", `aaaaaaaaaaaaaaaaaaaa\nbbb`, []string{`aaaaaaaaaaaaaaaaaaaa\n`, "bbb"}},
		{"no spaces: cut at maxPiece", strings.Repeat("x", 100), []string{strings.Repeat("x", 80), strings.Repeat("x", 20)}},
		{"surrogate pair never split", strings.Repeat("x", 78) + `\ud83d\ude80yz`, []string{strings.Repeat("x", 78) + `\ud83d\ude80`, "yz"}},
		{"escape never split", strings.Repeat("x", 79) + `\"y`, []string{strings.Repeat("x", 79) + `\"`, "y"}},
		{"utf-8 never split", strings.Repeat("x", 79) + "日本", []string{strings.Repeat("x", 79) + "日", "本"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for i := 0; i < len(tt.s); {
				j := pieceEnd([]byte(tt.s), i)
				got = append(got, tt.s[i:j])
				i = j
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("pieces = %q, want %q", got, tt.want)
			}
		})
	}
}
