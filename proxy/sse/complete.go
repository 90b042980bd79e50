package sse

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/zest-proxy/zest/internal/jsonscan"
)

// Complete returns the assembled chat.completion JSON. It fails with an
// error wrapping ErrUpstreamError (an error event), ErrMalformed (a chunk
// that is not valid JSON) or ErrIncomplete (no data: [DONE], no chunk, a
// choice without finish_reason, or an event over MaxEventBytes) — such a
// stream must not be cached. A final data: [DONE] missing only its
// terminating blank line is accepted.
//
// Output members, in this order: id, "object":"chat.completion", created,
// model, choices (sorted by index), usage (omitted when the stream had none),
// service_tier, system_fingerprint, then any other top-level member seen.
// Each choice is index, message, logprobs, finish_reason, then other choice
// members. A message is role ("assistant" when never sent), content and
// refusal (null when never sent as a string), other delta members in order
// of first appearance, then tool_calls (sorted by index, each id, type
// ("function" when absent), function {name, arguments}). The same input
// always gives the same bytes. Complete may be called more than once.
func (a *Assembler) Complete() ([]byte, error) {
	a.sc.Flush(a.emit)
	if !a.done && a.err == nil && IsDone(Data(a.sc.Rest())) {
		a.done = true // a final data: [DONE] that lacks only its blank line
	}
	if a.err != nil {
		return nil, a.err
	}
	if !a.done {
		return nil, fmt.Errorf("%w: no data: [DONE]", ErrIncomplete)
	}
	if a.chunks == 0 || len(a.choices) == 0 {
		return nil, fmt.Errorf("%w: no choices", ErrIncomplete)
	}
	for _, c := range a.choices {
		if len(c.finish) == 0 {
			return nil, fmt.Errorf("%w: choice %d has no finish_reason", ErrIncomplete, c.index)
		}
	}
	return a.appendCompletion(make([]byte, 0, a.sizeHint())), nil
}

func (a *Assembler) sizeHint() int {
	n := 256
	for _, c := range a.choices {
		for _, f := range c.msg {
			n += len(f.key) + len(f.val) + 8
		}
		for _, t := range c.tools {
			n += 64
			for _, f := range t.fields {
				n += len(f.key) + len(f.val) + 8
				for _, s := range f.sub {
					n += len(s.key) + len(s.val) + 8
				}
			}
		}
		n += len(c.lp.content) + len(c.lp.refusal) + 64
	}
	for _, f := range a.top {
		n += len(f.key) + len(f.val) + 8
	}
	return n
}

func (a *Assembler) appendCompletion(b []byte) []byte {
	b = append(b, '{')
	if f := a.top.get("id"); f != nil {
		b = append(appendMember(b, false, f.key, f), ',')
	}
	b = append(b, `"object":"chat.completion"`...)
	for _, k := range [...]string{"created", "model"} {
		if f := a.top.get(k); f != nil {
			b = appendMember(b, true, f.key, f)
		}
	}
	b = append(b, `,"choices":[`...)
	choices := slices.Clone(a.choices)
	slices.SortStableFunc(choices, func(x, y *choiceAcc) int { return x.index - y.index })
	for i, c := range choices {
		if i > 0 {
			b = append(b, ',')
		}
		b = c.appendChoice(b)
	}
	b = append(b, ']')
	if f := a.top.get("usage"); f != nil && !isNull(f.val) {
		b = appendMember(b, true, f.key, f)
	}
	for _, k := range [...]string{"service_tier", "system_fingerprint"} {
		if f := a.top.get(k); f != nil {
			b = appendMember(b, true, f.key, f)
		}
	}
	b = a.top.appendFields(b, true, "id", "created", "model", "usage", "service_tier", "system_fingerprint")
	return append(b, '}')
}

