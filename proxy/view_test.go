package proxy

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// view is what a client makes of an answer, streamed or not: the fields compared between a
// miss and its hits.
type view struct {
	ID, Model string
	Choices   []choiceView
	Usage     *usageView
}

type choiceView struct {
	Index                               int
	Role, Content, Reasoning, Refusal   string
	Tools                               []toolView
	Finish                              string
	contentNull, reasoningSeen, refSeen bool
}

type toolView struct{ ID, Type, Name, Args string }

type usageView struct{ Prompt, Completion, Total int }

// noUsage returns v without its usage.
func (v view) noUsage() view { v.Usage = nil; return v }

func (v view) String() string { b, _ := json.MarshalIndent(v, "", " "); return string(b) }

func wantView(t testing.TB, what string, got, want view) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s differs:\n got %v\nwant %v", what, got, want)
	}
}

type wireTool struct {
	Index    int    `json:"index"`
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type wireMsg struct {
	Role      string     `json:"role"`
	Content   *string    `json:"content"`
	Reasoning *string    `json:"reasoning_content"`
	Refusal   *string    `json:"refusal"`
	ToolCalls []wireTool `json:"tool_calls"`
}

type wireUsage struct {
	Prompt     int `json:"prompt_tokens"`
	Completion int `json:"completion_tokens"`
	Total      int `json:"total_tokens"`
}

// viewOfCompletion decodes a chat.completion.
func viewOfCompletion(t testing.TB, b []byte) view {
	t.Helper()
	var c struct {
		ID, Object, Model string
		Choices           []struct {
			Index        int     `json:"index"`
			Message      wireMsg `json:"message"`
			FinishReason string  `json:"finish_reason"`
		}
		Usage *wireUsage
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("not a chat.completion: %v: %s", err, b)
	}
	if c.Object != "chat.completion" {
		t.Errorf("object = %q, want chat.completion", c.Object)
	}
	v := view{ID: c.ID, Model: c.Model}
	for _, ch := range c.Choices {
		cv := choiceView{Index: ch.Index, Role: ch.Message.Role, Finish: ch.FinishReason}
		if ch.Message.Content != nil {
			cv.Content = *ch.Message.Content
		}
		if ch.Message.Reasoning != nil {
			cv.Reasoning = *ch.Message.Reasoning
		}
		if ch.Message.Refusal != nil {
			cv.Refusal = *ch.Message.Refusal
		}
		for _, tc := range ch.Message.ToolCalls {
			cv.Tools = append(cv.Tools, toolView{tc.ID, tc.Type, tc.Function.Name, tc.Function.Arguments})
		}
		v.Choices = append(v.Choices, cv)
	}
	if c.Usage != nil {
		v.Usage = &usageView{c.Usage.Prompt, c.Usage.Completion, c.Usage.Total}
	}
	return v
}

// ssePayloads splits an SSE body into its data payloads; every event must be one data line
// and the stream must end with [DONE] (reported by the bool).
func ssePayloads(t testing.TB, body []byte) ([]string, bool) {
	t.Helper()
	var out []string
	s := string(body)
	done := false
	for s != "" {
		ev, rest, ok := strings.Cut(s, "\n\n")
		if !ok {
			t.Errorf("unterminated SSE event %q", ev)
			break
		}
		s = rest
		if strings.HasPrefix(ev, ":") {
			continue // comment
		}
		if name, rest, ok := strings.Cut(ev, "\n"); ok && strings.HasPrefix(name, "event: ") {
			ev = rest // a named event: its data is checked as any other
		}
		p, ok := strings.CutPrefix(ev, "data: ")
		if !ok || strings.Contains(p, "\n") {
			t.Errorf("unexpected SSE event %q", ev)
			continue
		}
		if done {
			t.Errorf("event after [DONE]: %q", p)
		}
		if p == "[DONE]" {
			done = true
			continue
		}
		out = append(out, p)
	}
	return out, done
}

// isUsageChunk reports whether a payload is the usage-only chunk.
func isUsageChunk(p string) bool {
	var c struct {
		Choices []json.RawMessage `json:"choices"`
		Usage   *wireUsage        `json:"usage"`
	}
	return json.Unmarshal([]byte(p), &c) == nil && c.Choices != nil && len(c.Choices) == 0 && c.Usage != nil
}

// viewOfStream assembles the data payloads of a streamed answer the way a client SDK does.
func viewOfStream(t testing.TB, payloads []string) view {
	t.Helper()
	var v view
	byIndex := map[int]*choiceView{}
	var order []int
	for _, p := range payloads {
		var c struct {
			ID, Object, Model string
			Choices           []struct {
				Index        int     `json:"index"`
				Delta        wireMsg `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			}
			Usage *wireUsage
		}
		if err := json.Unmarshal([]byte(p), &c); err != nil {
			t.Fatalf("chunk is not JSON: %v: %s", err, p)
		}
		if c.Object != "chat.completion.chunk" {
			t.Errorf("object = %q, want chat.completion.chunk", c.Object)
		}
		if v.ID == "" {
			v.ID, v.Model = c.ID, c.Model
		}
		if c.Usage != nil {
			v.Usage = &usageView{c.Usage.Prompt, c.Usage.Completion, c.Usage.Total}
		}
		for _, ch := range c.Choices {
			cv := byIndex[ch.Index]
			if cv == nil {
				cv = &choiceView{Index: ch.Index}
				byIndex[ch.Index] = cv
				order = append(order, ch.Index)
			}
			d := ch.Delta
			if d.Role != "" {
				cv.Role = d.Role
			}
			if d.Content != nil {
				cv.Content += *d.Content
			}
			if d.Reasoning != nil {
				cv.Reasoning += *d.Reasoning
			}
			if d.Refusal != nil {
				cv.Refusal += *d.Refusal
			}
			for _, tc := range d.ToolCalls {
				for len(cv.Tools) <= tc.Index {
					cv.Tools = append(cv.Tools, toolView{})
				}
				tv := &cv.Tools[tc.Index]
				if tc.ID != "" {
					tv.ID = tc.ID
				}
				if tc.Type != "" {
					tv.Type = tc.Type
				}
				tv.Name += tc.Function.Name
				tv.Args += tc.Function.Arguments
			}
			if ch.FinishReason != nil {
				cv.Finish = *ch.FinishReason
			}
		}
	}
	for i := 0; i < len(order); i++ {
		cv, ok := byIndex[i]
		if !ok {
			t.Fatalf("choice %d missing", i)
		}
		v.Choices = append(v.Choices, *cv)
	}
	return v
}

// sseFile is a golden stream: its events as sent, and their data payloads.
type sseFile struct {
	events   []string // whole events with their blank line
	payloads []string // without [DONE]
}

func loadSSE(t testing.TB, name string) sseFile {
	t.Helper()
	var f sseFile
	for _, ev := range strings.SplitAfter(string(golden(t, name)), "\n\n") {
		if ev == "" {
			continue
		}
		f.events = append(f.events, ev)
		if p := strings.TrimSuffix(strings.TrimPrefix(ev, "data: "), "\n\n"); p != "[DONE]" {
			f.payloads = append(f.payloads, p)
		}
	}
	return f
}

// clientPayloads is what a client that did (or did not) ask for usage should receive.
func (f sseFile) clientPayloads(includeUsage bool) []string {
	var out []string
	for _, p := range f.payloads {
		if !includeUsage {
			if isUsageChunk(p) {
				continue
			}
			// zest asked for usage on the client's behalf; the "usage":null the upstream then
			// puts on every chunk is not shown to a client that did not ask.
			p = strings.Replace(p, `,"usage":null`, "", 1)
		}
		out = append(out, p)
	}
	return out
}

// streamOptions reads stream_options.include_usage of a request body.
func includeUsageOf(body []byte) bool {
	var v struct {
		StreamOptions struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	json.Unmarshal(body, &v)
	return v.StreamOptions.IncludeUsage
}

func isStreamRequest(body []byte) bool {
	var v struct{ Stream bool }
	json.Unmarshal(body, &v)
	return v.Stream
}

// sseAnswer streams f event by event with a flush after each, as OpenAI does: the usage chunk
// only when the request asked for it. A request that does not stream gets asJSON.
func sseAnswer(f sseFile, asJSON string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !isStreamRequest(body) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, asJSON)
			return
		}
		usage := includeUsageOf(body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Upstream", "yes")
		w.WriteHeader(200)
		fl := w.(http.Flusher)
		for _, ev := range f.events {
			if !usage && isUsageChunk(strings.TrimSuffix(strings.TrimPrefix(ev, "data: "), "\n\n")) {
				continue
			}
			io.WriteString(w, ev)
			fl.Flush()
		}
	}
}

// streamBody is chatBody with stream on and the given stream_options ("" = none).
func streamBody(extra, streamOptions string) string {
	s := `"stream":true`
	if streamOptions != "" {
		s += `,"stream_options":` + streamOptions
	}
	if extra != "" {
		s += "," + extra
	}
	return chatBody(s)
}

func equalStrings(a, b []string) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d events, want %d", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			return fmt.Errorf("event %d:\n got %s\nwant %s", i, a[i], b[i])
		}
	}
	return nil
}
