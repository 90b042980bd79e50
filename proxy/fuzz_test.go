package proxy

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/zest-proxy/zest/cache"
)

// FuzzParseCacheControl: any body member and header either give a 400 about cache_control or
// a valid mode whose max_age is within 1..86400 s (0 = the configured TTL).
func FuzzParseCacheControl(f *testing.F) {
	for _, s := range []struct{ raw, hdr string }{
		{`{"type":"no_store","max_age":60}`, ""},
		{`{"type":"ephemeral"}`, "no-cache"},
		{`{"max_age":1e3}`, "max-age=5"},
		{`{"max_age":99999999999999999999}`, ""},
		{`{"max_age":-0}`, ""},
		{`{"max_age":0.0000001}`, ""},
		{`{"type":null}`, "no-store, max-age=10"},
		{`null`, ""},
		{``, `max-age="60"`},
		{``, "max-age=9223372036854775807"},
	} {
		f.Add(s.raw, s.hdr)
	}
	f.Fuzz(func(t *testing.T, raw, hdr string) {
		var rawb []byte
		if raw != "" {
			rawb = []byte(raw)
		}
		h := http.Header{}
		h.Set("Cache-Control", hdr)
		m, aerr := parseCacheControl(rawb, h, TypeDefault, nil)
		if aerr != nil {
			if aerr.Status != http.StatusBadRequest || !strings.HasPrefix(aerr.Param, "cache_control") {
				t.Fatalf("error %+v", aerr)
			}
			return
		}
		if !ValidType(m.typ) {
			t.Fatalf("mode type %q", m.typ)
		}
		if m.maxAge < 0 || m.maxAge > MaxAgeLimit {
			t.Fatalf("max_age %v out of range for %q / %q", m.maxAge, raw, hdr)
		}
		if m.maxAge > 0 && m.maxAge%1e9 != 0 {
			t.Fatalf("max_age %v is not whole seconds", m.maxAge)
		}
	})
}

