package proxy

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"strings"

	"github.com/zest-proxy/zest/cache"
	"github.com/zest-proxy/zest/internal/httphdr"
)

// KeyHash returns the hex SHA-256 of the credential the request presents, or "" when it
// presents none. zest never keeps or logs the credential itself.
//
// The credential is, first found: the Authorization header (a Bearer token by its token
// alone, any other scheme by the whole value, so "Basic x" and "Bearer x" are different
// tenants; an empty Bearer is still a credential), then the api-key header (Azure), then
// x-api-key (Anthropic and others). The same secret sent as a Bearer token or as an api-key
// is the same tenant. Only a request with none of these is anonymous.
func KeyHash(r *http.Request) string {
	var ns keyNSBuf
	if !ns.fill(r) {
		return ""
	}
	return string(ns[2:])
}

// keyNSBuf holds a key namespace, "k:" + KeyHash(r), without allocating it.
type keyNSBuf [2 + 2*sha256.Size]byte

// fill writes r's key namespace into b; false without a credential.
func (b *keyNSBuf) fill(r *http.Request) bool {
	cred, ok := credential(r.Header)
	if !ok {
		return false
	}
	var tb [256]byte
	sum := sha256.Sum256(append(tb[:0], cred...))
	b[0], b[1] = 'k', ':'
	hex.Encode(b[2:], sum[:])
	return true
}

// keyNamespace is "k:" + KeyHash(r), "" without a credential, from h's table of the tenants
// seen: the same string for every request of a tenant, so that the entries they store share it
// (see interner).
func (h *Handler) keyNamespace(r *http.Request) string {
	var ns keyNSBuf
	if !ns.fill(r) {
		return ""
	}
	return h.tenants.of(ns[:])
}

// credential is the secret a request presents (see KeyHash); ok is false when it has none.
func credential(h http.Header) (string, bool) {
	if auth := strings.TrimSpace(httphdr.Get(h, "Authorization")); auth != "" {
		if len(auth) >= 6 && strings.EqualFold(auth[:6], "bearer") && (len(auth) == 6 || auth[6] == ' ') {
			if tok := strings.TrimSpace(auth[6:]); tok != "" {
				return tok, true
			}
			return "authorization:bearer", true
		}
		return "authorization:" + auth, true
	}
	for _, k := range [...]string{"Api-Key", "X-Api-Key"} {
		if v := strings.TrimSpace(httphdr.Get(h, k)); v != "" {
			return v, true
		}
	}
	return "", false
}

// ClientIP is the connection's remote address without the port. X-Forwarded-For is not trusted.
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// namespace is the cache namespace of a request under the configured policy:
// "k:<key hash>", "u:<user>" (falling back to the key when the body names no user) or "shared".
// keyNS is h.keyNamespace(r).
func (h *Handler) namespace(req *cache.Request, keyNS string) string {
	switch h.opts.Namespace {
	case "shared":
		return "shared"
	case "user":
		if u := jsonString(req.User.Value); u != "" {
			return "u:" + u
		}
	}
	if keyNS == "" {
		return "k:"
	}
	return keyNS
}
