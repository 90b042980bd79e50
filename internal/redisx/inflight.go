package redisx

import "sync"

// Inflight runs background writes and lets a caller wait for those already started (unlike
// a sync.WaitGroup, Go may run concurrently with Wait). The zero value is ready to use.
type Inflight struct {
	mu      sync.Mutex
	pending map[uint64]chan struct{}
	seq     uint64
}

// Go runs fn in a new goroutine, tracked until it returns.
func (f *Inflight) Go(fn func()) {
	ch := make(chan struct{})
	f.mu.Lock()
	if f.pending == nil {
		f.pending = map[uint64]chan struct{}{}
	}
	f.seq++
	id := f.seq
	f.pending[id] = ch
	f.mu.Unlock()
	go func() {
		defer func() {
			f.mu.Lock()
			delete(f.pending, id)
			f.mu.Unlock()
			close(ch)
		}()
		fn()
	}()
}

// Wait blocks until every fn started by Go before it has returned.
func (f *Inflight) Wait() {
	f.mu.Lock()
	chs := make([]chan struct{}, 0, len(f.pending))
	for _, ch := range f.pending {
		chs = append(chs, ch)
	}
	f.mu.Unlock()
	for _, ch := range chs {
		<-ch
	}
}
