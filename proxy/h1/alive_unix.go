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
	if c.sr != nil {
		return c.sr.quiet()
	}
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	quiet := false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		quiet = rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK
		return true
	})
	return err == nil && quiet
}
