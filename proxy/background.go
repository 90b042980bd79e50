package proxy

import "time"

// workerIdle is how long a background worker waits for more work before it exits.
const workerIdle = 250 * time.Millisecond

// goBackground runs work on a goroutine of its own that Wait waits for, a panic recovered and
// logged. A worker left idle by earlier work takes it when one is waiting: on a busy proxy the
// work that follows each answer (filing it by meaning, recording it) then runs on a stack
// already grown to what it needs, where a fresh goroutine would grow its small stack again on
// every call (about 12k instructions of a default miss, measured with callgrind). Workers are
// made only when none is idle, and each exits after workerIdle without work.
func (h *Handler) goBackground(work func()) {
	h.background.Add(1)
	select {
	case h.idle <- work:
	default:
		go h.worker(work)
	}
}

// worker runs work, then whatever goBackground hands it until it has waited workerIdle.
func (h *Handler) worker(work func()) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		h.runBackground(work)
		idle.Reset(workerIdle)
		select {
		case work = <-h.idle:
		case <-idle.C:
			return
		}
	}
}

func (h *Handler) runBackground(work func()) {
	defer h.background.Done()
	defer h.recoverCall()
	work()
}
