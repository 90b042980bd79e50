//go:build linux || darwin || freebsd

package h1

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// tcpPair is a connected loopback pair: ours (a *net.TCPConn) and the peer's.
func tcpPair(t *testing.T) (ours *net.TCPConn, peer net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer = <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); peer.Close() })
	return c.(*net.TCPConn), peer
}

// sendRead is one call of a new sendReader on rc.
func sendRead(rc syscall.RawConn, out, p []byte) (sent, n int, err error) {
	return newSendReader(rc).sendRead(out, p)
}

// TestSendReaderReused: one connection's sendReader serves call after call, each starting
// afresh (an answer, then the peer's close), and allocates nothing per call.
func TestSendReaderReused(t *testing.T) {
	ours, peer := tcpPair(t)
	const calls = 50
	ping, pong := []byte("ping"), []byte("pong")
	go func() {
		b := make([]byte, 4)
		for range calls + 1 {
			if _, err := io.ReadFull(peer, b); err != nil {
				return
			}
			peer.Write(pong)
		}
		io.ReadFull(peer, b)
		peer.Close()
	}()
	ours.SetReadDeadline(time.Now().Add(time.Minute)) // a call that never sends fails, not hangs
	sr := newSendReader(rawConn(ours))
	p := make([]byte, 16)
	call := func() {
		if sent, n, err := sr.sendRead(ping, p); sent != 4 || err != nil || string(p[:n]) != "pong" {
			t.Fatalf("sent %d, read %q, err %v; want 4, \"pong\", nil", sent, p[:n], err)
		}
	}
	call()
	if n := testing.AllocsPerRun(calls-1, call); n != 0 && !raceEnabled {
		t.Errorf("a send-and-read allocates %v times, want 0", n)
	}
	if sent, n, err := sr.sendRead(ping, p); sent != 4 || n != 0 || err != io.EOF {
		t.Fatalf("after the peer's close: sent %d, n %d, err %v; want 4, 0, EOF", sent, n, err)
	}
}

// TestSendReaderQuiet: an idle connection is quiet, and no longer once the peer has closed it;
// the check allocates nothing.
func TestSendReaderQuiet(t *testing.T) {
	ours, peer := tcpPair(t)
	sr := newSendReader(rawConn(ours))
	check := func() {
		if !sr.quiet() {
			t.Fatal("an open idle connection is not quiet")
		}
	}
	check()
	if n := testing.AllocsPerRun(100, check); n != 0 && !raceEnabled {
		t.Errorf("the quiet check allocates %v times, want 0", n)
	}
	peer.Close()
	ours.SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := ours.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read after the peer's close: %v, want EOF", err)
	}
	if sr.quiet() {
		t.Fatal("a connection the peer closed is quiet")
	}
}

// TestSendRead: the request goes out, and the read returns the peer's answer to it.
func TestSendRead(t *testing.T) {
	ours, peer := tcpPair(t)
	go func() {
		b := make([]byte, 4)
		if _, err := io.ReadFull(peer, b); err == nil && string(b) == "ping" {
			peer.Write([]byte("pong"))
		}
	}()
	p := make([]byte, 16)
	sent, n, err := sendRead(rawConn(ours), []byte("ping"), p)
	if sent != 4 || err != nil || string(p[:n]) != "pong" {
		t.Fatalf("sent %d, read %q, err %v; want 4, \"pong\", nil", sent, p[:n], err)
	}
}

// TestSendReadEnds: the ways a send-and-read ends without an answer, each as the plain
// Write and Read would report it.
func TestSendReadEnds(t *testing.T) {
	t.Run("peer closes", func(t *testing.T) {
		ours, peer := tcpPair(t)
		go func() {
			io.ReadFull(peer, make([]byte, 4))
			peer.Close()
		}()
		sent, n, err := sendRead(rawConn(ours), []byte("ping"), make([]byte, 16))
		if sent != 4 || n != 0 || err != io.EOF {
			t.Fatalf("sent %d, n %d, err %v; want 4, 0, EOF", sent, n, err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		ours, _ := tcpPair(t) // the peer never answers
		ours.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		sent, _, err := sendRead(rawConn(ours), []byte("ping"), make([]byte, 16))
		if sent != 4 || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("sent %d, err %v; want 4, a deadline error", sent, err)
		}
	})
	t.Run("reset", func(t *testing.T) {
		ours, peer := tcpPair(t)
		peer.(*net.TCPConn).SetLinger(0)
		peer.Close() // a reset
		if _, err := ours.Read(make([]byte, 1)); err == nil {
			t.Fatal("read after the peer's reset succeeded")
		}
		sent, _, err := sendRead(rawConn(ours), []byte("ping"), make([]byte, 16))
		var oe *net.OpError
		if sent != 0 || !errors.As(err, &oe) || oe.Op != "write" {
			t.Fatalf("sent %d, err %v; want 0 and the write's error", sent, err)
		}
	})
	t.Run("buffer full", func(t *testing.T) {
		ours, _ := tcpPair(t) // the peer never reads
		rc := rawConn(ours)
		chunk := make([]byte, 64<<10)
		full := false
		for i := 0; i < 4096 && !full; i++ {
			rc.Write(func(fd uintptr) bool {
				_, err := syscall.Write(int(fd), chunk)
				full = err == syscall.EAGAIN
				return true // never wait: stop at the first EAGAIN
			})
		}
		if !full {
			t.Fatal("the socket's send buffer never filled")
		}
		sent, n, err := sendRead(rc, []byte("tail"), make([]byte, 16))
		if sent != 0 || n != 0 || err != nil {
			t.Fatalf("sent %d, n %d, err %v; want 0, 0, nil: the caller writes the rest", sent, n, err)
		}
	})
}
