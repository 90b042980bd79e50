package proxy

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"strings"

	"github.com/zest-proxy/zest/cache"
)

// KeyHash returns the hex SHA-256 of the request's bearer token, or "" when it has none.
// zest never keeps or logs the token itself.
func KeyHash(r *http.Request) string {
	auth := r.Header.Get("Authorization")
	if len(auth) < 7 || !strings.EqualFold(auth[:7], "bearer ") {
		if k := r.Header.Get("Api-Key"); k != "" { // Azure-style header
			auth = "Bearer " + k
		} else {
			return ""
		}
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(auth[7:])))
	return hex.EncodeToString(sum[:])
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
func (h *Handler) namespace(r *http.Request, req *cache.Request, keyHash string) string {
	switch h.opts.Namespace {
	case "shared":
		return "shared"
	case "user":
		if u := jsonString(req.User.Value); u != "" {
			return "u:" + u
		}
	}
	return "k:" + keyHash
}
