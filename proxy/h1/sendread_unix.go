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

// sendReader sends and reads on one connection (sendRead). Its state lives with the connection
// and step, the function the poller calls, is bound once, so that a call allocates nothing: a
// closure over sendRead's own variables had moved five of them, and itself, to the heap on every
// upstream call. A sendReader serves one call at a time, as its connection does.
type sendReader struct {
	rc   syscall.RawConn
	step func(fd uintptr) bool // s.run

	// The state of the call in progress.
	out, p     []byte
	sent, n    int
	werr, rerr error
	waited     bool
}

func newSendReader(rc syscall.RawConn) *sendReader {
	s := &sendReader{rc: rc}
	s.step = s.run
	return s
}

// sendRead writes out, then reads into p once the peer has answered: one read, where a write
// followed by a read would first try the read while the peer has not answered yet (a read that
// finds nothing), then wait. The wait is the runtime's poller's, under the connection's read
// deadline. sent is how much of out went out; when it is short of len(out) (the socket's
// buffer was full) and err is nil, nothing was read and the caller writes the rest itself.
func (s *sendReader) sendRead(out, p []byte) (sent, n int, err error) {
	s.out, s.p, s.sent, s.n, s.werr, s.rerr, s.waited = out, p, 0, 0, nil, nil, false
	cerr := s.rc.Read(s.step)
	sent, n, werr, rerr := s.sent, s.n, s.werr, s.rerr
	s.out, s.p, s.werr, s.rerr = nil, nil, nil, nil // keep neither the caller's buffers nor errors
	switch {
	case werr != nil:
		return sent, 0, werr
	case cerr != nil:
		return sent, 0, &net.OpError{Op: "read", Net: "tcp", Err: cerr}
	}
	return sent, n, rerr
}

// run is the poller's function (step): it writes what is left of out, then, once woken by the
// peer, reads into p. It reports whether the call is done.
func (s *sendReader) run(fd uintptr) bool {
	for s.sent < len(s.out) {
		m, e := syscall.Write(int(fd), s.out[s.sent:])
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			return true // the rest goes out through the connection's own Write
		case e != nil:
			s.werr = &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", e)}
			return true
		}
		s.sent += m
	}
	if !s.waited {
		// The readiness the poller knew of was reset before this function ran: whatever
		// the peer sends from now on wakes the wait.
		s.waited = true
		return false
	}
	for {
		m, e := syscall.Read(int(fd), s.p)
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			return false
		case e != nil:
			s.rerr = &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", e)}
		case m == 0 && len(s.p) > 0:
			s.rerr = io.EOF
		default:
			s.n = m
		}
		return true
	}
}
