package sse

import (
	"fmt"

	"github.com/zest-proxy/zest/internal/jsonscan"
)

// replayChoice holds raw slices of one stored choice.
type replayChoice struct {
	index    int
	raw      []byte // the whole choice object
	message  []byte // the message object (nil when absent)
	logprobs []byte // nil when absent or null
	finish   []byte // nil when absent
	extra    bool   // the choice has members other than the above
}

func parseReplayChoice(v []byte, pos int) (replayChoice, error) {
	c := replayChoice{index: pos, raw: v}
	m := jsonscan.NewMembers(v)
	for {
		k, val, ok := m.Next()
		if !ok {
			break
		}
		switch string(k) {
		case "index":
			n, ok := parseInt(val)
			if !ok {
				return c, fmt.Errorf("%w: choice index %s", ErrMalformed, val)
			}
			c.index = n
		case "message", "delta":
			if len(val) > 0 && val[0] == '{' {
				c.message = val
			}
		case "logprobs":
			if !isNull(val) {
				c.logprobs = val
			}
		case "finish_reason":
			c.finish = val
		default:
			c.extra = true
		}
	}
	return c, m.Err()
}

// appendChunks appends every event of this choice (see AppendReplay).
func (c *replayChoice) appendChunks(b []byte, h *header) []byte {
	var content, refusal, toolCalls, fcArgs []byte
	var contentRaw []byte // a non-string, non-null content (e.g. an array of parts)
	contentIsStr := false
	role := []byte(`"assistant"`)

	// First chunk: role, content, refusal and the other members in order.
	var stack [12]kv
	var ms []kv
	if c.message != nil {
		ms, _ = collect(stack[:0], c.message) // validated by parseReplayChoice
	}
	for _, m := range ms {
		switch string(m.k) {
		case "role":
			if !isNull(m.v) {
				role = m.v
			}
		case "content":
			if s, ok := strContents(m.v); ok {
				content, contentIsStr = s, true
			} else {
				contentRaw = m.v
			}
		case "refusal":
			refusal, _ = strContents(m.v)
		case "tool_calls":
			toolCalls = m.v
		}
	}
	b = h.start(b, c.index)
	b = append(b, `"role":`...)
	b = append(b, role...)
	b = append(b, `,"content":`...)
	switch {
	case contentIsStr:
		b = append(b, `""`...)
	case contentRaw != nil && !isNull(contentRaw):
		b = append(b, contentRaw...)
	default:
		b = append(b, "null"...)
	}
	b = append(b, `,"refusal":null`...)
	for _, m := range ms {
		switch string(m.k) {
		case "role", "content", "refusal", "tool_calls":
			continue
		}
		b = append(b, ',', '"')
		b = append(b, m.k...)
		b = append(b, '"', ':')
		switch {
		case string(m.k) == "function_call" && len(m.v) > 0 && m.v[0] == '{':
			b, fcArgs = appendHeadObject(b, m.v, "arguments")
		case len(m.v) > 0 && m.v[0] == '"':
			b = append(b, `""`...)
		default:
			b = append(b, m.v...)
		}
	}
	b = h.end(b, nil, nil)

	// Text members, each split into pieces.
	lp := c.logprobs
	var kb [96]byte
	for _, m := range ms {
		switch string(m.k) {
		case "role", "content", "refusal", "tool_calls", "function_call":
			continue
		}
		if s, ok := strContents(m.v); ok && len(s) > 0 {
			open := append(append(append(kb[:0], '"'), m.k...), `":"`...)
			b = appendPieces(b, h, c.index, s, open, `"`, nil)
		}
	}
	b = appendPieces(b, h, c.index, content, []byte(`"content":"`), `"`, &lp)
	b = appendPieces(b, h, c.index, refusal, []byte(`"refusal":"`), `"`, &lp)
	b = appendPieces(b, h, c.index, fcArgs, []byte(`"function_call":{"arguments":"`), `"}`, nil)

	// Tool calls: a head delta each, then its arguments.
	if len(toolCalls) > 0 && toolCalls[0] == '[' {
		e := jsonscan.NewElems(toolCalls)
		for j := 0; ; j++ {
			t, ok := e.Next()
			if !ok {
				break
			}
			b = h.start(b, c.index)
			b = append(b, `"tool_calls":[{"index":`...)
			b = appendInt(b, j)
			var args []byte
			b, args = appendToolHead(b, t)
			b = append(b, "}]"...)
			b = h.end(b, nil, nil)
			open := append(appendInt(append(kb[:0], `"tool_calls":[{"index":`...), j), `,"function":{"arguments":"`...)
			b = appendPieces(b, h, c.index, args, open, `"}}]`, nil)
		}
	}

	// Finish chunk: empty delta, finish_reason, other choice members.
	finish := c.finish
	if finish == nil || isNull(finish) {
		finish = []byte(`"stop"`)
	}
	b = h.start(b, c.index)
	b = append(b, `},"logprobs":`...)
	if lp == nil {
		lp = []byte("null")
	}
	b = append(b, lp...)
	b = append(b, `,"finish_reason":`...)
	b = append(b, finish...)
	m := jsonscan.NewMembers(c.raw)
	for c.extra {
		k, val, ok := m.Next()
		if !ok {
			break
		}
		switch string(k) {
		case "index", "message", "delta", "logprobs", "finish_reason":
			continue
		}
		b = append(b, ',', '"')
		b = append(b, k...)
		b = append(b, '"', ':')
		b = append(b, val...)
	}
	b = append(b, "}]"...)
	if h.includeUsage {
		b = append(b, `,"usage":null`...)
	}
	return append(b, "}\n\n"...)
}

