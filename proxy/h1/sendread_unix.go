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

// sendReader sends and reads on one connection (sendRead), and tells whether it is quiet while
// idle (quiet). Its state lives with the connection and the functions the poller calls are bound
// once, so that a call allocates nothing: closures over the callers' own variables, and the raw
// connection asked for on each check, had cost several allocations per upstream call. A
// sendReader serves one call at a time, as its connection does.
type sendReader struct {
	rc       syscall.RawConn
	step     func(fd uintptr) bool // s.run
	peekStep func(fd uintptr) bool // s.peek

	// The state of the call in progress.
	out, p     []byte
	sent, n    int
	werr, rerr error
	waited     bool
	peeked     bool // quiet: the peek found nothing to read
	one        [1]byte
}

func newSendReader(rc syscall.RawConn) *sendReader {
	s := &sendReader{rc: rc}
	s.step, s.peekStep = s.run, s.peek
	return s
}

// quiet reports whether the connection is open with nothing to read: a non-blocking peek
// finds nothing (see alive).
func (s *sendReader) quiet() bool {
	s.peeked = false
	err := s.rc.Read(s.peekStep)
	return err == nil && s.peeked
}

func (s *sendReader) peek(fd uintptr) bool {
	_, _, err := syscall.Recvfrom(int(fd), s.one[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	s.peeked = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
	return true
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
