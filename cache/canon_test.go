package cache

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"testing"
)

func canonString(t *testing.T, body string) string {
	t.Helper()
	var r Request
	if err := ParseRequest([]byte(body), &r); err != nil {
		t.Fatalf("ParseRequest(%s): %v", body, err)
	}
	return string(r.Canonical)
}

func TestCanonicalEquivalentBodies(t *testing.T) {
	base := `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":1}`
	same := []struct{ name, body string }{
		{"key order and spaces", "{ \"temperature\" : 1.0,\n \"messages\":[{\"content\":\"hi\",\"role\":\"user\"}], \"model\":\"gpt-4o\" }"},
		{"number spellings", `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":1E0}`},
		{"string escapes", `{"model":"gpt-4\u006f","messages":[{"role":"user","content":"h\u0069"}],"temperature":1}`},
		{"stream and options ignored", `{"stream":true,"stream_options":{"include_usage":true},"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":1}`},
		{"user and cache_control ignored", `{"user":"u1","cache_control":{"type":"no_store"},"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":1}`},
	}
	want := canonString(t, base)
	for _, tc := range same {
		t.Run(tc.name, func(t *testing.T) {
			if got := canonString(t, tc.body); got != want {
				t.Errorf("canonical differs:\n got %s\nwant %s", got, want)
			}
		})
	}
	different := []struct{ name, body string }{
		{"temperature", `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":0.5}`},
		{"model", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"temperature":1}`},
		{"content", `{"model":"gpt-4o","messages":[{"role":"user","content":"hi!"}],"temperature":1}`},
		{"seed", `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":1,"seed":7}`},
		{"tools", `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":1,"tools":[]}`},
		{"nested cache_control kept", `{"model":"gpt-4o","messages":[{"role":"user","content":"hi","cache_control":{"type":"ephemeral"}}],"temperature":1}`},
		{"array order", `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"},{"role":"user","content":"x"}],"temperature":1}`},
	}
	for _, tc := range different {
		t.Run("differs/"+tc.name, func(t *testing.T) {
			if got := canonString(t, tc.body); got == want {
				t.Errorf("canonical of %s equals the base", tc.body)
			}
		})
	}
}

func TestParseRequestFields(t *testing.T) {
	body := []byte(`{"model":"m","stream":true,"cache_control":{"type":"no_cache"},"messages":[],"user":"bob","max_tokens":5}`)
	var r Request
	if err := ParseRequest(body, &r); err != nil {
		t.Fatal(err)
	}
	if string(r.Model.Value) != `"m"` || string(r.Stream.Value) != "true" || string(r.User.Value) != `"bob"` || string(r.MaxTokens.Value) != "5" {
		t.Errorf("fields: model=%s stream=%s user=%s max_tokens=%s", r.Model.Value, r.Stream.Value, r.User.Value, r.MaxTokens.Value)
	}
	if string(r.CacheControl.Value) != `{"type":"no_cache"}` {
		t.Errorf("cache_control = %s", r.CacheControl.Value)
	}
	got := string(Without(body, r.CacheControl))
	if want := `{"model":"m","stream":true,"messages":[],"user":"bob","max_tokens":5}`; got != want {
		t.Errorf("Without = %s, want %s", got, want)
	}
}

