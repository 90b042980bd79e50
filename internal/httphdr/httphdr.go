// Package httphdr reads header maps without canonicalising constant keys on every call.
package httphdr

import "net/http"

// Get is h.Get(key) for a key already in canonical form (as "Content-Type" is). It finds what
// Get finds, since Get looks up the canonical form of its key, which key already is, and it
// skips Get's check of that form on each call. A key not in canonical form finds nothing.
func Get(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}
