package proxy

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
)

// TestBackgroundWorkers: Wait returns only after every piece of background work has run, a
// panic in one piece is recovered and the worker goes on to the next, and idle workers exit
// (checkGoroutines fails the test if one is left behind).
func TestBackgroundWorkers(t *testing.T) {
	checkGoroutines(t)
	h := &Handler{idle: make(chan func()), logger: slog.New(slog.DiscardHandler)}
	var ran atomic.Int32
	for i := range 200 {
		h.goBackground(func() {
			if i%10 == 0 {
				panic("a bug in background work")
			}
			ran.Add(1)
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := h.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ran.Load(); got != 180 {
		t.Errorf("%d pieces of work ran before Wait returned, want 180", got)
	}
}