// appendToolHead appends the members of a stored tool call after its index:
// id, type, function with its name and empty arguments, then the rest. It
// returns the escaped arguments to stream afterwards.
func appendToolHead(b, t []byte) (out, args []byte) {
	m := jsonscan.NewMembers(t)
	for {
		k, val, ok := m.Next()
		if !ok {
			break
		}
		if string(k) == "index" {
			continue
		}
		b = append(b, ',', '"')
		b = append(b, k...)
		b = append(b, '"', ':')
		if string(k) == "function" && len(val) > 0 && val[0] == '{' {
			b, args = appendHeadObject(b, val, "arguments")
			continue
		}
		b = append(b, val...)
	}
	return b, args
}

// appendHeadObject appends the object obj with the string member named
// streamed replaced by "" and returns that member's escaped contents.
func appendHeadObject(b, obj []byte, streamed string) (out, contents []byte) {
	b = append(b, '{')
	m := jsonscan.NewMembers(obj)
	first := true
	for {
		k, val, ok := m.Next()
		if !ok {
			break
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, k...)
		b = append(b, '"', ':')
		if s, ok := strContents(val); ok && string(k) == streamed {
			contents = s
			b = append(b, `""`...)
			continue
		}
		b = append(b, val...)
	}
	return append(b, '}'), contents
}

// appendPieces appends one chunk per piece of the escaped string s, each
// delta being open + piece + close. When lp points to a non-nil logprobs
// object, it rides on the first piece and *lp is cleared.
func appendPieces(b []byte, h *header, index int, s, open []byte, close string, lp *[]byte) []byte {
	for i := 0; i < len(s); {
		j := pieceEnd(s, i)
		b = h.start(b, index)
		b = append(b, open...)
		b = append(b, s[i:j]...)
		b = append(b, close...)
		var l []byte
		if lp != nil {
			l, *lp = *lp, nil
		}
		b = h.end(b, l, nil)
		i = j
	}
	return b
}

// pieceEnd returns the end of the piece of s that starts at i.
func pieceEnd(s []byte, i int) int {
	start := i
	for i < len(s) {
		boundary := s[i] == ' ' || (s[i] == '\\' && i+1 < len(s) && s[i+1] == 'n')
		i = unitEnd(s, i)
		if n := i - start; (boundary && n >= minPiece) || n >= maxPiece {
			return i
		}
	}
	return i
}

// unitEnd returns the end of the indivisible unit at s[i]: one escape
// sequence (a \u surrogate pair counts as one), one UTF-8 character, or one
// byte.
func unitEnd(s []byte, i int) int {
	c := s[i]
	switch {
	case c == '\\':
		if i+6 <= len(s) && s[i+1] == 'u' {
			if isSurrogate(s[i+2:i+6], "89abAB") && i+12 <= len(s) &&
				s[i+6] == '\\' && s[i+7] == 'u' && isSurrogate(s[i+8:i+12], "cdefCDEF") {
				return i + 12
			}
			return i + 6
		}
		return min(i+2, len(s))
	case c < 0x80:
		return i + 1
	}
	j := i + 1
	for j < len(s) && s[j]&0xC0 == 0x80 {
		j++
	}
	return j
}

// isSurrogate reports whether the 4 hex digits h are D followed by one of
// second (high surrogates D800-DBFF: 8-B; low DC00-DFFF: C-F).
func isSurrogate(h []byte, second string) bool {
	if h[0] != 'd' && h[0] != 'D' {
		return false
	}
	for i := 0; i < len(second); i++ {
		if h[1] == second[i] {
			return true
		}
	}
	return false
}