func (c *choiceAcc) appendChoice(b []byte) []byte {
	b = append(b, `{"index":`...)
	b = appendInt(b, c.index)
	b = append(b, `,"message":{"role":`...)
	if f := c.msg.get("role"); f != nil && !isNull(f.val) {
		b = f.appendValue(b)
	} else {
		b = append(b, `"assistant"`...)
	}
	// An answer that calls tools or refuses has content null, as the plain answer of the same
	// call has, even when the stream's first delta carried "content": "" (vLLM does).
	emptyIsNull := len(c.tools) > 0 || c.msg.get("refusal") != nil && !isNull(c.msg.get("refusal").val)
	for _, k := range [...]string{"content", "refusal"} {
		b = append(b, `,"`...)
		b = append(b, k...)
		b = append(b, `":`...)
		f := c.msg.get(k)
		switch {
		case f == nil, k == "content" && emptyIsNull && f.str && len(f.val) == 0:
			b = append(b, "null"...)
		default:
			b = f.appendValue(b)
		}
	}
	b = c.msg.appendFields(b, true, "role", "content", "refusal")
	if len(c.tools) > 0 {
		b = append(b, `,"tool_calls":[`...)
		tools := slices.Clone(c.tools)
		slices.SortStableFunc(tools, func(x, y *toolAcc) int { return x.index - y.index })
		for i, t := range tools {
			if i > 0 {
				b = append(b, ',')
			}
			b = t.appendTool(b)
		}
		b = append(b, ']')
	}
	b = append(b, `},"logprobs":`...)
	b = c.lp.appendLogprobs(b)
	b = append(b, `,"finish_reason":`...)
	b = append(b, c.finish...)
	b = c.extra.appendFields(b, true)
	return append(b, '}')
}

func (t *toolAcc) appendTool(b []byte) []byte {
	b = append(b, '{')
	if f := t.fields.get("id"); f != nil {
		b = append(appendMember(b, false, f.key, f), ',')
	}
	b = append(b, `"type":`...)
	if f := t.fields.get("type"); f != nil && !isNull(f.val) {
		b = f.appendValue(b)
	} else {
		b = append(b, `"function"`...)
	}
	if f := t.fields.get("function"); f != nil && f.obj {
		b = append(b, `,"function":{"name":`...)
		b = subString(b, f.sub.get("name"))
		b = append(b, `,"arguments":`...)
		b = subString(b, f.sub.get("arguments"))
		b = f.sub.appendFields(b, true, "name", "arguments")
		b = append(b, '}')
	}
	b = t.fields.appendFields(b, true, "id", "type", "function")
	return append(b, '}')
}

// subString appends f's value, or "" when f is absent or null (function
// name and arguments are always strings in a chat.completion).
func subString(b []byte, f *field) []byte {
	if f == nil || isNull(f.val) {
		return append(b, `""`...)
	}
	return f.appendValue(b)
}

func (lp *logprobsAcc) appendLogprobs(b []byte) []byte {
	if !lp.seen {
		return append(b, "null"...)
	}
	b = append(b, `{"content":`...)
	b = appendTokenArray(b, lp.hasContent, lp.content)
	b = append(b, `,"refusal":`...)
	b = appendTokenArray(b, lp.hasRefusal, lp.refusal)
	b = lp.extra.appendFields(b, true)
	return append(b, '}')
}

func appendTokenArray(b []byte, has bool, inner []byte) []byte {
	if !has {
		return append(b, "null"...)
	}
	b = append(b, '[')
	b = append(b, inner...)
	return append(b, ']')
}

func appendInt(b []byte, n int) []byte { return strconv.AppendInt(b, int64(n), 10) }

// Usage returns the prompt and completion token counts of the last non-null
// usage object seen (the include_usage chunk), for rate-limit
// reconciliation. ok is false when the stream carried no usable usage.
func (a *Assembler) Usage() (prompt, completion int, ok bool) {
	f := a.top.get("usage")
	if f == nil || isNull(f.val) {
		return 0, 0, false
	}
	return UsageCounts(f.val)
}

// UsageCounts reads prompt_tokens and completion_tokens of a raw usage object; ok is false
// when either is missing.
func UsageCounts(v []byte) (prompt, completion int, ok bool) {
	m := jsonscan.NewMembers(v)
	var hp, hc bool
	for {
		k, val, more := m.Next()
		if !more {
			break
		}
		switch string(k) {
		case "prompt_tokens":
			prompt, hp = parseInt(val)
		case "completion_tokens":
			completion, hc = parseInt(val)
		}
	}
	return prompt, completion, m.Err() == nil && hp && hc
}

// CompletionUsage reads usage.prompt_tokens and usage.completion_tokens of a chat.completion
// (leading whitespace allowed) without decoding the rest. ok is false when either is missing.
func CompletionUsage(completion []byte) (prompt, completionTokens int, ok bool) {
	i := 0
	for i < len(completion) && jsonscan.IsWS(completion[i]) {
		i++
	}
	m := jsonscan.NewMembers(completion[i:])
	for {
		k, val, more := m.Next()
		if !more {
			return 0, 0, false
		}
		if string(k) == "usage" {
			return UsageCounts(val)
		}
	}
}
