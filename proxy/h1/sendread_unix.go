//go:build linux || darwin || freebsd

package h1

import (
	"io"
	"net"
	"os"
	"syscall"
)

// rawConn is nc's syscall.RawConn, or nil when nc has none (a wrapped connection).
func rawConn(nc net.Conn) syscall.RawConn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// sendRead writes out, then reads into p once the peer has answered: one read, where a write
// followed by a read would first try the read while the peer has not answered yet (a read that
// finds nothing), then wait. The wait is the runtime's poller's, under the connection's read
// deadline. sent is how much of out went out; when it is short of len(out) (the socket's
// buffer was full) and err is nil, nothing was read and the caller writes the rest itself.
func sendRead(rc syscall.RawConn, out, p []byte) (sent, n int, err error) {
	var werr, rerr error
	waited := false
	cerr := rc.Read(func(fd uintptr) bool {
		for sent < len(out) {
			m, e := syscall.Write(int(fd), out[sent:])
			switch {
			case e == syscall.EINTR:
				continue
			case e == syscall.EAGAIN:
				return true // the rest goes out through the connection's own Write
			case e != nil:
				werr = &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", e)}
				return true
			}
			sent += m
		}
		if !waited {
			// The readiness the poller knew of was reset before this function ran: whatever
			// the peer sends from now on wakes the wait.
			waited = true
			return false
		}
		for {
			m, e := syscall.Read(int(fd), p)
			switch {
			case e == syscall.EINTR:
				continue
			case e == syscall.EAGAIN:
				return false
			case e != nil:
				rerr = &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", e)}
			case m == 0 && len(p) > 0:
				rerr = io.EOF
			default:
				n = m
			}
			return true
		}
	})
	switch {
	case werr != nil:
		return sent, 0, werr
	case cerr != nil:
		return sent, 0, &net.OpError{Op: "read", Net: "tcp", Err: cerr}
	}
	return sent, n, rerr
}
