package proxy

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"strings"

	"github.com/zest-proxy/zest/cache"
)

// KeyHash returns the hex SHA-256 of the request's bearer token (or Azure-style api-key), or
// "" when it has none. zest never keeps or logs the token itself.
func KeyHash(r *http.Request) string {
	ns := keyNamespace(r)
	if ns == "" {
		return ""
	}
	return ns[2:]
}

// keyNamespace is "k:" + KeyHash(r), built in one allocation; "" without a token.
func keyNamespace(r *http.Request) string {
	var token string
	if auth := r.Header.Get("Authorization"); len(auth) >= 7 && strings.EqualFold(auth[:7], "bearer ") {
		token = strings.TrimSpace(auth[7:])
	} else if k := r.Header.Get("Api-Key"); k != "" {
		token = strings.TrimSpace(k)
	} else {
		return ""
	}
	var tb [256]byte
	sum := sha256.Sum256(append(tb[:0], token...))
	var out [2 + 2*sha256.Size]byte
	out[0], out[1] = 'k', ':'
	hex.Encode(out[2:], sum[:])
	return string(out[:])
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
// keyNS is keyNamespace(r).
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
