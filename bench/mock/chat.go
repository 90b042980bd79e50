package mock

import (
	"encoding/hex"
	"encoding/json"
	"hash/fnv"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// chatRequest holds the chat-completions fields the mock reads.
type chatRequest struct {
	Model         string    `json:"model"`
	Messages      []message `json:"messages"`
	Stream        bool      `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Tools               []tool          `json:"tools"`
	ToolChoice          json.RawMessage `json:"tool_choice"`
}

type message struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type tool struct {
	Type     string `json:"type"`
	Function struct {
		Name string `json:"name"`
	} `json:"function"`
}

// usage is OpenAI's token accounting object.
type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type toolCall struct {
	Index    *int   `json:"index,omitempty"`
	ID       string `json:"id,omitempty"`
	Type     string `json:"type,omitempty"`
	Function struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// completionJSON is the wire form of a non-streamed chat.completion.
type completionJSON struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices [1]struct {
		Index   int `json:"index"`
		Message struct {
			Role      string      `json:"role"`
			Content   *string     `json:"content"`
			Refusal   *string     `json:"refusal"`
			ToolCalls []*toolCall `json:"tool_calls,omitempty"`
		} `json:"message"`
		Logprobs     *struct{} `json:"logprobs"`
		FinishReason string    `json:"finish_reason"`
	} `json:"choices"`
	Usage       usage  `json:"usage"`
	Fingerprint string `json:"system_fingerprint"`
}

// answer is the deterministic reply to one chat request.
type answer struct {
	id       string
	model    string
	created  int64
	words    []string  // content tokens; empty when the answer is a tool call
	toolCall *toolCall // non-nil when the request had tools
	finish   string    // stop | length | tool_calls
	usage    usage
}

var vocab = strings.Fields(`the a proxy cache answer token stream model request upstream
latency memory value result simple quick clear method system data reply text example
useful small large fast steady careful common local remote shared exact similar rate limit
buffer window client server header body event chunk vector index query prompt entry store
time second minute signal check number record usage context budget`)

// text returns the plain text of a message content: a string, or the text
// parts of an array of content parts.
func (m message) text() string {
	if len(m.Content) == 0 || m.Content[0] == 'n' {
		return ""
	}
	var s string
	if json.Unmarshal(m.Content, &s) == nil {
		return s
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if json.Unmarshal(m.Content, &parts) != nil {
		return ""
	}
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(p.Text)
	}
	return b.String()
}

// compose builds the deterministic answer to req.
func (m *Mock) compose(req *chatRequest) answer {
	h := fnv.New64a()
	_, _ = io.WriteString(h, req.Model)
	prompt, last := 0, ""
	for _, msg := range req.Messages {
		t := msg.text()
		_, _ = io.WriteString(h, "\x00"+msg.Role+"\x00"+t)
		prompt += 4 + (len(t)+3)/4
		if msg.Role == "user" {
			last = t
		}
	}
	seed := h.Sum64()
	var idb [8]byte
	for i := range idb {
		idb[i] = byte(seed >> (8 * i))
	}
	a := answer{
		id:      "chatcmpl-mock" + hex.EncodeToString(idb[:]),
		model:   req.Model,
		created: m.opts.Now().Unix(),
		finish:  "stop",
	}
	if name := pickTool(req); name != "" {
		q := strings.Fields(last)
		if len(q) > 6 {
			q = q[:6]
		}
		args, _ := json.Marshal(map[string]string{"query": strings.Join(q, " ")})
		tc := &toolCall{ID: "call_" + hex.EncodeToString(idb[:]), Type: "function"}
		tc.Function.Name, tc.Function.Arguments = name, string(args)
		a.toolCall, a.finish = tc, "tool_calls"
		a.usage = usage{PromptTokens: prompt, CompletionTokens: 1 + len(args)/4}
	} else {
		n := m.opts.AnswerTokens
		if limit := maxTokens(req); limit > 0 && limit < n {
			n, a.finish = limit, "length"
		}
		a.words = make([]string, n)
		for i := range a.words {
			a.words[i] = vocab[splitmix(seed+uint64(i))%uint64(len(vocab))]
		}
		a.usage = usage{PromptTokens: prompt, CompletionTokens: n}
	}
	a.usage.TotalTokens = a.usage.PromptTokens + a.usage.CompletionTokens
	return a
}

// maxTokens returns the request's completion cap, or 0 for none.
func maxTokens(req *chatRequest) int {
	if req.MaxCompletionTokens != nil {
		return *req.MaxCompletionTokens
	}
	if req.MaxTokens != nil {
		return *req.MaxTokens
	}
	return 0
}

// pickTool returns the function the answer calls: the one tool_choice names,
// else the first tool; "" when there are no tools or tool_choice is "none".
func pickTool(req *chatRequest) string {
	if len(req.Tools) == 0 {
		return ""
	}
	var choice string
	if json.Unmarshal(req.ToolChoice, &choice) == nil && choice == "none" {
		return ""
	}
	var named struct {
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if json.Unmarshal(req.ToolChoice, &named) == nil && named.Function.Name != "" {
		return named.Function.Name
	}
	return req.Tools[0].Function.Name
}

// content joins words into the answer text: "Word word ... word."
func content(words []string, first, last bool) string {
	s := strings.Join(words, " ")
	if first && s != "" {
		s = strings.ToUpper(s[:1]) + s[1:]
	} else if s != "" {
		s = " " + s
	}
	if last && s != "" {
		s += "."
	}
	return s
}

func (m *Mock) serveChat(w http.ResponseWriter, r *http.Request) {
	var req chatRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		m.badRequests.Add(1)
		writeError(w, http.StatusBadRequest, "We could not parse the JSON body of your request.", "invalid_request_error", "invalid_json")
		return
	}
	if len(req.Messages) == 0 {
		m.badRequests.Add(1)
		writeError(w, http.StatusBadRequest, "'messages' is a required property", "invalid_request_error", "missing_required_parameter")
		return
	}
	a := m.compose(&req)
	m.promptTokens.Add(int64(a.usage.PromptTokens))
	if req.Stream {
		m.chatStream.Add(1)
		m.stream(w, r, &req, &a)
		return
	}
	if !sleep(r, headerDuration(r, "X-Mock-Latency", m.opts.Latency)) {
		return
	}
	m.chat.Add(1)
	var resp completionJSON
	resp.ID, resp.Object, resp.Created, resp.Model = a.id, "chat.completion", a.created, a.model
	resp.Fingerprint, resp.Usage = "fp_mock", a.usage
	resp.Choices[0].FinishReason = a.finish
	resp.Choices[0].Message.Role = "assistant"
	if a.toolCall != nil {
		resp.Choices[0].Message.ToolCalls = []*toolCall{a.toolCall}
	} else {
		c := content(a.words, true, true)
		resp.Choices[0].Message.Content = &c
	}
	out, _ := json.Marshal(&resp)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	_, _ = w.Write(out)
}

// stream writes a as server-sent chat.completion.chunk events ending in
// "data: [DONE]", with a usage chunk when the request asked for include_usage.
func (m *Mock) stream(w http.ResponseWriter, r *http.Request, req *chatRequest, a *answer) {
	ttft := headerDuration(r, "X-Mock-TTFT", m.opts.TTFT)
	tps := m.opts.TokensPerSecond
	if v, err := strconv.ParseFloat(r.Header.Get("X-Mock-TPS"), 64); err == nil && v >= 0 {
		tps = v
	}
	cut := -1
	if v, err := strconv.Atoi(r.Header.Get("X-Mock-Stream-Cut")); err == nil && v >= 0 {
		cut = v
	}
	includeUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	if !sleep(r, ttft) {
		return
	}
	w.WriteHeader(http.StatusOK)
	send := func(delta any, finish any, u any, choices bool) bool {
		ev := map[string]any{
			"id": a.id, "object": "chat.completion.chunk", "created": a.created,
			"model": a.model, "system_fingerprint": "fp_mock",
			"choices": []any{},
		}
		if choices {
			ev["choices"] = []any{map[string]any{
				"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish,
			}}
		}
		if includeUsage {
			ev["usage"] = u
		}
		b, _ := json.Marshal(ev)
		if _, err := w.Write(append(append([]byte("data: "), b...), '\n', '\n')); err != nil {
			return false
		}
		return rc.Flush() == nil
	}

	// Pieces of the answer: word groups, or slices of the tool-call arguments.
	var pieces []string
	var tokensPer []int
	if a.toolCall != nil {
		args := a.toolCall.Function.Arguments
		k := min(m.opts.Chunks, len(args))
		for i := range k {
			pieces = append(pieces, args[i*len(args)/k:(i+1)*len(args)/k])
			tokensPer = append(tokensPer, max(1, a.usage.CompletionTokens/k))
		}
	} else {
		k := min(m.opts.Chunks, len(a.words))
		for i := range k {
			lo, hi := i*len(a.words)/k, (i+1)*len(a.words)/k
			pieces = append(pieces, content(a.words[lo:hi], i == 0, i == k-1))
			tokensPer = append(tokensPer, hi-lo)
		}
	}

	var first map[string]any
	if a.toolCall != nil {
		idx := 0
		tc := &toolCall{Index: &idx, ID: a.toolCall.ID, Type: "function"}
		tc.Function.Name = a.toolCall.Function.Name
		first = map[string]any{"role": "assistant", "content": nil, "tool_calls": []*toolCall{tc}, "refusal": nil}
	} else {
		first = map[string]any{"role": "assistant", "content": "", "refusal": nil}
	}
	if !send(first, nil, nil, true) {
		return
	}
	for i, p := range pieces {
		if i == cut {
			m.streamsCut.Add(1)
			panic(http.ErrAbortHandler)
		}
		if i > 0 && tps > 0 {
			if !sleep(r, time.Duration(float64(tokensPer[i])/tps*float64(time.Second))) {
				return
			}
		}
		var delta map[string]any
		if a.toolCall != nil {
			idx := 0
			tc := &toolCall{Index: &idx}
			tc.Function.Arguments = p
			delta = map[string]any{"tool_calls": []*toolCall{tc}}
		} else {
			delta = map[string]any{"content": p}
		}
		if !send(delta, nil, nil, true) {
			return
		}
	}
	if cut >= len(pieces) {
		m.streamsCut.Add(1)
		panic(http.ErrAbortHandler)
	}
	if !send(map[string]any{}, a.finish, nil, true) {
		return
	}
	if includeUsage && !send(nil, nil, a.usage, false) {
		return
	}
	if _, err := io.WriteString(w, "data: [DONE]\n\n"); err == nil {
		_ = rc.Flush()
	}
}