func TestWithout(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"cache_control":{"type":"x"}}`, `{}`},
		{`{"a":1, "cache_control":{"type":"x"} }`, `{"a":1 }`},
		{`{ "cache_control" : 1 , "a":1}`, `{  "a":1}`},
		{`{"a":1,"cache_control":1,"b":2}`, `{"a":1,"b":2}`},
	} {
		var r Request
		if err := ParseRequest([]byte(tc.in), &r); err != nil {
			t.Fatal(err)
		}
		out := Without([]byte(tc.in), r.CacheControl)
		if string(out) != tc.want {
			t.Errorf("Without(%s) = %s, want %s", tc.in, out, tc.want)
		}
		if !json.Valid(out) {
			t.Errorf("Without(%s) is not valid JSON", tc.in)
		}
	}
}

func TestParseRequestRejects(t *testing.T) {
	for _, body := range []string{``, `[]`, `{"a":}`, `{"a":1}x`, `{"a":01}`, `{"a":"\x01"}`, `{"a":tru}`, `{"a" 1}`, `{"a":1,}`, `"s"`} {
		var r Request
		if err := ParseRequest([]byte(body), &r); !errors.Is(err, ErrSyntax) {
			t.Errorf("ParseRequest(%q) = %v, want ErrSyntax", body, err)
		}
	}
}

// TestLoneSurrogatesDistinct: strings the upstream sees as different never share a
// canonical form, while spellings of one string still do.
func TestLoneSurrogatesDistinct(t *testing.T) {
	canon := func(s string) string {
		var r Request
		if err := ParseRequest([]byte(`{"c":"`+s+`"}`), &r); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		return string(r.Canonical)
	}
	seen := map[string]string{}
	for _, s := range []string{`\ud800`, `\udc00`, `\ufffd`, `\ud800\udc00`, `a\udbff`} {
		c := canon(s)
		if other, dup := seen[c]; dup {
			t.Errorf("%s and %s share the canonical form %q", s, other, c)
		}
		seen[c] = s
	}
	if canon(`\ud800`) != canon(`\uD800`) || canon(`\ud83d\ude00`) != canon("\U0001F600") {
		t.Error("two spellings of one string differ")
	}
}

// TestRepeatedCacheControl: every top-level cache_control is recorded, the last one wins.
func TestRepeatedCacheControl(t *testing.T) {
	var r Request
	body := `{"cache_control":{"type":"a"},"m":1,"cache_control":{"type":"b"}}`
	if err := ParseRequest([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	if string(r.CacheControl.Value) != `{"type":"b"}` || len(r.EarlierCacheControl) != 1 ||
		string(r.EarlierCacheControl[0].Value) != `{"type":"a"}` {
		t.Errorf("last %s, earlier %v", r.CacheControl.Value, r.EarlierCacheControl)
	}
}

func TestKeySeparatesInputs(t *testing.T) {
	c := []byte(`{"a":1}`)
	keys := map[string]string{
		"base":      Key("ns", "POST http://u/v1/chat/completions", c),
		"namespace": Key("ns2", "POST http://u/v1/chat/completions", c),
		"upstream":  Key("ns", "POST http://v/v1/chat/completions", c),
		"path":      Key("ns", "POST http://u/v1/completions", c),
		"query":     Key("ns", "POST http://u/v1/chat/completions?api-version=2", c),
		"body":      Key("ns", "POST http://u/v1/chat/completions", []byte(`{"a":2}`)),
		"shifted":   Key("n", "s\x00POST http://u/v1/chat/completions", c),
	}
	seen := map[string]string{}
	for name, k := range keys {
		if len(k) != 64 {
			t.Errorf("%s: key %q is not hex SHA-256", name, k)
		}
		if other, dup := seen[k]; dup {
			t.Errorf("%s and %s share key %s", name, other, k)
		}
		seen[k] = name
	}
}

// reformat writes v (decoded with UseNumber) with keys in reverse order, extra whitespace,
// escaped characters and alternative number spellings, to test that the canonical form ignores
// all of them.
func reformat(buf *bytes.Buffer, v any, rng *rand.Rand) {
	ws := func() {
		buf.WriteString([]string{"", " ", "\n\t", "  "}[rng.IntN(4)])
	}
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Sort(sort.Reverse(sort.StringSlice(keys)))
		buf.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			ws()
			writeEscaped(buf, k)
			ws()
			buf.WriteByte(':')
			ws()
			reformat(buf, x[k], rng)
			ws()
		}
		buf.WriteByte('}')
	case []any:
		buf.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			ws()
			reformat(buf, e, rng)
		}
		buf.WriteByte(']')
	case string:
		writeEscaped(buf, x)
	case json.Number:
		s := x.String()
		if f, err := strconv.ParseFloat(s, 64); err == nil && rng.IntN(2) == 0 && bytes.ContainsAny([]byte(s), ".eE") {
			s = strconv.FormatFloat(f, 'e', -1, 64)
		}
		buf.WriteString(s)
	default:
		b, _ := json.Marshal(x)
		buf.Write(b)
	}
}

func writeEscaped(buf *bytes.Buffer, s string) {
	buf.WriteByte('"')
	for _, r := range s {
		if r < 0x80 && r != '"' && r != '\\' && r >= 0x20 && r%3 != 0 {
			buf.WriteRune(r)
			continue
		}
		if r > 0xFFFF {
			b, _ := json.Marshal(string(r))
			buf.Write(b[1 : len(b)-1])
			continue
		}
		buf.WriteString(`\u`)
		buf.WriteString(strconv.FormatInt(int64(r)+0x10000, 16)[1:])
	}
	buf.WriteByte('"')
}

func TestCanonicalMessages(t *testing.T) {
	msgs := `[{"role":"user","content":"hi"}]`
	for _, tc := range []struct {
		body string
		ok   bool
	}{
		{`{"model":"m","messages":` + msgs + `}`, true},
		{`{"messages":` + msgs + `,"model":"m"}`, true},
		{`{"a":1,"messages":` + msgs + `,"z":2}`, true},
		{`{"messages":` + msgs + `}`, true},
		{`{"stream":true,"messages":` + msgs + `,"user":"u"}`, true},
		{`{"m\u0065ssages":` + msgs + `,"model":"m"}`, true},
		{` { "model" : "m" , "messages" : [ { "content" : "hi" , "role" : "user" } ] } `, true},
		{`{"model":"m"}`, false},
		{`{"messages":[],"messages":` + msgs + `}`, false},
		{`{"messages":[{"role":"system","content":[1,[2]]}, {"role":"user","content":"a"} ]}`, true},
		{`{"messages":[ [1,2], {"content":{"x":[3]}} ],"model":"m"}`, true},
		{`{"messages":{"a":[1,2]}}`, true}, // an object: no last message
		{`{"messages":[]}`, true},
	} {
		var r Request
		if err := ParseRequest([]byte(tc.body), &r); err != nil {
			t.Fatal(err)
		}
		if _, _, _, ok := r.CanonicalMessages(); ok != tc.ok {
			t.Errorf("%s: ok = %v, want %v", tc.body, ok, tc.ok)
		}
		checkCanonicalMessages(t, []byte(tc.body), &r)
	}
}

// FuzzCanonical checks that the canonical form agrees with encoding/json on validity, is itself
// valid and idempotent, and that bodies written differently but meaning the same give one key.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":0.7}`,
		`{"a":[1,2.50,-0,1e3,{"b":null,"a":true}],"s":"\u00e9\n\"x\"","n":-1.5E-3}`,
		`{"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"seed":123456789012345}`,
		`{"x":"\ud83d\ude00","y":"\/"}`,
		`{}`,
		`{"stream":false,"messages":[{"role":"user","content":"a"}],"user":"u","cache_control":{}}`,
	} {
		f.Add([]byte(s), uint64(1))
	}
	f.Fuzz(func(t *testing.T, body []byte, seed uint64) {
		var r Request
		err := ParseRequest(body, &r)
		var top any
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		jerr := dec.Decode(&top)
		_, isObj := top.(map[string]any)
		validObj := json.Valid(body) && jerr == nil && isObj
		if (err == nil) != validObj {
			t.Fatalf("ParseRequest err=%v but encoding/json valid object=%v for %q", err, validObj, body)
		}
		if err != nil {
			return
		}
		if !json.Valid(r.Canonical) {
			t.Fatalf("canonical form is not valid JSON: %q", r.Canonical)
		}
		again, err := Canonical(nil, r.Canonical)
		if err != nil || !bytes.Equal(again, r.Canonical) {
			t.Fatalf("canonical not idempotent: %q -> %q (%v)", r.Canonical, again, err)
		}
		checkCanonicalMessages(t, body, &r)
		if !bytes.Equal(body, bytes.ToValidUTF8(body, nil)) {
			return // invalid UTF-8 is decoded lossily by encoding/json; the re-spelling below would differ
		}
		if hasDuplicateKeys(body) {
			return // encoding/json keeps the last duplicate; the re-spelling would drop one
		}
		if bytes.Contains(bytes.ToLower(body), []byte(`\ud`)) {
			return // encoding/json reads a lone surrogate as U+FFFD; the key keeps them distinct
		}
		var buf bytes.Buffer
		reformat(&buf, top, rand.New(rand.NewPCG(seed, seed^0x9e37)))
		var r2 Request
		if err := ParseRequest(buf.Bytes(), &r2); err != nil {
			t.Fatalf("reformatted body rejected: %v\n%s", err, buf.Bytes())
		}
		k1 := Key("ns", "POST u/p", r.Canonical)
		k2 := Key("ns", "POST u/p", r2.Canonical)
		if k1 != k2 {
			t.Fatalf("equal bodies, different keys:\n%s\n%s\ncanon1 %s\ncanon2 %s", body, buf.Bytes(), r.Canonical, r2.Canonical)
		}
	})
}

