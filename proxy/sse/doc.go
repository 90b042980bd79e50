// Package sse handles OpenAI-style server-sent event streams of chat
// completions. It is pure: no HTTP, no cache, no goroutines.
//
//   - Scanner splits raw SSE bytes (any chunking; "\n", "\r\n" or "\r" line
//     ends) into events; Data, EventName, IsDone and IsUsageOnly read them.
//   - Assembler sits in a tee behind the client stream and rebuilds the full
//     chat.completion; Complete refuses (ErrIncomplete, ErrUpstreamError,
//     ErrMalformed) any stream that must not be cached.
//   - Replay / AppendReplay turn a stored chat.completion (assembled here or
//     returned by a non-streaming call) back into chat.completion.chunk
//     events ending in data: [DONE].
//
// JSON is read with a small strict scanner over raw bytes (as strict as
// encoding/json, fuzzed against it), so string deltas are concatenated in
// their escaped form: output bytes are deterministic, a surrogate pair split
// across two chunks survives, and the replay path does no reflection and no
// allocation when given a reused buffer.
//
// Round trip: Complete → AppendReplay → Assembler → Complete returns the same
// bytes (with IncludeUsage; without it the usage is, by design, not
// streamed). For a completion from a non-streamed answer the reassembled
// value equals the original except for what a stream cannot carry:
// top-level members other than id, object, created, model, choices, usage,
// service_tier and system_fingerprint are dropped; a message gains
// "refusal":null when it had none; an empty tool_calls array is dropped; a
// logprobs object gains "content"/"refusal" null members when absent.
// Unknown non-string message members (annotations, audio) keep their last
// value when assembling.
package sse
