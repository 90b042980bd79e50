//go:build linux || darwin || freebsd

package h1

import "syscall"

// Supported reports whether this platform can tell a pooled connection the upstream has
// closed from a live one; without that, use net/http's Transport.
const Supported = true

// alive reports whether an idle connection is still open and quiet: a non-blocking peek
// finds nothing to read. End of stream (the upstream closed it while idle), an error, or
// unexpected bytes all mean it must not carry a request.
func alive(c *conn) bool {
	if c.br.Buffered() > 0 {
		return false
	}
	if c.sr == nil {
		// No raw connection to peek with: a wrapped connection cannot be checked, so it is
		// trusted; one whose SyscallConn failed (when it was dialled) is not.
		_, sys := c.nc.(syscall.Conn)
		return !sys
	}
	return c.sr.quiet()
}
