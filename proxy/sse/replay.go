package sse

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/zest-proxy/zest/internal/jsonscan"
)

// ReplayOptions controls Replay. The zero value replays without a usage chunk.
type ReplayOptions struct {
	// IncludeUsage emits, as OpenAI does for stream_options.include_usage,
	// "usage":null in every chunk and a final chunk with "choices":[] and the
	// stored usage (when the completion has one). Off by default.
	IncludeUsage bool
}

// Pieces of replayed text: a piece ends at the first word boundary (after a
// space or an escaped newline) once it holds minPiece bytes, or after
// maxPiece bytes when no boundary comes, never inside an escape sequence, a
// UTF-8 character or a surrogate pair.
const (
	minPiece = 20
	maxPiece = 80
)

// Replay writes a stored chat.completion (JSON) to w as an SSE stream of
// chat.completion.chunk events ending with data: [DONE], in one Write. See
// AppendReplay for the shape of the stream.
func Replay(w io.Writer, completion []byte, opts ReplayOptions) error {
	b, err := AppendReplay(nil, completion, opts)
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("sse: replay: %w", err)
	}
	return nil
}

// AppendReplay appends to dst the SSE stream that replays completion, as
// OpenAI would have streamed it. Every event is "data: <json>\n\n"; every
// chunk repeats id, created, model, service_tier and system_fingerprint (the
// ones present) with "object":"chat.completion.chunk". Choices follow one
// another in index order; for each:
//
//   - a first chunk with role, content ("" or null), "refusal":null and every
//     other message member in stored order (string members as "", so the
//     order survives reassembly; non-string members such as annotations
//     whole; function_call with its name and empty arguments);
//   - the other string members (reasoning_content, reasoning, ...), then
//     content, then refusal, split into pieces of a few words; the choice's
//     logprobs object rides whole on the first content piece (else the first
//     refusal piece, else the finish chunk);
//   - function_call arguments pieces, then each tool call: a delta with
//     index, id, type, function name and "arguments":"", then arguments
//     pieces;
//   - a chunk with an empty delta, finish_reason and any other choice member.
//
// Then the usage chunk (only with IncludeUsage and a stored usage) and
// data: [DONE]. Top-level members other than those above (rare provider
// extras) are not carried by the stream. A completion holding line breaks
// (pretty-printed) is compacted first, since events are single data: lines. A completion that is not a JSON
// object with a choices array is an error wrapping ErrMalformed.
func AppendReplay(dst []byte, completion []byte, opts ReplayOptions) ([]byte, error) {
	v := trimWS(completion)
	if bytes.ContainsAny(v, "\r\n") {
		// Line breaks in valid JSON are whitespace between tokens, but they
		// would end a data: line, so a pretty-printed answer is compacted.
		var buf bytes.Buffer
		if err := json.Compact(&buf, v); err != nil {
			return dst, fmt.Errorf("sse: replay: %w: %v", ErrMalformed, err)
		}
		v = buf.Bytes()
	}
	h := header{includeUsage: opts.IncludeUsage}
	var usage, choicesRaw []byte
	m := jsonscan.NewMembers(v)
	for {
		k, val, ok := m.Next()
		if !ok {
			break
		}
		switch string(k) {
		case "id":
			h.id = val
		case "created":
			h.created = val
		case "model":
			h.model = val
		case "service_tier":
			h.serviceTier = val
		case "system_fingerprint":
			h.fingerprint = val
		case "usage":
			usage = val
		case "choices":
			choicesRaw = val
		}
	}
	if m.Err() != nil {
		return dst, fmt.Errorf("sse: replay: %w", m.Err())
	}
	if len(choicesRaw) == 0 || choicesRaw[0] != '[' {
		return dst, fmt.Errorf("sse: replay: %w: no choices array", ErrMalformed)
	}
	var stack [4]replayChoice
	choices := stack[:0]
	e := jsonscan.NewElems(choicesRaw)
	for {
		c, ok := e.Next()
		if !ok {
			break
		}
		rc, err := parseReplayChoice(c, len(choices))
		if err != nil {
			return dst, fmt.Errorf("sse: replay: %w", err)
		}
		choices = append(choices, rc)
	}
	if e.Err() != nil {
		return dst, fmt.Errorf("sse: replay: %w", e.Err())
	}
	slices.SortStableFunc(choices, func(x, y replayChoice) int { return x.index - y.index })

	hdrLen := len(h.id) + len(h.created) + len(h.model) + len(h.serviceTier) + len(h.fingerprint) + 160
	dst = slices.Grow(dst, len(v)+(len(v)/minPiece+8*len(choices)+4)*hdrLen)
	for i := range choices {
		dst = choices[i].appendChunks(dst, &h)
	}
	if opts.IncludeUsage && len(usage) > 0 && !isNull(usage) {
		dst = h.open(dst)
		dst = append(dst, `],"usage":`...)
		dst = append(dst, usage...)
		dst = append(dst, "}\n\n"...)
	}
	return append(dst, "data: [DONE]\n\n"...), nil
}

// header holds the raw top-level values repeated in every chunk.
type header struct {
	id, created, model, serviceTier, fingerprint []byte
	includeUsage                                 bool
}

// open appends `data: {<header>,"choices":[`.
func (h *header) open(b []byte) []byte {
	b = append(b, "data: {"...)
	if h.id != nil {
		b = append(b, `"id":`...)
		b = append(b, h.id...)
		b = append(b, ',')
	}
	b = append(b, `"object":"chat.completion.chunk"`...)
	b = appendRaw(b, `,"created":`, h.created)
	b = appendRaw(b, `,"model":`, h.model)
	b = appendRaw(b, `,"service_tier":`, h.serviceTier)
	b = appendRaw(b, `,"system_fingerprint":`, h.fingerprint)
	return append(b, `,"choices":[`...)
}

// start appends the chunk opening up to and including `"delta":{`.
func (h *header) start(b []byte, index int) []byte {
	b = h.open(b)
	b = append(b, `{"index":`...)
	b = appendInt(b, index)
	return append(b, `,"delta":{`...)
}

// end closes a chunk opened with start.
func (h *header) end(b, logprobs, finish []byte) []byte {
	b = append(b, `},"logprobs":`...)
	if logprobs == nil {
		logprobs = []byte("null")
	}
	b = append(b, logprobs...)
	b = append(b, `,"finish_reason":`...)
	if finish == nil {
		finish = []byte("null")
	}
	b = append(b, finish...)
	b = append(b, "}]"...)
	if h.includeUsage {
		b = append(b, `,"usage":null`...)
	}
	return append(b, "}\n\n"...)
}

func appendRaw(b []byte, prefix string, v []byte) []byte {
	if v == nil {
		return b
	}
	return append(append(b, prefix...), v...)
}
