package bus

import "sync"

// SharedIRQ is one level-triggered interrupt line driven by several
// devices, wired-OR as PCI INTx lines are: the line is high while any
// input is high. The VMM needs it when two devices share an IRQ: KVM keeps
// a single level per line for all of userspace, so one device lowering its
// INTx (the guest read its ISR) would otherwise drop another device's
// pending interrupt, and that device, still "asserted", would never raise
// the line again.
type SharedIRQ struct {
	mu   sync.Mutex
	line IRQ
	high int // inputs at level high
}

// NewSharedIRQ returns a shared line that drives line.
func NewSharedIRQ(line IRQ) *SharedIRQ { return &SharedIRQ{line: line} }

// Input returns a new input of the line, at level low. Give one to each
// device on the line.
func (s *SharedIRQ) Input() IRQ { return &sharedInput{s: s} }

// sharedInput is one device's connection to a SharedIRQ.
type sharedInput struct {
	s    *SharedIRQ
	high bool // guarded by s.mu
}

// Set drives this input; the line changes only when the first input rises
// or the last one falls.
func (in *sharedInput) Set(level bool) {
	s := in.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if in.high == level {
		return
	}
	in.high = level
	if level {
		s.high++
		if s.high == 1 {
			s.line.Set(true)
		}
		return
	}
	s.high--
	if s.high == 0 {
		s.line.Set(false)
	}
}
