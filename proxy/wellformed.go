package proxy

import (
	"bytes"
	"encoding/json"

	"github.com/zest-proxy/zest/internal/jsonscan"
	"github.com/zest-proxy/zest/proxy/sse"
)

// wellFormed reports whether a 200 answer is a chat.completion zest may store: a JSON object
// with no top-level error, a non-empty choices list, and every choice carrying a message
// object and a finish_reason other than "error". Anything else is relayed, never stored
// (gateways such as OpenRouter report failures inside a 200 this way).
//
// It decides exactly as encoding/json decoding into wellFormedJSON's structs does (member
// names matched case-insensitively, the last of repeated names winning), in one pass without
// reflection; only input where the two readers could differ (a member name that is not plain
// ASCII, nesting deeper than jsonscan follows) goes to the encoding/json version.
func wellFormed(b []byte) bool {
	ok, sure, _ := scanWellFormed(b)
	if !sure {
		return wellFormedJSON(b)
	}
	return ok
}

// wellFormedUsage is wellFormed(b) and, when it holds, usageOf(b), from one reading of the
// answer's top-level members where that reading is sure (the usage member is small; the
// choices before it are not).
func wellFormedUsage(b []byte) (ok bool, u usage) {
	ok, sure, usageVal := scanWellFormed(b)
	switch {
	case !sure:
		if !wellFormedJSON(b) {
			return false, u
		}
		u.prompt, u.completion, u.known = usageOf(b)
	case !ok:
		return false, u
	case usageVal != nil:
		u.prompt, u.completion, u.known = sse.UsageCounts(usageVal)
	}
	return true, u
}

// scanWellFormed is wellFormed read with jsonscan; sure is false when encoding/json must decide.
// usageVal is the first member named exactly "usage", as usageOf reads it, when sure and ok.
func scanWellFormed(b []byte) (ok, sure bool, usageVal []byte) {
	v := trimJSONSpace(b)
	if len(v) == 0 || v[0] != '{' {
		return false, true, nil // not an object: encoding/json fails, or (null) finds no choices
	}
	var top [2][]byte // error, choices
	if !foldMembersFirst(v, []string{"error", "choices"}, top[:], false, "usage", &usageVal) {
		return false, false, nil // a name encoding/json may read otherwise; or too deep for jsonscan
	}
	errVal, choices := top[0], top[1]
	if !isNull(errVal) || len(choices) == 0 || choices[0] != '[' {
		return false, true, nil
	}
	e := jsonscan.NewElems(choices)
	n := 0
	for {
		c, more := e.Next()
		if !more {
			break
		}
		n++
		ok, sure := choiceWellFormed(c)
		if !ok || !sure {
			return ok, sure, nil
		}
	}
	return n > 0, true, usageVal
}

// choiceWellFormed checks one element of choices: an object with a message object and a
// string finish_reason other than "" and "error".
func choiceWellFormed(c []byte) (ok, sure bool) {
	if c[0] != '{' {
		return false, true // null decodes to a choice without a message; the rest fail to decode
	}
	var fields [2][]byte // message, finish_reason
	if !foldMembers(c, []string{"message", "finish_reason"}, fields[:], false) {
		return false, false
	}
	msg, reason := fields[0], fields[1]
	if len(msg) == 0 || msg[0] != '{' || len(reason) == 0 || reason[0] != '"' {
		return false, true // a null finish_reason decodes to "", anything else but a string fails
	}
	text := reason[1 : len(reason)-1]
	if bytes.IndexByte(text, '\\') >= 0 {
		var s string
		if json.Unmarshal(reason, &s) != nil {
			return false, true
		}
		text = []byte(s)
	}
	return len(text) > 0 && string(text) != "error", true
}

// foldMembers reads the members of the object obj named names (lower-case ASCII) into vals,
// as encoding/json decodes into struct fields: names matched by case folding, the last of
// repeated members winning. With unique, a member name given twice (which a map would keep
// once) makes it unsure. sure is false too for a name that is not plain ASCII (encoding/json
// folds Unicode too) and for a syntax error.
func foldMembers(obj []byte, names []string, vals [][]byte, unique bool) (sure bool) {
	return foldMembersFirst(obj, names, vals, unique, "", nil)
}

// foldMembersFirst is foldMembers that also sets *first to the value of the first member named
// exactly exact (no folding), when first is not nil.
func foldMembersFirst(obj []byte, names []string, vals [][]byte, unique bool, exact string, first *[]byte) (sure bool) {
	var seen [8][]byte
	keys := seen[:0]
	m := jsonscan.NewMembers(obj)
	for k, v, more := m.Next(); more; k, v, more = m.Next() {
		if !plainName(k) {
			return false
		}
		if unique {
			for _, s := range keys {
				if bytes.Equal(s, k) {
					return false
				}
			}
			keys = append(keys, k)
		}
		for i, name := range names {
			if asciiFold(k, name) {
				vals[i] = v
			}
		}
		if first != nil && *first == nil && string(k) == exact {
			*first = v
		}
	}
	return m.Err() == nil
}

// plainName reports a member name of printable ASCII without escapes, which encoding/json
// matches to a field name by ASCII case folding alone.
func plainName(k []byte) bool {
	for _, c := range k {
		if c < 0x20 || c >= 0x80 || c == '\\' {
			return false
		}
	}
	return true
}

// asciiFold reports whether k equals the lower-case ASCII name under ASCII case folding.
func asciiFold(k []byte, name string) bool {
	if len(k) != len(name) {
		return false
	}
	for i := range len(k) {
		c := k[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != name[i] {
			return false
		}
	}
	return true
}

func trimJSONSpace(b []byte) []byte {
	b = b[jsonscan.SkipWS(b, 0):]
	for len(b) > 0 && jsonscan.IsWS(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// wellFormedJSON is wellFormed with encoding/json: the definition scanWellFormed follows.
func wellFormedJSON(b []byte) bool {
	var v struct {
		Error   json.RawMessage `json:"error"`
		Choices json.RawMessage `json:"choices"`
	}
	if json.Unmarshal(b, &v) != nil || !isNull(v.Error) {
		return false
	}
	var choices []struct {
		Message      json.RawMessage `json:"message"`
		FinishReason json.RawMessage `json:"finish_reason"`
	}
	if len(v.Choices) == 0 || v.Choices[0] != '[' || json.Unmarshal(v.Choices, &choices) != nil || len(choices) == 0 {
		return false
	}
	for _, c := range choices {
		var reason string
		if len(c.Message) == 0 || c.Message[0] != '{' || json.Unmarshal(c.FinishReason, &reason) != nil ||
			reason == "" || reason == "error" {
			return false
		}
	}
	return true
}

// hasErrorMember reports an SSE data payload that is a JSON object with a non-null top-level
// "error" (a failure reported mid-stream).
func hasErrorMember(data []byte) bool {
	if !bytes.Contains(data, []byte(`"error"`)) {
		return false
	}
	var v struct {
		Error json.RawMessage `json:"error"`
	}
	return json.Unmarshal(data, &v) == nil && !isNull(v.Error)
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}
