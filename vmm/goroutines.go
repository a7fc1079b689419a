package vmm

import (
	"runtime"
	"strconv"
	"strings"
	"sync"
)

// goid returns the calling goroutine's id. Go gives goroutines no
// identity of their own; the header of runtime.Stack's trace ("goroutine
// 7 [running]:") is the only place it shows. It is read only where a
// call must know whether it comes from a goroutine Run waits for (Close,
// and a callback entering or leaving), never per guest exit.
func goid() uint64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	s := strings.TrimPrefix(string(buf[:n]), "goroutine ")
	id, _, _ := strings.Cut(s, " ")
	v, _ := strconv.ParseUint(id, 10, 64)
	return v
}

// goroutineSet holds the goroutines that Run waits for before it returns
// (its own, with the vCPU thread's callbacks; the Config.Input pump; the
// console writer; a ReadyAddr prober or transmit watch while it reports
// PhaseReady). Close called from one of them cannot wait for Run.
type goroutineSet struct {
	mu  sync.Mutex
	ids map[uint64]int
}

// enter adds the calling goroutine until the returned leave is called.
func (s *goroutineSet) enter() (leave func()) {
	id := goid()
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

// holdsCaller reports whether the calling goroutine is in the set.
func (s *goroutineSet) holdsCaller() bool {
	id := goid()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids[id] > 0
}
