package proxy

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/zest-proxy/zest/internal/httphdr"
)

// Cache-control types (DESIGN.md §2).
const (
	TypeDefault      = "default"
	TypeNoCache      = "no_cache"
	TypeNoStore      = "no_store"
	TypeResponseOnly = "response_only"
	TypeSemanticOnly = "semantic_only"
)

// MaxAgeLimit is the longest max_age a request may ask for; longer ones are clamped to it.
const MaxAgeLimit = 86400 * time.Second

// ValidType reports whether t names a cache_control type.
func ValidType(t string) bool {
	switch t {
	case TypeDefault, TypeNoCache, TypeNoStore, TypeResponseOnly, TypeSemanticOnly:
		return true
	}
	return false
}

// mode is what one request may do with the caches, after cache_control is applied.
type mode struct {
	typ        string
	maxAge     time.Duration // 0 = the configured TTL
	similarity float32       // a stricter semantic threshold this request asked for; 0 = none
	keepBody   bool          // {"type":"ephemeral"}: leave the member in the forwarded body
	refresh    bool          // Cache-Control: max-age=0: serve nothing cached, store the fresh answer

	exactRead, exactWrite, semRead, semWrite bool
}

func newMode(typ string) mode {
	m := mode{typ: typ}
	switch typ {
	case TypeDefault:
		m.exactRead, m.exactWrite, m.semRead, m.semWrite = true, true, true, true
	case TypeNoStore:
		m.exactRead, m.semRead = true, true
	case TypeResponseOnly:
		m.exactRead, m.exactWrite = true, true
	case TypeSemanticOnly:
		m.semRead, m.semWrite = true, true
	}
	return m
}

// cacheControlBody is the body form: {"type": ..., "max_age": seconds, "min_similarity": 0.95}.
type cacheControlBody struct {
	Type          *string          `json:"type"`
	MaxAge        *json.RawMessage `json:"max_age"`
	MinSimilarity *float64         `json:"min_similarity"`
}

// quickCacheControl reads the body form of the common shape (valid JSON: ParseRequest checked
// the body) without encoding/json's reflection, its members matched as encoding/json matches
// them (foldMembers). ok is false for anything it is not sure to read exactly as json.Unmarshal
// into cacheControlBody would (a name or type that is not plain ASCII, a null, a value of
// another kind): that goes to encoding/json. FuzzQuickCacheControl holds the two to the same
// answer.
func quickCacheControl(raw []byte) (cc cacheControlBody, ok bool) {
	var vals [3][]byte // type, max_age, min_similarity
	if len(raw) == 0 || raw[0] != '{' || !foldMembers(raw, []string{"type", "max_age", "min_similarity"}, vals[:], false) {
		return cc, false
	}
	if v := vals[0]; v != nil {
		if v[0] != '"' || !plainName(v[1:len(v)-1]) {
			return cc, false
		}
		t := string(v[1 : len(v)-1])
		cc.Type = &t
	}
	if v := vals[1]; v != nil {
		if !isNumberStart(v[0]) {
			return cc, false
		}
		r := json.RawMessage(v)
		cc.MaxAge = &r
	}
	if v := vals[2]; v != nil {
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil || !isNumberStart(v[0]) {
			return cc, false
		}
		cc.MinSimilarity = &f
	}
	return cc, true
}

// isNumberStart reports the first byte of a JSON number.
func isNumberStart(c byte) bool { return c == '-' || ('0' <= c && c <= '9') }

// parseCacheControl derives the request's mode from the body member (raw, nil when absent)
// and the Cache-Control / X-Cache-Min-Similarity headers. The body wins field by field.
// allowed limits the types a client may name (nil = all); defaultType applies otherwise.
func parseCacheControl(raw []byte, h http.Header, defaultType string, allowed map[string]bool) (mode, *apiError) {
	var typ string
	var maxAge time.Duration
	var minSim float64
	keep, refresh := false, false

	// Header forms first; the body overrides what it names.
	for _, v := range h["Cache-Control"] {
		for d := range strings.SplitSeq(v, ",") {
			d = strings.ToLower(strings.TrimSpace(d))
			switch {
			case d == "no-cache":
				typ = TypeNoCache
			case d == "no-store":
				if typ != TypeNoCache {
					typ = TypeNoStore
				}
			case strings.HasPrefix(d, "max-age="):
				n, err := strconv.ParseInt(strings.Trim(d[len("max-age="):], `"`), 10, 64)
				if err != nil || n < 0 {
					return mode{}, badRequest("cache_control.max_age",
						fmt.Sprintf("Cache-Control max-age must be a whole number of seconds, got %q.", d))
				}
				if n == 0 {
					// What browsers send on reload: do not serve me a cached answer.
					refresh = true
					continue
				}
				maxAge = clampAge(n)
			}
		}
	}
	if v := httphdr.Get(h, "X-Cache-Min-Similarity"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 || f > 1 {
			return mode{}, badRequest("cache_control.min_similarity",
				fmt.Sprintf("X-Cache-Min-Similarity must be a number in (0, 1], got %q.", v))
		}
		minSim = f
	}

	if raw != nil {
		cc, ok := quickCacheControl(raw)
		if !ok {
			if err := json.Unmarshal(raw, &cc); err != nil || raw[0] != '{' {
				return mode{}, badRequest("cache_control",
					`cache_control must be an object like {"type": "no_store", "max_age": 600}.`)
			}
		}
		if cc.Type != nil {
			switch t := *cc.Type; {
			case t == "ephemeral":
				keep = true // another vendor's prompt-caching hint: not ours, passed on
			case ValidType(t):
				typ = t
			default:
				return mode{}, badRequest("cache_control.type", fmt.Sprintf(
					"Invalid cache_control.type %q: expected one of default, no_cache, no_store, response_only, semantic_only.", t))
			}
		}
		if cc.MaxAge != nil {
			n, ok := integerSeconds(*cc.MaxAge)
			if !ok || n <= 0 {
				return mode{}, badRequest("cache_control.max_age", fmt.Sprintf(
					"Invalid cache_control.max_age %s: expected a positive integer number of seconds (at most 86400).", *cc.MaxAge))
			}
			maxAge = clampAge(n)
		}
		if cc.MinSimilarity != nil {
			if f := *cc.MinSimilarity; f <= 0 || f > 1 {
				return mode{}, badRequest("cache_control.min_similarity",
					"cache_control.min_similarity must be a number in (0, 1].")
			}
			minSim = *cc.MinSimilarity
		}
	}

	if typ != "" && allowed != nil && !allowed[typ] {
		return mode{}, badRequest("cache_control.type",
			fmt.Sprintf("cache_control.type %q is not allowed by this proxy's configuration.", typ))
	}
	if typ == "" {
		typ = defaultType
	}
	m := newMode(typ)
	m.maxAge = maxAge
	m.similarity = float32(minSim)
	m.keepBody = keep
	if refresh {
		m.refresh = true
		m.exactRead, m.semRead = false, false
	}
	return m, nil
}

// integerSeconds reads a JSON number that is a whole number (60 or 60.0, not 1.5 or "60").
func integerSeconds(raw json.RawMessage) (int64, bool) {
	s := strings.TrimSpace(string(raw))
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true
	}
	if s == "" || !(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || math.IsInf(f, 0) {
		return 0, false
	}
	if f > math.MaxInt32 {
		return math.MaxInt32, true
	}
	return int64(f), true
}

func clampAge(seconds int64) time.Duration {
	if seconds > int64(MaxAgeLimit/time.Second) {
		return MaxAgeLimit
	}
	return time.Duration(seconds) * time.Second
}
