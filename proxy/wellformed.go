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
// It reads the answer once: the choices are judged as the walk passes them, not skipped and
// read again.
func scanWellFormed(b []byte) (ok, sure bool, usageVal []byte) {
	v := trimJSONSpace(b)
	if len(v) == 0 || v[0] != '{' {
		return false, true, nil // not an object: encoding/json fails, or (null) finds no choices
	}
	var errVal []byte // the last member named error, as encoding/json keeps it
	var choices choicesVerdict
	plain := true
	end, err := jsonscan.WalkObject(v, 0, 0, func(k []byte, at int) (int, error) {
		plain = plain && plainName(k)
		if asciiFold(k, "choices") {
			end, c, err := readChoices(v, at)
			choices = c
			return end, err
		}
		end, err := jsonscan.SkipValue(v, at, 1)
		if asciiFold(k, "error") {
			errVal = v[at:end]
		}
		if usageVal == nil && string(k) == "usage" {
			usageVal = v[at:end]
		}
		return end, err
	})
	if err != nil || end != len(v) || !plain {
		return false, false, nil // a name encoding/json may read otherwise; or too deep for jsonscan
	}
	if !isNull(errVal) || !choices.array {
		return false, true, nil
	}
	return choices.ok, choices.sure, usageVal
}

// choicesVerdict is what one choices member says: whether it is an array, and whether its
// choices are well formed (ok false for none), as readChoice judges the first that fails.
type choicesVerdict struct{ array, ok, sure bool }

// readChoices reads the choices value at v[at] and returns the index past it with its verdict.
func readChoices(v []byte, at int) (int, choicesVerdict, error) {
	if at >= len(v) || v[at] != '[' {
		end, err := jsonscan.SkipValue(v, at, 1)
		return end, choicesVerdict{}, err
	}
	c := choicesVerdict{array: true, sure: true}
	n := 0
	end, err := jsonscan.WalkArray(v, at, 1, func(i int) (int, error) {
		if n++; n == 1 || (c.ok && c.sure) {
			end, ok, sure, err := readChoice(v, i)
			c.ok, c.sure = ok, sure
			return end, err
		}
		return jsonscan.SkipValue(v, i, 2) // a choice already failed: only validated
	})
	if n == 0 {
		c.ok = false
	}
	return end, c, err
}

// readChoice judges one element of choices, at v[i]: an object with a message object and a
// string finish_reason other than "" and "error". It returns the index past the element.
func readChoice(v []byte, i int) (end int, ok, sure bool, err error) {
	if i >= len(v) || v[i] != '{' {
		end, err = jsonscan.SkipValue(v, i, 2)
		return end, false, true, err // null decodes to a choice without a message; the rest fail to decode
	}
	var msg, reason []byte // the last of each, as encoding/json keeps them
	plain := true
	end, err = jsonscan.WalkObject(v, i, 2, func(k []byte, at int) (int, error) {
		plain = plain && plainName(k)
		end, err := jsonscan.SkipValue(v, at, 3)
		switch {
		case asciiFold(k, "message"):
			msg = v[at:end]
		case asciiFold(k, "finish_reason"):
			reason = v[at:end]
		}
		return end, err
	})
	if err != nil || !plain {
		return end, false, false, err
	}
	ok, sure = choiceFields(msg, reason)
	return end, ok, sure, err
}

// choiceFields judges a choice by its message and finish_reason values (nil when absent).
func choiceFields(msg, reason []byte) (ok, sure bool) {
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