// checkCanonicalMessages checks CanonicalMessages of a parsed body against parsing the body
// without its messages member and canonicalising the member's value on its own.
func checkCanonicalMessages(t *testing.T, body []byte, r *Request) {
	t.Helper()
	var rest Request
	if err := ParseRequest(Without(body, r.Messages), &rest); err != nil {
		t.Fatalf("body without messages: %v", err)
	}
	before, value, after, ok := r.CanonicalMessages()
	if want := r.Messages.Present && !rest.Messages.Present; ok != want {
		t.Fatalf("CanonicalMessages of %q: ok = %v, want %v", body, ok, want)
	}
	if !ok {
		return
	}
	if got := string(before) + string(after); got != string(rest.Canonical) {
		t.Fatalf("CanonicalMessages of %q: rest %q, want %q", body, got, rest.Canonical)
	}
	want, err := Canonical(nil, r.Messages.Value)
	if err != nil || string(value) != string(want) {
		t.Fatalf("CanonicalMessages of %q: value %q, want %q (%v)", body, value, want, err)
	}
	// LastMessage: the array's last element as written, and where its canonical form starts.
	var elems []json.RawMessage
	isArray := json.Unmarshal(r.Messages.Value, &elems) == nil && r.Messages.Value[0] == '['
	raw, at, ok := r.LastMessage()
	if wantOK := isArray && len(elems) > 0; ok != wantOK {
		t.Fatalf("LastMessage of %q: ok = %v, want %v", body, ok, wantOK)
	}
	if !ok {
		return
	}
	if last := elems[len(elems)-1]; string(raw) != string(last) {
		t.Fatalf("LastMessage of %q: raw %q, want %q", body, raw, last)
	}
	if lastCanon, _ := Canonical(nil, raw); string(value[at:len(value)-1]) != string(lastCanon) {
		t.Fatalf("LastMessage of %q: canonical at %d is %q, want %q", body, at, value[at:len(value)-1], lastCanon)
	}
}

