// Package goid tells a goroutine apart from others, for the few calls
// that must know whether they come from a goroutine their own package
// waits for: a Close called from a callback, on the goroutine that Close
// would wait to end, must not wait for itself.
package goid

import (
	"runtime"
	"strconv"
	"strings"
	"sync"
)

// ID returns the calling goroutine's id. Go gives goroutines no identity
// of their own; the header of runtime.Stack's trace ("goroutine 7
// [running]:") is the only place it shows. It costs a few microseconds:
// call it where a callback is entered or a Close starts, not per frame.
func ID() uint64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	s := strings.TrimPrefix(string(buf[:n]), "goroutine ")
	id, _, _ := strings.Cut(s, " ")
	v, _ := strconv.ParseUint(id, 10, 64)
	return v
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
