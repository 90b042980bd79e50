//go:build !(linux || darwin || freebsd)

package h1

// Supported reports whether this platform can tell a pooled connection the upstream has
// closed from a live one; without that, use net/http's Transport.
const Supported = false

func alive(*conn) bool { return false }
