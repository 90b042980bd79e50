//go:build !(linux || darwin || freebsd)

package h1

import (
	"net"
	"syscall"
)

// Supported reports whether this platform can tell a pooled connection the upstream has
// closed from a live one; without that, use net/http's Transport.
const Supported = false

func alive(*conn) bool { return false }

func rawConn(net.Conn) syscall.RawConn { return nil }

// sendReader is never made here: a connection without a raw connection sends as it reads.
type sendReader struct{}

func newSendReader(syscall.RawConn) *sendReader { return nil }

func (*sendReader) sendRead([]byte, []byte) (int, int, error) {
	panic("h1: sendRead without a raw connection")
}