// FuzzQuickCacheControl: whenever the quick reader of the body form answers, it answers what
// encoding/json does.
func FuzzQuickCacheControl(f *testing.F) {
	for _, s := range []string{
		`{"type":"no_store","max_age":60}`, `{"type":"ephemeral","x":[1,{"y":null}]}`,
		`{"max_age":1e3,"min_similarity":0.95}`, `{"TYPE":"no_cache"}`, `{"type":"a","type":"b"}`,
		`{"type":null}`, `{"max_age":"60"}`, `{"min_similarity":1e400}`, `{"typ\u0065":"no_cache"}`,
		`{"type":"no\u005fcache"}`, `{"ſtream":1}`, `{}`, `[]`, `{"max_age":-0.0}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if !json.Valid([]byte(raw)) {
			return // ParseRequest hands over valid JSON only
		}
		got, ok := quickCacheControl([]byte(raw))
		if !ok {
			return
		}
		var want cacheControlBody
		if err := json.Unmarshal([]byte(raw), &want); err != nil {
			t.Fatalf("quick read %q, encoding/json refuses it: %v", raw, err)
		}
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		if !bytes.Equal(gj, wj) {
			t.Fatalf("%q: quick %s, encoding/json %s", raw, gj, wj)
		}
	})
}

// FuzzUpstreamBody: the body sent upstream is valid JSON, equals the client's body without its
// top-level cache_control (kept for ephemeral), and asks for usage when zest forces it.
func FuzzUpstreamBody(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","cache_control":{"type":"no_store"},"stream":true,"stream_options":{"include_usage":false},"messages":[]}`,
		`{"stream_options":{"include_usage":false},"stream":true,"cache_control":{"max_age":5}}`,
		`{"stream":true, "messages":[{"role":"user","content":[{"type":"text","text":"x","cache_control":{"type":"ephemeral"}}]}]}`,
		`{"cache_control":{"type":"ephemeral"},"stream":true,"stream_options":{}}`,
		`{"stream":true,"stream_options":null,"model":"m"}`,
		` { "model" : "m" , "cache_control" : { } } `,
		`{"stream":true,"stream_options":{"include_usage":false,"x":[1,2]},"cache_control":{}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req cache.Request
		if cache.ParseRequest(body, &req) != nil {
			return
		}
		var client map[string]json.RawMessage
		if json.Unmarshal(body, &client) != nil {
			return // duplicate keys and the like: not what this checks
		}
		keep := false
		if req.CacheControl.Present {
			var cc struct{ Type string }
			json.Unmarshal(req.CacheControl.Value, &cc)
			keep = cc.Type == "ephemeral"
		}
		stream := string(req.Stream.Value) == "true"
		force := stream && !wantsUsage(req.StreamOptions.Value)
		orig := bytes.Clone(body)
		out, _ := upstreamBody(body, &req, !keep, force)
		if !bytes.Equal(body, orig) {
			t.Fatal("upstreamBody modified its input")
		}
		var got map[string]json.RawMessage
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("upstream body is not a JSON object: %v\n in %s\nout %s", err, body, out)
		}
		if _, ok := got["cache_control"]; ok && !keep {
			t.Fatalf("cache_control went upstream: %s", out)
		}
		if !keep {
			delete(client, "cache_control")
		}
		for k, v := range client {
			if k == "stream_options" && force {
				continue
			}
			if !bytes.Equal(got[k], v) {
				t.Fatalf("member %s changed: %s -> %s", k, v, got[k])
			}
		}
		soObject := !req.StreamOptions.Present || bytes.HasPrefix(bytes.TrimSpace(req.StreamOptions.Value), []byte("{"))
		if force && soObject && !wantsUsage(got["stream_options"]) {
			t.Fatalf("usage not forced: %s", out)
		}
		if len(got) != len(client) && !(force && !req.StreamOptions.Present && len(got) == len(client)+1) {
			t.Fatalf("members: %d in, %d out: %s", len(client), len(got), out)
		}
	})
}

// FuzzWellFormed: the one-pass reading of an answer decides as encoding/json does, and only
// hands over to encoding/json where the two could differ.
func FuzzWellFormed(f *testing.F) {
	for _, s := range []string{
		completionJSON,
		`{"choices":[{"message":{},"finish_reason":"stop"}]}`,
		`{"choices":[{"message":{},"finish_reason":"error"}]}`,
		`{"choices":[{"message":{},"finish_reason":"\u0065rror"}]}`,
		`{"choices":[{"message":{},"finish_reason":null}]}`,
		`{"choices":[{"message":{},"finish_reason":""}]}`,
		`{"choices":[{"message":{},"finish_reason":1}]}`,
		`{"choices":[{"message":{}}]}`,
		`{"choices":[{"message":[],"finish_reason":"stop"}]}`,
		`{"choices":[null]}`, `{"choices":[1]}`, `{"choices":[]}`, `{"choices":null}`, `{"choices":{}}`,
		`{"CHOICES":[{"Message":{},"Finish_Reason":"length"}]}`,
		`{"choices":[{"message":{},"finish_reason":"stop","MESSAGE":1}]}`,
		`{"choices":[{"message":{},"finish_reason":"stop"}],"error":null}`,
		`{"choices":[{"message":{},"finish_reason":"stop"}],"error":{"message":"x"}}`,
		`{"error":{},"Error":null,"choices":[{"message":{},"finish_reason":"stop"}]}`,
		`{"choices":[{"me\u0073sage":{},"finish_reason":"stop"}]}`,
		`{"choiceſ":[{"message":{},"finish_reason":"stop"}]}`,
		`{"choices":[{"message":{},"fınısh_reason":"stop"}]}`,
		` null `, `[]`, `"x"`, ``, `{"choices":[{"message":{},"finish_reason":"stop"}]} x`, `{"choices":[`,
		`{"ChoiCes":[{"messAge":{},"finish_reAson":"`, `{"choices":[{"message":{},"finish_reason":"stop"},`,
		`{"choices":[{"message":{},"finish_reason":"stop"},{"message":{},"finish_reason":"error"}]}`,
		`{"choices":[{"message":{},"finish_reason":"stop"}],"choices":{}}`,
		`{"usage":{"prompt_tokens":3,"completion_tokens":4},"choices":[{"message":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":6}}`,
		`{"Usage":{"prompt_tokens":3,"completion_tokens":4},"choices":[{"message":{},"finish_reason":"stop"}]}`,
		`{"choices":[{"message":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":3}}`,
		`{"choices":[{"message":{},"finish_reason":"stop"}],"usage":null}`,
		`{"choiceſ":1,"choices":[{"message":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want := wellFormedJSON(b)
		if got := wellFormed(b); got != want {
			t.Fatalf("wellFormed(%q) = %v, encoding/json says %v", b, got, want)
		}
		if ok, sure, _ := scanWellFormed(b); sure && ok != want {
			t.Fatalf("scanWellFormed(%q) = %v (sure), encoding/json says %v", b, ok, want)
		}
		// The usage read in the same pass is the one usageOf reads.
		var wantU usage
		if want {
			wantU.prompt, wantU.completion, wantU.known = usageOf(b)
		}
		if ok, u := wellFormedUsage(b); ok != want || u != wantU {
			t.Fatalf("wellFormedUsage(%q) = %v %+v, want %v %+v", b, ok, u, want, wantU)
		}
	})
}

// FuzzSemanticParts: reading the partition and prompt from the parsed request gives what
// encoding/json gives, and hands over to it only where the two could differ.
func FuzzSemanticParts(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","messages":[{"role":"user","content":"What is 2 times 7?"}]}`,
		`{"model":"m","temperature":0.5,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hi"}],"stream":true}`,
		`{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"content":"c","name":"x","role":"user"}],"model":"m"}`,
		`{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}`,
		`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}`,
		`{"messages":[{"Role":"user","CONTENT":"x"}]}`,
		`{"messages":[{"role":"user","role":"assistant","content":"x"}]}`,
		`{"messages":[{"role":"\u0075ser","content":"caf\u00e9 <b>"}]}`,
		`{"messages":[{"role":"user","content":"x\ud800"}]}`,
		`{"messages":[{"role":"user","content":null}]}`, `{"messages":[{"role":"user"}]}`,
		`{"messages":[{"role":1,"content":"x"}]}`, `{"messages":[null]}`, `{"messages":[1]}`,
		`{"messages":[]}`, `{"messages":null}`, `{"messages":{}}`, `{"model":"m"}`,
		`{"messages":[],"messages":[{"role":"user","content":"x"}]}`,
		`{"m\u0065ssages":[{"role":"user","content":"x"}],"user":"u","cache_control":{"type":"default"}}`,
		`{"messages":[{"role":"user","content":"x","cont\u0065nt":"y"}]}`,
		`{"messages":[{"role":"user","content":"x","ſ":1}]}`,
	} {
		f.Add([]byte(s))
	}
	const target = "POST http://up/v1/chat/completions"
	f.Fuzz(func(t *testing.T, body []byte) {
		var req cache.Request
		if cache.ParseRequest(body, &req) != nil {
			return
		}
		wp, wpr, wok := semanticPartsJSON(target, body, &req)
		p, pr, ok, sure := scanSemanticParts(target, &req)
		if sure && (ok != wok || p != wp || pr != wpr) {
			t.Fatalf("%s:\nscan %v %q %q\njson %v %q %q", body, ok, p, pr, wok, wp, wpr)
		}
		h := &Handler{}
		sq := h.semanticQuery("ns", target, body, &req, 0.9)
		if sq.ok != wok || sq.q.Partition != wp || sq.q.Prompt != wpr {
			t.Fatalf("%s: semanticQuery %+v, want %v %q %q", body, sq, wok, wp, wpr)
		}
	})
}

// TestHotReadsSkipEncodingJSON: the common shapes of requests and answers are read in one
// pass, never handed to encoding/json.
func TestHotReadsSkipEncodingJSON(t *testing.T) {
	for _, body := range []string{
		chatBody(""), streamBody("", ""),
		`{"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"hi"}],"name":"ann"}]}`,
	} {
		var req cache.Request
		if err := cache.ParseRequest([]byte(body), &req); err != nil {
			t.Fatal(err)
		}
		if _, _, ok, sure := scanSemanticParts("t", &req); !ok || !sure {
			t.Errorf("%s: scanSemanticParts ok=%v sure=%v, want both", body, ok, sure)
		}
	}
	for _, answer := range []string{completionJSON, xToolAnswer} {
		if ok, sure, _ := scanWellFormed([]byte(answer)); !ok || !sure {
			t.Errorf("%s: scanWellFormed ok=%v sure=%v, want both", answer, ok, sure)
		}
	}
}

// FuzzMentionsToolCalls holds the underscore search to its definition: either quoted member
// name anywhere in the bytes.
func FuzzMentionsToolCalls(f *testing.F) {
	for _, s := range []string{`{"choices":[{"message":{"tool_calls":[]}}]}`, `"function_call"`, `"function__call"`,
		`_"tool_calls"_`, `"tool_calls`, `tool_calls"`, `"usage":{"prompt_tokens":1}`, `"tool_"tool_calls"`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want := bytes.Contains(b, []byte(`"tool_calls"`)) || bytes.Contains(b, []byte(`"function_call"`))
		if got := mentionsToolCalls(b); got != want {
			t.Fatalf("mentionsToolCalls(%q) = %v, want %v", b, got, want)
		}
	})
}
