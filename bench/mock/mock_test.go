package mock

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const chatBody = `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"What is a cache?"}]}`

func fixedNow() time.Time { return time.Unix(1700000000, 0) }

func post(t *testing.T, srv *httptest.Server, path, body string, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

type completion struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Choices []struct {
		Message struct {
			Role      string     `json:"role"`
			Content   *string    `json:"content"`
			ToolCalls []toolCall `json:"tool_calls"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage usage `json:"usage"`
}

func decode[T any](t *testing.T, r io.Reader) T {
	t.Helper()
	var v T
	if err := json.NewDecoder(r).Decode(&v); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return v
}

func TestChatPlain(t *testing.T) {
	m := New(Options{Now: fixedNow, AnswerTokens: 10})
	srv := httptest.NewServer(m)
	defer srv.Close()

	tests := []struct {
		name       string
		body       string
		wantFinish string
		wantTokens int
	}{
		{"default length", chatBody, "stop", 10},
		{"max_tokens caps", strings.Replace(chatBody, `{"model"`, `{"max_tokens":3,"model"`, 1), "length", 3},
		{"max_completion_tokens caps", strings.Replace(chatBody, `{"model"`, `{"max_completion_tokens":4,"model"`, 1), "length", 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := post(t, srv, "/v1/chat/completions", tc.body, nil)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			c := decode[completion](t, resp.Body)
			if c.Object != "chat.completion" || len(c.Choices) != 1 {
				t.Fatalf("bad completion %+v", c)
			}
			ch := c.Choices[0]
			if ch.FinishReason != tc.wantFinish || ch.Message.Content == nil {
				t.Fatalf("finish %q content %v", ch.FinishReason, ch.Message.Content)
			}
			if got := len(strings.Fields(*ch.Message.Content)); got != tc.wantTokens {
				t.Errorf("content has %d words, want %d", got, tc.wantTokens)
			}
			u := c.Usage
			if u.CompletionTokens != tc.wantTokens || u.PromptTokens <= 0 || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
				t.Errorf("usage %+v", u)
			}
		})
	}

	// Same prompt, same answer; another prompt, another answer.
	read := func(body string) string {
		b, _ := io.ReadAll(post(t, srv, "/v1/chat/completions", body, nil).Body)
		return string(b)
	}
	a, b := read(chatBody), read(chatBody)
	c := read(strings.Replace(chatBody, "a cache", "a proxy", 1))
	if a != b {
		t.Errorf("same prompt gave different answers:\n%s\n%s", a, b)
	}
	if a == c {
		t.Errorf("different prompts gave the same answer")
	}
	if s := m.Stats(); s.Chat != 6 || s.Requests != 6 {
		t.Errorf("stats %+v, want 6 chats", s)
	}
}

// readEvents returns the data payloads of an SSE stream, in order.
func readEvents(t *testing.T, r io.Reader) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			out = append(out, d)
		}
	}
	return out
}

type chunk struct {
	Object  string `json:"object"`
	Choices []struct {
		Delta struct {
			Role      string     `json:"role"`
			Content   *string    `json:"content"`
			ToolCalls []toolCall `json:"tool_calls"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *usage `json:"usage"`
}

func TestChatStream(t *testing.T) {
	m := New(Options{Now: fixedNow, AnswerTokens: 12, Chunks: 3})
	srv := httptest.NewServer(m)
	defer srv.Close()
	plain := post(t, srv, "/v1/chat/completions", chatBody, nil)
	want := decode[completion](t, plain.Body)

	for _, includeUsage := range []bool{false, true} {
		t.Run("include_usage="+map[bool]string{false: "no", true: "yes"}[includeUsage], func(t *testing.T) {
			body := strings.Replace(chatBody, `{"model"`, `{"stream":true,"model"`, 1)
			if includeUsage {
				body = strings.Replace(body, `{"stream"`, `{"stream_options":{"include_usage":true},"stream"`, 1)
			}
			resp := post(t, srv, "/v1/chat/completions", body, nil)
			if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
				t.Fatalf("content type %q", ct)
			}
			ev := readEvents(t, resp.Body)
			if len(ev) == 0 || ev[len(ev)-1] != "[DONE]" {
				t.Fatalf("stream does not end in [DONE]: %q", ev)
			}
			var text strings.Builder
			var finish string
			var gotUsage *usage
			for _, e := range ev[:len(ev)-1] {
				c := decode[chunk](t, strings.NewReader(e))
				if c.Object != "chat.completion.chunk" {
					t.Fatalf("object %q", c.Object)
				}
				if c.Usage != nil {
					gotUsage = c.Usage
				}
				for _, ch := range c.Choices {
					if ch.Delta.Content != nil {
						text.WriteString(*ch.Delta.Content)
					}
					if ch.FinishReason != nil {
						finish = *ch.FinishReason
					}
				}
			}
			if text.String() != *want.Choices[0].Message.Content {
				t.Errorf("streamed text %q, plain %q", text.String(), *want.Choices[0].Message.Content)
			}
			if finish != "stop" {
				t.Errorf("finish %q", finish)
			}
			if includeUsage != (gotUsage != nil) {
				t.Fatalf("usage chunk present=%v, want %v", gotUsage != nil, includeUsage)
			}
			if gotUsage != nil && *gotUsage != want.Usage {
				t.Errorf("stream usage %+v, plain %+v", *gotUsage, want.Usage)
			}
		})
	}
}

func TestChatToolCalls(t *testing.T) {
	m := New(Options{Now: fixedNow})
	srv := httptest.NewServer(m)
	defer srv.Close()
	tools := `"tools":[{"type":"function","function":{"name":"search","parameters":{}}},{"type":"function","function":{"name":"lookup","parameters":{}}}]`
	tests := []struct {
		name, extra, wantName string
	}{
		{"first tool by default", tools, "search"},
		{"named tool_choice", tools + `,"tool_choice":{"type":"function","function":{"name":"lookup"}}`, "lookup"},
		{"tool_choice none", tools + `,"tool_choice":"none"`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := strings.Replace(chatBody, `{"model"`, `{`+tc.extra+`,"model"`, 1)
			c := decode[completion](t, post(t, srv, "/v1/chat/completions", body, nil).Body)
			ch := c.Choices[0]
			if tc.wantName == "" {
				if len(ch.Message.ToolCalls) != 0 || ch.FinishReason != "stop" {
					t.Fatalf("tool_choice none still called a tool: %+v", ch)
				}
				return
			}
			if ch.FinishReason != "tool_calls" || len(ch.Message.ToolCalls) != 1 {
				t.Fatalf("want one tool call, got %+v", ch)
			}
			call := ch.Message.ToolCalls[0]
			var args map[string]string
			if call.Function.Name != tc.wantName || !strings.HasPrefix(call.ID, "call_") ||
				json.Unmarshal([]byte(call.Function.Arguments), &args) != nil || args["query"] == "" {
				t.Errorf("bad call %+v", call)
			}

			// The streamed form carries the same call in deltas.
			sbody := strings.Replace(body, `{`, `{"stream":true,`, 1)
			ev := readEvents(t, post(t, srv, "/v1/chat/completions", sbody, nil).Body)
			var name, argsText, finish string
			for _, e := range ev[:len(ev)-1] {
				c := decode[chunk](t, strings.NewReader(e))
				for _, ch := range c.Choices {
					for _, d := range ch.Delta.ToolCalls {
						name += d.Function.Name
						argsText += d.Function.Arguments
					}
					if ch.FinishReason != nil {
						finish = *ch.FinishReason
					}
				}
			}
			if name != call.Function.Name || argsText != call.Function.Arguments || finish != "tool_calls" || ev[len(ev)-1] != "[DONE]" {
				t.Errorf("stream gave name %q args %q finish %q", name, argsText, finish)
			}
		})
	}
}

func TestEmbeddings(t *testing.T) {
	m := New(Options{EmbeddingDim: 16})
	srv := httptest.NewServer(m)
	defer srv.Close()
	type emb struct {
		Data []struct {
			Index     int             `json:"index"`
			Embedding json.RawMessage `json:"embedding"`
		} `json:"data"`
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
		} `json:"usage"`
	}
	vec := func(t *testing.T, raw json.RawMessage) []float32 {
		var v []float32
		if json.Unmarshal(raw, &v) == nil {
			return v
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatal(err)
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		v = make([]float32, len(b)/4)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return v
	}
	tests := []struct {
		name    string
		body    string
		wantN   int
		wantDim int
	}{
		{"one string", `{"model":"e","input":"hello world"}`, 1, 16},
		{"array", `{"model":"e","input":["hello world","goodbye moon"]}`, 2, 16},
		{"dimensions", `{"model":"e","input":"hello world","dimensions":8}`, 1, 8},
		{"base64", `{"model":"e","input":"hello world","encoding_format":"base64"}`, 1, 16},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := post(t, srv, "/v1/embeddings", tc.body, nil)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			e := decode[emb](t, resp.Body)
			if len(e.Data) != tc.wantN || e.Usage.PromptTokens <= 0 {
				t.Fatalf("got %d vectors, usage %+v", len(e.Data), e.Usage)
			}
			v := vec(t, e.Data[0].Embedding)
			want := Embed("hello world", tc.wantDim)
			if len(v) != tc.wantDim {
				t.Fatalf("dim %d, want %d", len(v), tc.wantDim)
			}
			for i := range v {
				if math.Abs(float64(v[i]-want[i])) > 1e-6 {
					t.Fatalf("vector differs from Embed at %d: %v vs %v", i, v, want)
				}
			}
		})
	}
	if resp := post(t, srv, "/v1/embeddings", `{"input":42}`, nil); resp.StatusCode != 400 {
		t.Errorf("numeric input: status %d, want 400", resp.StatusCode)
	}
}

func TestEmbedSimilarity(t *testing.T) {
	cos := func(a, b []float32) float64 {
		var s float64
		for i := range a {
			s += float64(a[i]) * float64(b[i])
		}
		return s
	}
	a := Embed("What is the capital of France?", 256)
	if got := cos(a, Embed("what is the capital of france", 256)); got < 0.999 {
		t.Errorf("case/punctuation variant cosine %.3f, want 1", got)
	}
	near := cos(a, Embed("What is the capital of Spain?", 256))
	far := cos(a, Embed("Bake bread with rye flour", 256))
	if !(near > far) {
		t.Errorf("cosine near %.3f should exceed far %.3f", near, far)
	}
}

func TestInjectedErrors(t *testing.T) {
	tests := []struct {
		name       string
		opts       Options
		hdr        map[string]string
		wantStatus int
		wantType   string
	}{
		{"header 500", Options{}, map[string]string{"X-Mock-Status": "500"}, 500, "server_error"},
		{"header 429", Options{}, map[string]string{"X-Mock-Status": "429"}, 429, "requests"},
		{"header 400", Options{}, map[string]string{"X-Mock-Status": "400"}, 400, "invalid_request_error"},
		{"error rate 1", Options{ErrorRate: 1}, nil, 500, "server_error"},
		{"429 rate 1", Options{RateLimitRate: 1}, nil, 429, "requests"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := New(tc.opts)
			srv := httptest.NewServer(m)
			defer srv.Close()
			resp := post(t, srv, "/v1/chat/completions", chatBody, tc.hdr)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			env := decode[struct {
				Error struct {
					Message string `json:"message"`
					Type    string `json:"type"`
				} `json:"error"`
			}](t, resp.Body)
			if env.Error.Type != tc.wantType || env.Error.Message == "" {
				t.Errorf("envelope %+v", env)
			}
			if tc.wantStatus == 429 && resp.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			s := m.Stats()
			if s.Chat != 0 || s.Errors+s.RateLimited != 1 {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

func TestInjectionRate(t *testing.T) {
	m := New(Options{ErrorRate: 0.2, RateLimitRate: 0.1, Seed: 7})
	h := http.Handler(m)
	const n = 2000
	for range n {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(chatBody)))
	}
	s := m.Stats()
	if s.Errors < n*15/100 || s.Errors > n*25/100 || s.RateLimited < n*6/100 || s.RateLimited > n*14/100 {
		t.Errorf("injected %d errors and %d 429s of %d; want about 20%% and 10%%", s.Errors, s.RateLimited, n)
	}
	if s.Chat+s.Errors+s.RateLimited != n {
		t.Errorf("counts do not add up: %+v", s)
	}
}

func TestStreamCut(t *testing.T) {
	m := New(Options{Chunks: 4})
	srv := httptest.NewServer(m)
	defer srv.Close()
	body := strings.Replace(chatBody, `{"model"`, `{"stream":true,"model"`, 1)
	resp := post(t, srv, "/v1/chat/completions", body, map[string]string{"X-Mock-Stream-Cut": "2"})
	b, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Errorf("cut stream read cleanly")
	}
	if strings.Contains(string(b), "[DONE]") {
		t.Errorf("cut stream carried [DONE]: %s", b)
	}
	if s := m.Stats(); s.StreamsCut != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestRoutes(t *testing.T) {
	m := New(Options{})
	srv := httptest.NewServer(m)
	defer srv.Close()
	tests := []struct {
		method, path, body string
		want               int
	}{
		{"GET", "/v1/models", "", 200},
		{"GET", "/healthz", "", 200},
		{"GET", "/v1/nope", "", 404},
		{"POST", "/v1/chat/completions", "{", 400},
		{"POST", "/v1/chat/completions", `{"model":"m","messages":[]}`, 400},
		{"GET", "/mock/stats", "", 200},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
	if s := m.Stats(); s.NotFound != 1 || s.BadRequests != 2 || s.Models != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestLatency(t *testing.T) {
	// A cancelled request must not wait out the configured latency.
	m := New(Options{Latency: time.Hour})
	req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(chatBody))
	ctx, cancel := context.WithCancel(req.Context())
	cancel()
	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, req.WithContext(ctx))
	if m.Stats().Chat != 0 {
		t.Errorf("a cancelled request was answered")
	}
}
