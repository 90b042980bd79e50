package sse

import (
	"bytes"

	"github.com/zest-proxy/zest/internal/jsonscan"
)

// Scanner splits a raw SSE byte stream into events. Input may arrive in
// arbitrary pieces; lines may end in "\n", "\r\n" or a lone "\r" (as the SSE
// specification allows). An event is everything up to and including the blank
// line that terminates it.
//
// Invariant: the concatenation of every event emitted so far followed by
// Rest() equals all bytes fed, so a relay can forward events verbatim. The
// event boundaries do not depend on how the input was split. The zero value is
// ready to use; a Scanner is not safe for concurrent use.
type Scanner struct {
	buf     []byte // unterminated tail of the stream
	midLine bool   // the last examined byte is inside a non-empty line
	cr      bool   // the last examined byte is a CR ending a line
	crBlank bool   // ...and that line was empty (so it may end the event)
}

// Feed scans p and calls emit once per complete event, in order. The event
// slice aliases p or the scanner's buffer and is valid only until emit
// returns. Bytes of an unterminated event are kept for the next call.
//
// An event ended by a lone "\r" is emitted only when the next byte shows that
// no "\n" follows (or by Flush at the end of the stream).
func (s *Scanner) Feed(p []byte, emit func(event []byte)) {
	b, i := p, 0
	if len(s.buf) > 0 {
		i = len(s.buf)
		s.buf = append(s.buf, p...)
		b = s.buf
	}
	start := 0
	for ; i < len(b); i++ {
		if s.midLine && !s.cr {
			// Inside a line: jump to the next line break.
			rest := b[i:]
			n := bytes.IndexByte(rest, '\n')
			if n < 0 {
				n = len(rest)
			}
			if r := bytes.IndexByte(rest[:n], '\r'); r >= 0 {
				n = r
			}
			if i += n; i >= len(b) {
				break
			}
		}
		c := b[i]
		if s.cr {
			s.cr = false
			if s.crBlank {
				if c == '\n' {
					emit(b[start : i+1])
					start = i + 1
					continue
				}
				emit(b[start:i])
				start = i
			} else if c == '\n' {
				continue // the LF of a CRLF line ending
			}
		}
		switch c {
		case '\n':
			if !s.midLine {
				emit(b[start : i+1])
				start = i + 1
			}
			s.midLine = false
		case '\r':
			s.cr, s.crBlank, s.midLine = true, !s.midLine, false
		default:
			s.midLine = true
		}
	}
	if len(s.buf) > 0 {
		n := copy(s.buf, s.buf[start:])
		s.buf = s.buf[:n]
	} else {
		s.buf = append(s.buf[:0], p[start:]...)
	}
}

// Flush is called at the end of the stream: it emits a final event whose
// terminating blank line was a lone "\r" still waiting for its next byte.
// An event without a terminating blank line stays in Rest (the SSE
// specification discards it).
func (s *Scanner) Flush(emit func(event []byte)) {
	if s.cr && s.crBlank && len(s.buf) > 0 {
		emit(s.buf)
		s.buf = s.buf[:0]
		s.cr, s.crBlank, s.midLine = false, false, false
	}
}

// Rest returns the bytes of the unterminated trailing event (nil or empty
// when the stream ended on an event boundary). It aliases the scanner's
// buffer until the next Feed.
func (s *Scanner) Rest() []byte { return s.buf }

// Reset empties the scanner for reuse, keeping its buffer's capacity.
func (s *Scanner) Reset() { *s = Scanner{buf: s.buf[:0]} }

// nextLine splits the first line off b: the line without its ending, and
// the remainder after the ending ("\n", "\r\n" or "\r").
func nextLine(b []byte) (line, rest []byte) {
	n := bytes.IndexByte(b, '\n')
	span := b
	if n >= 0 {
		span = b[:n]
	}
	if r := bytes.IndexByte(span, '\r'); r >= 0 {
		if r+1 < len(b) && b[r+1] == '\n' {
			return b[:r], b[r+2:]
		}
		return b[:r], b[r+1:]
	}
	if n < 0 {
		return b, nil
	}
	return b[:n], b[n+1:]
}

// splitField splits an SSE line into its field name and value (one leading space
// of the value removed). Comment lines (starting with ':') have name "".
func splitField(line []byte) (name, value []byte) {
	i := bytes.IndexByte(line, ':')
	if i == 0 {
		return nil, nil
	}
	if i < 0 {
		return line, nil
	}
	v := line[i+1:]
	if len(v) > 0 && v[0] == ' ' {
		v = v[1:]
	}
	return line[:i], v
}

// Data returns the event's data payload: the values of its data: lines
// joined by "\n". It is nil for events without data lines (comments, blank
// keep-alives). With a single data line the result aliases event.
func Data(event []byte) []byte {
	_, data := parseEvent(event)
	return data
}

// EventName returns the value of the event's last "event:" field, or nil.
func EventName(event []byte) []byte {
	name, _ := parseEvent(event)
	return name
}

// parseEvent returns the event's name and data payload in one pass.
func parseEvent(ev []byte) (name, data []byte) {
	n := 0
	for len(ev) > 0 {
		var line []byte
		line, ev = nextLine(ev)
		f, v := splitField(line)
		switch string(f) {
		case "event":
			name = v
		case "data":
			switch n++; n {
			case 1:
				data = v
				if data == nil {
					data = line[:0]
				}
			case 2:
				data = append(append(append(make([]byte, 0, len(data)+1+len(v)), data...), '\n'), v...)
			default:
				data = append(append(data, '\n'), v...)
			}
		}
	}
	return name, data
}

// IsDone reports whether a data payload is the end-of-stream marker [DONE]
// (surrounding whitespace ignored).
func IsDone(data []byte) bool {
	return string(bytes.TrimSpace(data)) == "[DONE]"
}

// IsUsageOnly reports whether a data payload is the final usage chunk that
// OpenAI sends for stream_options.include_usage: "choices" is an empty array
// and "usage" is not null. Payloads without an empty "choices" array are
// rejected by a byte search, without parsing.
func IsUsageOnly(data []byte) bool {
	if !hasEmptyChoices(data) {
		return false
	}
	v := trimWS(data)
	m := jsonscan.NewMembers(v)
	choicesEmpty, usage := false, false
	for {
		k, val, ok := m.Next()
		if !ok {
			break
		}
		switch string(k) {
		case "choices":
			choicesEmpty = isEmptyArray(val)
		case "usage":
			usage = len(val) > 0 && val[0] == '{'
		}
	}
	return m.Err() == nil && choicesEmpty && usage
}

// hasEmptyChoices looks for the bytes "choices" : [ ] (any whitespace).
func hasEmptyChoices(data []byte) bool {
	const key = `"choices"`
	for {
		i := bytes.Index(data, []byte(key))
		if i < 0 {
			return false
		}
		data = data[i+len(key):]
		j := jsonscan.SkipWS(data, 0)
		if j < len(data) && data[j] == ':' {
			j = jsonscan.SkipWS(data, j+1)
			if j < len(data) && data[j] == '[' {
				j = jsonscan.SkipWS(data, j+1)
				if j < len(data) && data[j] == ']' {
					return true
				}
			}
		}
	}
}
