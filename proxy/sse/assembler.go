package sse

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/zest-proxy/zest/internal/jsonscan"
)

var (
	// ErrIncomplete means the stream did not end cleanly: no data: [DONE],
	// no chunk at all, or a choice without a finish_reason.
	ErrIncomplete = errors.New("sse: stream incomplete")
	// ErrUpstreamError means the stream carried an error event
	// (data: {"error":...} or an "event: error" event).
	ErrUpstreamError = errors.New("sse: upstream sent an error event")
)

// MaxEventBytes caps the size of one buffered SSE event in the Assembler
// (8 MiB). A longer event makes Complete fail instead of growing memory.
const MaxEventBytes = 8 << 20

// Assembler rebuilds a chat.completion from the chat.completion.chunk
// events of a streamed answer. Feed it raw SSE bytes with Write (it is meant
// to sit behind an io.MultiWriter / tee next to the client) or data payloads
// with Event, then call Complete.
//
// Merge rules: id, created, model and each role and tool-call id/type keep
// their first value; system_fingerprint, service_tier and usage keep their
// last non-null value; every string delta field of a message (content,
// refusal, reasoning_content, reasoning, ...) and of a tool call's function
// is concatenated in its escaped JSON form; other message fields keep their
// last value; logprobs content/refusal token arrays are concatenated; null
// never overwrites a value. An OpenAI stream "obfuscation" field is dropped.
//
// An Assembler is not safe for concurrent use. The zero value is not usable;
// call NewAssembler.
type Assembler struct {
	sc      Scanner
	emit    func([]byte)
	top     fieldList
	choices []*choiceAcc
	chunks  int
	done    bool
	err     error
}

type choiceAcc struct {
	index  int
	msg    fieldList // role, content, refusal and any other delta member
	tools  []*toolAcc
	lp     logprobsAcc
	finish []byte
	extra  fieldList // choice-level members other than index/delta/logprobs/finish_reason
}

type toolAcc struct {
	index  int
	fields fieldList // id, type, function (object merged), other members
}

type logprobsAcc struct {
	seen                   bool
	content, refusal       []byte // comma-joined token objects
	hasContent, hasRefusal bool
	extra                  fieldList
}

// NewAssembler returns an empty Assembler.
func NewAssembler() *Assembler {
	a := &Assembler{}
	a.emit = a.onEvent
	return a
}

// Write scans raw SSE bytes and feeds each complete event to the assembler.
// It never returns an error and always reports len(p), so it is safe in a
// tee: problems surface in Complete.
func (a *Assembler) Write(p []byte) (int, error) {
	if a.err != nil || a.done {
		return len(p), nil
	}
	a.sc.Feed(p, a.emit)
	if len(a.sc.Rest()) > MaxEventBytes {
		a.fail(fmt.Errorf("%w: event larger than %d bytes", ErrIncomplete, MaxEventBytes))
		a.sc = Scanner{} // release the buffer
	}
	return len(p), nil
}

func (a *Assembler) onEvent(ev []byte) {
	if a.err != nil || a.done {
		return
	}
	name, data := parseEvent(ev)
	if string(name) == "error" {
		a.fail(fmt.Errorf("%w: %s", ErrUpstreamError, bytes.TrimSpace(data)))
		return
	}
	if data != nil {
		a.Event(data)
	}
}

func (a *Assembler) fail(err error) {
	if a.err == nil {
		a.err = err
	}
}

// Event folds one data payload (a chat.completion.chunk JSON object, or
// [DONE]) into the completion. Payloads after [DONE] or after an error are
// ignored; an empty payload is ignored.
func (a *Assembler) Event(data []byte) {
	if a.err != nil || a.done {
		return
	}
	data = trimWS(data)
	if len(data) == 0 {
		return
	}
	if IsDone(data) {
		a.done = true
		return
	}
	a.chunks++
	if err := a.chunk(data); err != nil {
		a.fail(fmt.Errorf("sse: chunk %d: %w", a.chunks, err))
	}
}

func (a *Assembler) chunk(data []byte) error {
	m := jsonscan.NewMembers(data)
	for {
		k, v, ok := m.Next()
		if !ok {
			return m.Err()
		}
		switch string(k) {
		case "id", "created", "model":
			a.top.setOnce(k, v)
		case "object", "obfuscation":
		case "choices":
			if isNull(v) {
				continue
			}
			e := jsonscan.NewElems(v)
			for {
				c, ok := e.Next()
				if !ok {
					break
				}
				if err := a.choice(c); err != nil {
					return err
				}
			}
			if e.Err() != nil {
				return e.Err()
			}
		case "error":
			if !isNull(v) {
				return fmt.Errorf("%w: %s", ErrUpstreamError, v)
			}
		default: // system_fingerprint, service_tier, usage, provider extras
			a.top.merge(k, v, false)
		}
	}
}

