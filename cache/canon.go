package cache

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
)

// ErrSyntax reports a body that is not one valid JSON value.
var ErrSyntax = errors.New("cache: invalid JSON")

// Field is one top-level member of a parsed request object.
type Field struct {
	Present bool
	Start   int    // offset of the member's key in the body
	End     int    // offset just past the member's value
	Value   []byte // the raw value, aliasing the body
}

// Request is a chat-completions body read once: the canonical form that the exact key hashes,
// and the raw top-level members that zest itself acts on. Value slices alias the body.
type Request struct {
	// Canonical is the body with object keys sorted, insignificant whitespace removed, strings
	// and numbers in one spelling, and the top-level members cache_control, stream,
	// stream_options and user left out.
	Canonical []byte

	CacheControl, Stream, StreamOptions, User, Model, Messages Field
	MaxTokens, MaxCompletionTokens, N                          Field
	// EarlierCacheControl are the top-level cache_control members before the last one, when
	// the body repeats it (the last one wins, as in most JSON decoders); all are removed
	// before the body goes upstream.
	EarlierCacheControl []Field

	keys []member // scratch kept between uses of a recycled Request
	tmp  []byte

	messagesSeen int    // how many top-level messages members the body has
	messagesAt   [2]int // where the messages member lies in Canonical, once sorted
	// lastRaw is the range in Messages.Value of the last element of the messages array, and
	// lastCanon its offset in that array's canonical form; lastRaw[1] is 0 for an empty array
	// or a messages value that is not an array.
	lastRaw   [2]int
	lastCanon int
}

// Reset clears r for another ParseRequest, keeping its buffers.
func (r *Request) Reset() {
	*r = Request{Canonical: r.Canonical[:0], keys: r.keys[:0], tmp: r.tmp[:0],
		EarlierCacheControl: r.EarlierCacheControl[:0]}
}

// excluded names the top-level members that do not change the answer and stay out of the key.
func excluded(name string) bool {
	switch name {
	case "cache_control", "stream", "stream_options", "user":
		return true
	}
	return false
}

// ParseRequest validates body as one JSON object and fills r. The canonical form is appended
// to r.Canonical[:0], so a caller may recycle r between requests.
func ParseRequest(body []byte, r *Request) error {
	c := canon{in: body, out: r.Canonical[:0], keys: r.keys[:0], tmp: r.tmp[:0]}
	defer func() { r.keys, r.tmp = c.keys[:0], c.tmp[:0] }()
	c.skipSpace()
	if c.pos >= len(body) || body[c.pos] != '{' {
		return fmt.Errorf("%w: body is not a JSON object", ErrSyntax)
	}
	if err := c.object(r); err != nil {
		return err
	}
	c.skipSpace()
	if c.pos != len(body) {
		return fmt.Errorf("%w: data after the top-level value at offset %d", ErrSyntax, c.pos)
	}
	r.Canonical = c.out
	return nil
}

// Canonical appends the canonical form of the JSON value in src to dst.
func Canonical(dst, src []byte) ([]byte, error) {
	c := canon{in: src, out: dst}
	c.skipSpace()
	if err := c.value(); err != nil {
		return dst, err
	}
	c.skipSpace()
	if c.pos != len(src) {
		return dst, fmt.Errorf("%w: data after the value at offset %d", ErrSyntax, c.pos)
	}
	return c.out, nil
}

// CanonicalMessages splits Canonical around the messages member: before followed by after is
// the canonical form of the body without that member (what ParseRequest of cache.Without(body,
// r.Messages) gives), and value is the canonical form of the messages value. All three alias
// Canonical. ok is false when the body has no messages member or repeats it.
func (r *Request) CanonicalMessages() (before, value, after []byte, ok bool) {
	if r.messagesSeen != 1 {
		return nil, nil, nil, false
	}
	const name = `"messages":`
	c, start, end := r.Canonical, r.messagesAt[0], r.messagesAt[1]
	value = c[start+len(name) : end]
	switch {
	case c[start-1] == ',':
		return c[:start-1], value, c[end:], true
	case c[end] == ',':
		return c[:start], value, c[end+1:], true
	}
	return c[:start], value, c[end:], true
}

