package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sync"

	"github.com/zest-proxy/zest/cache"
	"github.com/zest-proxy/zest/internal/jsonscan"
	"github.com/zest-proxy/zest/semantic"
)

// semQuery is a request's place in the semantic cache, or ok=false when the request cannot
// use it (no trailing user message, or content that is not text).
type semQuery struct {
	q  semantic.Query
	ok bool
}

// semanticQuery derives the partition (the cache target and everything in the body but the
// last user message's content, canonical and hashed) and the prompt (that message's text).
// It reads what ParseRequest already walked (the canonical form, the raw messages) without
// reflection; only a body where that reading could differ from encoding/json's goes to
// semanticPartsJSON, its definition.
func (h *Handler) semanticQuery(ns, target string, body []byte, req *cache.Request, minSim float32) semQuery {
	partition, prompt, ok, sure := scanSemanticParts(target, req)
	if !sure {
		partition, prompt, ok = semanticPartsJSON(target, body, req)
	}
	if !ok {
		return semQuery{}
	}
	return semQuery{ok: true, q: semantic.Query{Namespace: ns, Partition: partition, Prompt: prompt, Threshold: minSim}}
}

// scanSemanticParts is semanticPartsJSON read from req; sure is false when encoding/json must
// decide (a repeated messages member, a last message with a repeated member or a member name
// that is not plain ASCII).
func scanSemanticParts(target string, req *cache.Request) (partition, prompt string, ok, sure bool) {
	before, msgs, after, found := req.CanonicalMessages()
	if !found {
		return "", "", false, !req.Messages.Present
	}
	if req.Messages.Value[0] != '[' {
		return "", "", false, true // null has no last message; anything else fails to decode
	}
	last, lastAt, found := req.LastMessage() // ParseRequest validated the array as it noted it
	if !found || last[0] != '{' {
		return "", "", false, true // none; null decodes to no role; anything else fails to decode
	}
	// As decoding into chatMessage reads it; and as a map would, which keeps one member a name.
	var fields [2][]byte // role, content
	if !foldMembers(last, []string{"role", "content"}, fields[:], true) {
		return "", "", false, false
	}
	role, content := fields[0], fields[1]
	if !isUserRole(role) {
		return "", "", false, true
	}
	prompt, ok = contentText(content)
	if !ok || prompt == "" {
		return "", "", false, true
	}
	return partitionOf(target, before, after, msgs, lastAt), prompt, true, true
}

// isUserRole reports a role value that decodes to the string "user".
func isUserRole(v []byte) bool {
	if string(v) == `"user"` {
		return true
	}
	if len(v) == 0 || v[0] != '"' || bytes.IndexByte(v, '\\') < 0 {
		return false
	}
	var s string
	return json.Unmarshal(v, &s) == nil && s == "user"
}

// partitionOf hashes the partition's parts: the target, the canonical body without messages
// (before followed by after), the earlier messages and the last one (at lastAt in the
// canonical msgs) without its content, each followed by a zero byte, as semanticPartsJSON does.
func partitionOf(target string, before, after, msgs []byte, lastAt int) string {
	bp := hashBufs.Get().(*[]byte)
	defer hashBufs.Put(bp)
	b := append((*bp)[:0], target...)
	b = append(b, 0)
	b = append(append(b, before...), after...)
	b = append(b, 0)
	b = append(b, msgs[:max(lastAt-1, 1)]...) // the earlier messages: drop the comma before the last
	b = append(b, ']', 0)
	b = appendWithoutMember(b, msgs[lastAt:len(msgs)-1], `"content"`)
	b = append(b, 0)
	*bp = b
	sum := sha256.Sum256(b)
	var hx [2 * sha256.Size]byte
	hex.Encode(hx[:], sum[:])
	return string(hx[:])
}

// hashBufs recycles the buffers partitions are hashed from.
var hashBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// appendWithoutMember appends the canonical object obj without its member called name (a
// quoted name, canonical spelling) and one comma next to it.
func appendWithoutMember(dst, obj []byte, name string) []byte {
	for at := 1; at < len(obj)-1; {
		keyEnd, err := jsonscan.SkipValue(obj, at, 1)
		if err != nil {
			break
		}
		end, err := jsonscan.SkipValue(obj, keyEnd+1, 1) // canonical: the colon, then the value

		if err != nil {
			break
		}
		if string(obj[at:keyEnd]) == name {
			switch {
			case obj[at-1] == ',':
				at--
			case obj[end] == ',':
				end++
			}
			return append(append(dst, obj[:at]...), obj[end:]...)
		}
		at = end + 1
	}
	return append(dst, obj...)
}

// semanticPartsJSON derives the partition and prompt with encoding/json: the definition that
// scanSemanticParts follows.
func semanticPartsJSON(target string, body []byte, req *cache.Request) (partition, prompt string, ok bool) {
	var msgs []json.RawMessage
	if json.Unmarshal(req.Messages.Value, &msgs) != nil || len(msgs) == 0 {
		return "", "", false
	}
	var last chatMessage
	if json.Unmarshal(msgs[len(msgs)-1], &last) != nil || last.Role != "user" {
		return "", "", false
	}
	prompt, ok = contentText(last.Content)
	if !ok || prompt == "" {
		return "", "", false
	}
	// The rest of the body, canonical, with the earlier turns and the last message's other
	// members (a name, say), but not its content.
	var rest cache.Request
	if cache.ParseRequest(cache.Without(body, req.Messages), &rest) != nil {
		return "", "", false
	}
	var lastOther map[string]json.RawMessage
	json.Unmarshal(msgs[len(msgs)-1], &lastOther)
	delete(lastOther, "content")
	earlier, _ := json.Marshal(msgs[:len(msgs)-1])
	lastRest, _ := json.Marshal(lastOther)
	hsh := sha256.New()
	for _, part := range [][]byte{[]byte(target), rest.Canonical, mustCanon(earlier), mustCanon(lastRest)} {
		hsh.Write(part)
		hsh.Write([]byte{0})
	}
	return hex.EncodeToString(hsh.Sum(nil)), prompt, true
}

func mustCanon(b []byte) []byte {
	c, err := cache.Canonical(nil, b)
	if err != nil {
		return b
	}
	return c
}
