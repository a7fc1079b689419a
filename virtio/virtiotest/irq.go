package virtiotest

import "sync"

// IRQ is a bus.IRQ that records every level it is driven to.
type IRQ struct {
	mu     sync.Mutex
	level  bool
	levels []bool
	raised chan struct{}
}

// NewIRQ returns a line at level low.
func NewIRQ() *IRQ { return &IRQ{raised: make(chan struct{}, 1)} }

// Set records level and, when raised, signals Raised.
func (i *IRQ) Set(level bool) {
	i.mu.Lock()
	i.level = level
	i.levels = append(i.levels, level)
	i.mu.Unlock()
	if level {
		select {
		case i.raised <- struct{}{}:
		default:
		}
	}
}

// Pulse records a high then a low level.
func (i *IRQ) Pulse() {
	i.Set(true)
	i.Set(false)
}

// Level is the current level.
func (i *IRQ) Level() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.level
}

// Levels returns every level set so far, in order.
func (i *IRQ) Levels() []bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	return append([]bool(nil), i.levels...)
}

// Raised receives after the line was driven high (at most one pending).
func (i *IRQ) Raised() <-chan struct{} { return i.raised }