// LastMessage returns the last element of the messages array as the body has it (raw, within
// Messages.Value) and its offset in the canonical messages value CanonicalMessages returns
// (where the elements before it and the comma after them end); ok is false when the body has
// no messages member, repeats it, or its value is not a non-empty array. It costs no reading:
// ParseRequest noted both as it went.
func (r *Request) LastMessage() (raw []byte, canonAt int, ok bool) {
	if r.messagesSeen != 1 || r.lastRaw[1] == 0 {
		return nil, 0, false
	}
	return r.Messages.Value[r.lastRaw[0]:r.lastRaw[1]], r.lastCanon, true
}

// Without returns body with the member f removed (and one adjacent comma), leaving every other
// byte as it was. The result is a new slice; body is not modified.
func Without(body []byte, f Field) []byte {
	if !f.Present {
		return body
	}
	start, end := f.Start, f.End
	// Prefer eating the comma after the member; else the one before it.
	j := end
	for j < len(body) && isSpace(body[j]) {
		j++
	}
	if j < len(body) && body[j] == ',' {
		end = j + 1
	} else {
		i := start - 1
		for i >= 0 && isSpace(body[i]) {
			i--
		}
		if i >= 0 && body[i] == ',' {
			start = i
		}
	}
	out := make([]byte, 0, len(body)-(end-start))
	out = append(out, body[:start]...)
	return append(out, body[end:]...)
}

type canon struct {
	in    []byte
	pos   int
	out   []byte
	depth int
	keys  []member // scratch for sorting object members
	tmp   []byte
	// noteLast asks the next array to note its last element in lastRaw and lastCanon,
	// relative to the array's own start in the input and in out (the top-level messages
	// value); only that array reads it.
	noteLast  bool
	lastRaw   [2]int
	lastCanon int
}

type member struct {
	key        []byte // the decoded name; aliases the input, or a copy when it had escapes
	start, end int    // range in out
}

const maxDepth = 512

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

func (c *canon) skipSpace() {
	for c.pos < len(c.in) && isSpace(c.in[c.pos]) {
		c.pos++
	}
}

func (c *canon) errf(what string) error {
	return fmt.Errorf("%w: %s at offset %d", ErrSyntax, what, c.pos)
}

func (c *canon) value() error {
	if c.pos >= len(c.in) {
		return c.errf("unexpected end")
	}
	switch b := c.in[c.pos]; {
	case b == '{':
		return c.object(nil)
	case b == '[':
		return c.array()
	case b == '"':
		_, err := c.str(false)
		return err
	case b == '-' || (b >= '0' && b <= '9'):
		return c.number()
	default:
		for _, lit := range [...]string{"true", "false", "null"} {
			if bytes.HasPrefix(c.in[c.pos:], []byte(lit)) {
				c.out = append(c.out, lit...)
				c.pos += len(lit)
				return nil
			}
		}
		return c.errf("invalid character")
	}
}

// object reads an object at c.pos. When top is non-nil this is the request's top level:
// excluded members are left out of the output and the named members are recorded.
func (c *canon) object(top *Request) error {
	c.depth++
	if c.depth > maxDepth {
		return c.errf("nesting too deep")
	}
	defer func() { c.depth-- }()
	c.pos++ // '{'
	objStart := len(c.out)
	c.noteLast = false // only an array value notes its last element
	c.out = append(c.out, '{')
	mark := len(c.keys)
	c.skipSpace()
	if c.pos < len(c.in) && c.in[c.pos] == '}' {
		c.pos++
		c.out = append(c.out, '}')
		return nil
	}
	for {
		c.skipSpace()
		if c.pos >= len(c.in) || c.in[c.pos] != '"' {
			return c.errf("expected a member name")
		}
		memberStart := c.pos
		keyOut := len(c.out)
		key, err := c.str(true)
		if err != nil {
			return err
		}
		c.skipSpace()
		if c.pos >= len(c.in) || c.in[c.pos] != ':' {
			return c.errf("expected ':'")
		}
		c.pos++
		c.out = append(c.out, ':')
		c.skipSpace()
		valStart := c.pos
		messages := top != nil && string(key) == "messages"
		if messages {
			c.noteLast, c.lastRaw = true, [2]int{}
		}
		if err := c.value(); err != nil {
			return err
		}
		if messages {
			c.noteLast = false // a value that is not an array left it
			top.lastRaw, top.lastCanon = c.lastRaw, c.lastCanon
		}
		if top != nil {
			f := Field{Present: true, Start: memberStart, End: c.pos, Value: c.in[valStart:c.pos]}
			top.record(key, f)
			if excluded(string(key)) {
				c.out = c.out[:keyOut]
			} else {
				c.keys = append(c.keys, member{key: key, start: keyOut, end: len(c.out)})
			}
		} else {
			c.keys = append(c.keys, member{key: key, start: keyOut, end: len(c.out)})
		}
		c.skipSpace()
		if c.pos >= len(c.in) {
			return c.errf("unexpected end in object")
		}
		if c.in[c.pos] == ',' {
			c.pos++
			continue
		}
		if c.in[c.pos] != '}' {
			return c.errf("expected ',' or '}'")
		}
		c.pos++
		break
	}
	c.sortMembers(objStart+1, mark)
	if top != nil && top.messagesSeen == 1 {
		top.messagesAt = memberAt(c.keys[mark:], objStart+1, "messages")
	}
	c.keys = c.keys[:mark]
	c.out = append(c.out, '}')
	return nil
}

