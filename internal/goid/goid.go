// Package goid tells a goroutine apart from others, for the few calls
// that must know whether they come from a goroutine their own package
// waits for: a Close called from a callback, on the goroutine that Close
// would wait to end, must not wait for itself.
package goid

import (
	"sync"

	"github.com/petermattis/goid"
)

// ID returns the calling goroutine's id, the one runtime.Stack's trace
// shows ("goroutine 7 [running]:"). Go gives goroutines no identity of
// their own; goid.Get reads it from the runtime's goroutine structure (a
// few instructions of assembly and a field at an offset it keeps per Go
// version), where parsing runtime.Stack's header cost 25-80 µs and, after
// the VMM unmaps its executable (internal/exepages), mapped back ~1 MiB of
// the runtime's function, file and line tables that a traceback reads.
// TestIDIsRuntimeStacks checks it against that header for the Go version
// the tests run with.
func ID() uint64 {
	return uint64(goid.Get())
}

// Set holds goroutines while they run something (a callback, most
// often), so that a call made from inside it can tell (HoldsCaller). The
// zero Set is empty and ready.
type Set struct {
	mu  sync.Mutex
	ids map[uint64]int
}

// Enter adds the calling goroutine until the returned leave is called.
// Entries nest: a goroutine entered twice stays until it left twice.
func (s *Set) Enter() (leave func()) {
	id := ID()
	s.mu.Lock()
	if s.ids == nil {
		s.ids = map[uint64]int{}
	}
	s.ids[id]++
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		if s.ids[id]--; s.ids[id] == 0 {
			delete(s.ids, id)
		}
		s.mu.Unlock()
	}
}

// HoldsCaller reports whether the calling goroutine is in the set.
func (s *Set) HoldsCaller() bool {
	id := ID()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids[id] > 0
}
