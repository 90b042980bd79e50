package proxy

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientIP is the client's address for rate limits: the connection's peer, unless the peer is
// one of Options.TrustedProxies. Then the Forwarded header (RFC 7239, its for= parameters) or,
// without it, X-Forwarded-For is read from the right: the first address that is not a trusted
// proxy is the client (the entries left of it were written by the client and prove nothing).
// When every entry is trusted, the leftmost is taken; a malformed entry stops the walk at the
// last trusted hop's peer.
func (h *Handler) clientIP(r *http.Request) string {
	peer := ClientIP(r)
	if len(h.opts.TrustedProxies) == 0 {
		return peer
	}
	addr, err := netip.ParseAddr(peer)
	if err != nil || !h.trusted(addr) {
		return peer
	}
	hops := forwardedFor(r.Header)
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(hops[i])
		if err != nil {
			return client
		}
		client = a.Unmap().String()
		if !h.trusted(a) {
			return client
		}
	}
	return client
}

func (h *Handler) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range h.opts.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwardedFor lists the client addresses a request's proxies recorded, oldest first: the
// for= parameters of Forwarded when present, else X-Forwarded-For. Ports, brackets and quotes
// are removed; obfuscated identifiers ("unknown", "_hidden") stay and fail to parse.
func forwardedFor(hd http.Header) []string {
	var out []string
	if fw := hd.Values("Forwarded"); len(fw) > 0 {
		for _, line := range fw {
			for _, elem := range strings.Split(line, ",") {
				for _, pair := range strings.Split(elem, ";") {
					k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
					if ok && strings.EqualFold(k, "for") {
						out = append(out, hostOnly(strings.Trim(v, `"`)))
					}
				}
			}
		}
		return out
	}
	for _, line := range hd.Values("X-Forwarded-For") {
		for _, v := range strings.Split(line, ",") {
			if v = strings.TrimSpace(v); v != "" {
				out = append(out, hostOnly(v))
			}
		}
	}
	return out
}

// hostOnly strips a port and IPv6 brackets: "[2001:db8::1]:443" → "2001:db8::1".
func hostOnly(v string) string {
	if host, _, err := net.SplitHostPort(v); err == nil {
		return host
	}
	return strings.TrimSuffix(strings.TrimPrefix(v, "["), "]")
}