// sortMembers rewrites out[from:] as the members keys[mark:] sorted by key (stable, so
// duplicate names keep their order) and joined by commas.
func (c *canon) sortMembers(from, mark int) {
	ms := c.keys[mark:]
	c.tmp = append(c.tmp[:0], c.out[from:]...)
	sortMembersByKey(ms)
	c.out = c.out[:from]
	for i, m := range ms {
		if i > 0 {
			c.out = append(c.out, ',')
		}
		c.out = append(c.out, c.tmp[m.start-from:m.end-from]...)
	}
}

// sortMembersByKey sorts ms by name, stably. An object's few members are sorted by insertion
// in place, without the comparison function slices.SortStableFunc calls for every step
// (which cost a tenth of a request's key); a larger object goes to slices.SortStableFunc,
// whose time grows as n log n.
func sortMembersByKey(ms []member) {
	if len(ms) > smallObject {
		slices.SortStableFunc(ms, func(a, b member) int { return bytes.Compare(a.key, b.key) })
		return
	}
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && string(ms[j].key) < string(ms[j-1].key); j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
}

// smallObject is the most members sortMembersByKey sorts by insertion: slices' own threshold.
const smallObject = 20

// memberAt is where the member name lies in an object's output once sortMembers has joined the
// members ms (sorted) from offset from.
func memberAt(ms []member, from int, name string) [2]int {
	at := from
	for i, m := range ms {
		if i > 0 {
			at++ // the comma
		}
		n := m.end - m.start
		if string(m.key) == name {
			return [2]int{at, at + n}
		}
		at += n
	}
	return [2]int{}
}

func (r *Request) record(key []byte, f Field) {
	switch string(key) {
	case "cache_control":
		if r.CacheControl.Present {
			r.EarlierCacheControl = append(r.EarlierCacheControl, r.CacheControl)
		}
		r.CacheControl = f
	case "stream":
		r.Stream = f
	case "stream_options":
		r.StreamOptions = f
	case "user":
		r.User = f
	case "model":
		r.Model = f
	case "messages":
		r.Messages = f
		r.messagesSeen++
	case "max_tokens":
		r.MaxTokens = f
	case "max_completion_tokens":
		r.MaxCompletionTokens = f
	case "n":
		r.N = f
	}
}

func (c *canon) array() error {
	c.depth++
	if c.depth > maxDepth {
		return c.errf("nesting too deep")
	}
	defer func() { c.depth-- }()
	note, arrIn, arrOut := c.noteLast, c.pos, len(c.out)
	c.pos++ // '['
	c.out = append(c.out, '[')
	c.noteLast = false // not for the arrays inside
	c.skipSpace()
	if c.pos < len(c.in) && c.in[c.pos] == ']' {
		c.pos++
		c.out = append(c.out, ']')
		return nil
	}
	for {
		c.skipSpace()
		elemIn, elemOut := c.pos-arrIn, len(c.out)-arrOut
		if err := c.value(); err != nil {
			return err
		}
		if note {
			c.lastRaw, c.lastCanon = [2]int{elemIn, c.pos - arrIn}, elemOut
		}
		c.skipSpace()
		if c.pos >= len(c.in) {
			return c.errf("unexpected end in array")
		}
		if c.in[c.pos] == ',' {
			c.pos++
			c.out = append(c.out, ',')
			continue
		}
		if c.in[c.pos] != ']' {
			return c.errf("expected ',' or ']'")
		}
		c.pos++
		c.out = append(c.out, ']')
		return nil
	}
}
