package sse

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// scanAll feeds in to a fresh Scanner split at the given cut points and
// returns the emitted events (copied), after Flush, and the rest.
func scanAll(in []byte, cuts []int) (events []string, rest string) {
	var s Scanner
	emit := func(ev []byte) { events = append(events, string(ev)) }
	prev := 0
	for _, c := range cuts {
		if c < prev || c > len(in) {
			continue
		}
		s.Feed(in[prev:c], emit)
		prev = c
	}
	s.Feed(in[prev:], emit)
	s.Flush(emit)
	return events, string(s.Rest())
}

func TestScanner(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		events []string
		rest   string
	}{
		{"lf", "data: a\n\ndata: b\n\n", []string{"data: a\n\n", "data: b\n\n"}, ""},
		{"crlf", "data: a\r\n\r\ndata: b\r\n\r\n", []string{"data: a\r\n\r\n", "data: b\r\n\r\n"}, ""},
		{"lone cr", "data: a\r\rdata: b\r\r", []string{"data: a\r\r", "data: b\r\r"}, ""},
		{"mixed endings", "data: a\r\n\ndata: b\n\r\n", []string{"data: a\r\n\n", "data: b\n\r\n"}, ""},
		{"multi-line event", "event: x\ndata: 1\ndata: 2\n\n", []string{"event: x\ndata: 1\ndata: 2\n\n"}, ""},
		{"unterminated tail", "data: a\n\ndata: b\n", []string{"data: a\n\n"}, "data: b\n"},
		{"no newline at all", "data: a", nil, "data: a"},
		{"leading blank line", "\ndata: a\n\n", []string{"\n", "data: a\n\n"}, ""},
		{"comment", ": ping\n\n", []string{": ping\n\n"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, rest := scanAll([]byte(tt.in), nil)
			if !reflect.DeepEqual(ev, tt.events) || rest != tt.rest {
				t.Errorf("events %q rest %q; want %q rest %q", ev, rest, tt.events, tt.rest)
			}
			// Byte by byte gives the same.
			cuts := make([]int, len(tt.in))
			for i := range cuts {
				cuts[i] = i
			}
			ev2, rest2 := scanAll([]byte(tt.in), cuts)
			if !reflect.DeepEqual(ev2, ev) || rest2 != rest {
				t.Errorf("byte by byte: events %q rest %q", ev2, rest2)
			}
		})
	}
}

func TestData(t *testing.T) {
	tests := []struct {
		event string
		want  []byte
	}{
		{"data: {\"a\":1}\n\n", []byte(`{"a":1}`)},
		{"data:{\"a\":1}\r\n\r\n", []byte(`{"a":1}`)},
		{"data:  two spaces\n\n", []byte(" two spaces")},
		{"data: 1\ndata: 2\ndata: 3\n\n", []byte("1\n2\n3")},
		{"event: error\ndata: x\nid: 7\n\n", []byte("x")},
		{"data\n\n", []byte("")},
		{": comment\n\n", nil},
		{"event: ping\n\n", nil},
		{"\n", nil},
		{"data: [DONE]\r\r", []byte("[DONE]")},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.event, "\n", `\n`), func(t *testing.T) {
			got := Data([]byte(tt.event))
			if !bytes.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
				t.Errorf("Data() = %q (nil %v), want %q (nil %v)", got, got == nil, tt.want, tt.want == nil)
			}
		})
	}
	if got := string(EventName([]byte("event: error\ndata: x\n\n"))); got != "error" {
		t.Errorf("EventName = %q", got)
	}
}

func TestIsDone(t *testing.T) {
	for in, want := range map[string]bool{"[DONE]": true, " [DONE] ": true, "[DONE]x": false, `{"a":1}`: false, "": false} {
		if got := IsDone([]byte(in)); got != want {
			t.Errorf("IsDone(%q) = %v", in, got)
		}
	}
}

func TestIsUsageOnly(t *testing.T) {
	tests := []struct {
		name string
		data string
		want bool
	}{
		{"openai usage chunk", `{"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}`, true},
		{"spaced", `{ "choices" : [ ] , "usage" : { "prompt_tokens" : 1 } }`, true},
		{"usage null", `{"choices":[],"usage":null}`, false},
		{"no usage", `{"choices":[]}`, false},
		{"content chunk with usage null", `{"choices":[{"index":0,"delta":{"content":"hi"}}],"usage":null}`, false},
		{"final chunk carrying usage too", `{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":1}}`, false},
		{"choices text inside a string", `{"choices":[{"index":0,"delta":{"content":"\"choices\":[] \"usage\":{}"}}],"usage":null}`, false},
		{"nested choices key", `{"x":{"choices":[]},"choices":[{"index":0}],"usage":{"a":1}}`, false},
		{"malformed", `{"choices":[],"usage":{"a":1}`, false},
		{"done", `[DONE]`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsUsageOnly([]byte(tt.data)); got != tt.want {
				t.Errorf("IsUsageOnly(%s) = %v, want %v", tt.data, got, tt.want)
			}
		})
	}
}

// FuzzScanner checks that any split of the input gives the same events and
// rest, and that events followed by the rest reproduce the input.
func FuzzScanner(f *testing.F) {
	f.Add([]byte("data: a\n\ndata: b\r\n\r\ndata: c\r\rdata: d\n"), []byte{3, 9, 1})
	f.Add([]byte(": c\n\nevent: e\ndata: 1\ndata: 2\n\n"), []byte{0, 1, 2})
	f.Add([]byte("\r\n\r\r\n\n\r"), []byte{1, 1, 1, 1})
	for _, in := range goldenStreams(f) {
		f.Add(in[:min(len(in), 400)], []byte{17, 1, 200})
	}
	f.Fuzz(func(t *testing.T, in []byte, splits []byte) {
		var whole []string
		var s Scanner
		s.Feed(in, func(ev []byte) { whole = append(whole, string(ev)) })
		joined := strings.Join(whole, "") + string(s.Rest())
		if joined != string(in) {
			t.Fatalf("events+rest = %q, input %q", joined, in)
		}
		wholeEv, wholeRest := scanAll(in, nil)
		cuts, c := []int{}, 0
		for _, d := range splits {
			c += int(d)
			cuts = append(cuts, c)
		}
		ev, rest := scanAll(in, cuts)
		if !reflect.DeepEqual(ev, wholeEv) || rest != wholeRest {
			t.Fatalf("split %v: events %q rest %q; whole: %q rest %q", cuts, ev, rest, wholeEv, wholeRest)
		}
	})
}