func (a *Assembler) choiceAt(index int) *choiceAcc {
	for _, c := range a.choices {
		if c.index == index {
			return c
		}
	}
	c := &choiceAcc{index: index}
	a.choices = append(a.choices, c)
	return c
}

func (a *Assembler) choice(v []byte) error {
	var stack [8]kv
	ms, err := collect(stack[:0], v)
	if err != nil {
		return err
	}
	index := 0
	for _, m := range ms {
		if string(m.k) == "index" {
			n, ok := parseInt(m.v)
			if !ok {
				return fmt.Errorf("%w: choice index %s", ErrMalformed, m.v)
			}
			index = n
		}
	}
	c := a.choiceAt(index)
	for _, m := range ms {
		switch string(m.k) {
		case "index":
		case "delta", "message":
			if err := c.delta(m.v); err != nil {
				return err
			}
		case "logprobs":
			if err := c.lp.merge(m.v); err != nil {
				return err
			}
		case "finish_reason": // null and "" (sent by some servers) mean "not yet"
			if !isNull(m.v) && string(m.v) != `""` {
				c.finish = append(c.finish[:0], m.v...)
			}
		default:
			c.extra.merge(m.k, m.v, false)
		}
	}
	return nil
}

func (c *choiceAcc) delta(v []byte) error {
	if isNull(v) {
		return nil
	}
	m := jsonscan.NewMembers(v)
	for {
		k, val, ok := m.Next()
		if !ok {
			return m.Err()
		}
		switch string(k) {
		case "role":
			c.msg.setOnce(k, val)
		case "tool_calls":
			if isNull(val) {
				continue
			}
			e := jsonscan.NewElems(val)
			for {
				t, ok := e.Next()
				if !ok {
					break
				}
				if err := c.toolDelta(t); err != nil {
					return err
				}
			}
			if e.Err() != nil {
				return e.Err()
			}
		case "function_call":
			if err := c.msg.mergeObj(k, val); err != nil {
				return err
			}
		default:
			c.msg.merge(k, val, true)
		}
	}
}

// toolDelta merges one tool_calls element. Deltas are matched by index; a
// delta without index starts a new call when it carries an id not seen
// before, otherwise it continues the last call.
func (c *choiceAcc) toolDelta(v []byte) error {
	var stack [8]kv
	ms, err := collect(stack[:0], v)
	if err != nil {
		return err
	}
	index, hasIndex := 0, false
	var id []byte
	for _, m := range ms {
		switch string(m.k) {
		case "index":
			n, ok := parseInt(m.v)
			if !ok {
				return fmt.Errorf("%w: tool call index %s", ErrMalformed, m.v)
			}
			index, hasIndex = n, true
		case "id":
			id = m.v
		}
	}
	var t *toolAcc
	switch {
	case hasIndex:
		for _, x := range c.tools {
			if x.index == index {
				t = x
				break
			}
		}
	case len(c.tools) > 0:
		t = c.tools[len(c.tools)-1]
		if f := t.fields.get("id"); id != nil && !isNull(id) && f != nil && string(f.val) != string(id) {
			t = nil
			for _, x := range c.tools {
				index = max(index, x.index+1)
			}
		}
	}
	if t == nil {
		t = &toolAcc{index: index}
		c.tools = append(c.tools, t)
	}
	for _, m := range ms {
		switch string(m.k) {
		case "index":
		case "id", "type":
			t.fields.setOnce(m.k, m.v)
		default: // function (or another tool type's object): strings concatenated
			if err := t.fields.mergeObj(m.k, m.v); err != nil {
				return err
			}
		}
	}
	return nil
}

func (lp *logprobsAcc) merge(v []byte) error {
	if isNull(v) {
		return nil
	}
	lp.seen = true
	m := jsonscan.NewMembers(v)
	for {
		k, val, ok := m.Next()
		if !ok {
			return m.Err()
		}
		switch string(k) {
		case "content":
			lp.content, lp.hasContent = appendTokens(lp.content, lp.hasContent, val)
		case "refusal":
			lp.refusal, lp.hasRefusal = appendTokens(lp.refusal, lp.hasRefusal, val)
		default:
			lp.extra.merge(k, val, false)
		}
	}
}

// appendTokens appends the elements of the array v to the comma-joined list
// dst; null is ignored and has reports whether an array was ever seen.
func appendTokens(dst []byte, has bool, v []byte) ([]byte, bool) {
	if len(v) == 0 || v[0] != '[' {
		return dst, has
	}
	inner := arrayInner(v)
	if len(inner) > 0 {
		if len(dst) > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, inner...)
	}
	return dst, true
}
