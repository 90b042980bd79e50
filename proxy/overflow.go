package proxy

import (
	"bytes"
)

// An answer larger than the flight's maxBuffer (Options.MaxResponseBytes) overflows: from the
// byte that passes the cap on, it is relayed to the flight's clients as it arrives and never
// assembled or stored, nobody new may join, and the parts every client has written are dropped.
// The reader waits for the slowest client when more than maxBuffer bytes are unwritten, so a
// flight holds at most about maxBuffer bytes however large the answer is.

// cursor is one client's place in a flight's answer: the index of the next part it writes.
// It is read and written under the flight's lock.
type cursor struct {
	next int
	done bool
}

// newCursorLocked adds a client's cursor at the start of the answer. f.mu must be held (or f
// not yet shared).
func (f *flight) newCursorLocked() *cursor {
	if f.cursors == nil { // the leader's: in the flight itself, as most flights have no other
		f.cursors = f.firstCursors[:1]
		f.cursors[0] = &f.leaderCursor
		return &f.leaderCursor
	}
	c := &cursor{}
	f.cursors = append(f.cursors, c)
	return c
}

// advance records that c has written the parts before next; an overflowing flight's reader
// may be waiting for that.
func (f *flight) advance(c *cursor, next int) {
	f.mu.Lock()
	c.next = next
	if f.overflow {
		f.broadcastLocked()
	}
	f.mu.Unlock()
}

// count adds n read bytes to the answer and overflows the flight once they pass maxBuffer:
// the assembler and the buffered body are let go, and the flight leaves its group.
func (rd *reading) count(f *flight, n int) {
	rd.total += int64(n)
	if rd.overflow || f.maxBuffer <= 0 || rd.total <= f.maxBuffer {
		return
	}
	rd.overflow, rd.asm = true, nil
	f.mu.Lock()
	f.overflow = true
	if rd.body.Len() > 0 {
		b := rd.body.Bytes()
		f.parts = append(f.parts, b)
		f.held += int64(len(b))
		rd.body = bytes.Buffer{}
	}
	f.broadcastLocked()
	f.mu.Unlock()
	if f.group != nil {
		f.group.forget(f) // a newcomer could not get the answer from its start
	}
}

// feedBody takes bytes of a plain (not SSE) answer: kept whole until the flight overflows,
// published to the clients as they come after.
func (f *flight) feedBody(rd *reading, p []byte) {
	rd.count(f, len(p))
	if !rd.overflow {
		rd.body.Write(p)
		return
	}
	rd.refill(f)
	b := rd.clone(p)
	f.mu.Lock()
	f.parts = append(f.parts, b)
	f.held += int64(len(p))
	f.broadcastLocked()
	f.mu.Unlock()
}

// makeRoom drops the parts every client has written and, while more than maxBuffer bytes are
// still unwritten, waits for the slowest client (or for the call to end).
func (f *flight) makeRoom(h *Handler) {
	for {
		f.mu.Lock()
		f.peak = max(f.peak, f.held)
		f.trimLocked()
		full := f.held > f.maxBuffer && f.activeLocked()
		var ch <-chan struct{}
		if full {
			ch = f.changedLocked()
		}
		f.mu.Unlock()
		if !full {
			return
		}
		select {
		case <-ch:
		case <-f.ctx.Done():
			return
		}
	}
}

// activeLocked reports whether any client still reads the answer.
func (f *flight) activeLocked() bool {
	for _, c := range f.cursors {
		if !c.done {
			return true
		}
	}
	return false
}

// trimLocked drops the parts that every client still reading has written.
func (f *flight) trimLocked() {
	low := -1
	for _, c := range f.cursors {
		if !c.done && (low < 0 || c.next < low) {
			low = c.next
		}
	}
	if low < 0 {
		low = f.base + len(f.parts) // nobody reads: nothing need be kept
	}
	k := low - f.base
	if k <= 0 {
		return
	}
	for i, b := range f.parts[:k] {
		f.held -= int64(len(b))
		f.parts[i] = nil
		if f.overflow && f.spareBytes+int64(cap(b)) <= f.maxBuffer {
			f.spare = append(f.spare, b) // nobody reads it any more: the reader may refill it
			f.spareBytes += int64(cap(b))
		}
	}
	f.parts = f.parts[k:]
	f.base += k
}

// refill drops what every client of an overflowing flight has written and hands the buffers
// to its reader, for the parts it is about to publish.
func (rd *reading) refill(f *flight) {
	if !rd.overflow {
		return
	}
	f.mu.Lock()
	f.trimLocked()
	rd.spare = append(rd.spare, f.spare...)
	clear(f.spare)
	f.spare, f.spareBytes = f.spare[:0], 0
	f.mu.Unlock()
}

// clone copies b for publishing, into a spare buffer when one is large enough: an overflowing
// answer of any size then reuses the buffers of what its clients have written, and makes no
// garbage for the collector to let the heap grow by.
func (rd *reading) clone(b []byte) []byte {
	if n := len(rd.spare); n > 0 {
		buf := rd.spare[n-1]
		rd.spare[n-1] = nil
		rd.spare = rd.spare[:n-1]
		if cap(buf) >= len(b) {
			return append(buf[:0], b...)
		}
	}
	return bytes.Clone(b)
}

// notePeak keeps the most bytes any one flight has held, for Stats and the memory tests.
func (h *Handler) notePeak(f *flight) {
	f.mu.Lock()
	p := max(f.peak, f.held)
	f.mu.Unlock()
	for {
		cur := h.peakFlightBytes.Load()
		if p <= cur || h.peakFlightBytes.CompareAndSwap(cur, p) {
			return
		}
	}
}