// hasDuplicateKeys reports whether any object in the JSON text repeats a member name.
func hasDuplicateKeys(body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	type frame struct {
		obj     bool
		keys    map[string]bool
		wantKey bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				stack = append(stack, &frame{obj: true, keys: map[string]bool{}, wantKey: true})
				continue
			case '[':
				stack = append(stack, &frame{})
				continue
			default:
				stack = stack[:len(stack)-1]
			}
		case string:
			if n := len(stack); n > 0 && stack[n-1].obj && stack[n-1].wantKey {
				if stack[n-1].keys[v] {
					return true
				}
				stack[n-1].keys[v] = true
				stack[n-1].wantKey = false
				continue
			}
		}
		if n := len(stack); n > 0 && stack[n-1].obj {
			stack[n-1].wantKey = true
		}
	}
}

// roundTrip is what number writes for a non-integer through float64, plainDecimal aside.
func roundTrip(lit string) string {
	f, _ := strconv.ParseFloat(lit, 64)
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		if f == 0 {
			f = 0
		}
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// TestPlainDecimal: every decimal plainDecimal lets through as written is what the round trip
// through float64 writes, over random decimals at the edges of its rules (integer digits, zeros
// after the point, trailing zeros, significant digits, signs); and the usual sampling
// parameters are taken.
func TestPlainDecimal(t *testing.T) {
	for _, tc := range []struct {
		lit   string
		plain bool
	}{
		{"0.7", true}, {"0.25", true}, {"-0.5", true}, {"123456.5", true}, {"0.0001", true},
		{"1.50", false}, {"1234567.5", false}, {"0.00001", false}, {"1.5e2", false}, {"-0.0", false},
		{"0.1234567890123456", false}, {"1.23456789012345", true},
	} {
		if got := plainDecimal([]byte(tc.lit)); got != tc.plain {
			t.Errorf("plainDecimal(%s) = %v, want %v", tc.lit, got, tc.plain)
		}
		if tc.plain && roundTrip(tc.lit) != tc.lit {
			t.Errorf("%s: the round trip writes %s", tc.lit, roundTrip(tc.lit))
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	digits := func(n int, first byte) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('0' + r.IntN(10))
		}
		if n > 0 && first != 0 {
			b[0] = first
		}
		return string(b)
	}
	taken := 0
	for range 200_000 {
		var lit string
		if r.IntN(3) == 0 {
			lit = "0." + strings.Repeat("0", r.IntN(6)) + digits(1+r.IntN(17), 0)
		} else {
			lit = digits(1+r.IntN(8), byte('1'+r.IntN(9))) + "." + digits(1+r.IntN(17), 0)
		}
		if r.IntN(2) == 0 {
			lit = "-" + lit
		}
		if !plainDecimal([]byte(lit)) {
			continue
		}
		taken++
		if got := roundTrip(lit); got != lit {
			t.Fatalf("plainDecimal takes %s, which the round trip writes as %s", lit, got)
		}
	}
	if taken < 10_000 {
		t.Fatalf("only %d of the random decimals taken: the test no longer reaches the edges", taken)
	}
}
