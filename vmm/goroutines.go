package vmm

import "github.com/smolvmm/smolvmm/internal/goid"

// goroutineSet holds the goroutines that Run waits for before it returns
// (its own, with the vCPU thread's callbacks; the Config.Input pump; the
// console writer; a ReadyAddr prober or transmit watch while it reports
// PhaseReady). Close called from one of them cannot wait for Run.
type goroutineSet struct{ goid.Set }

// enter adds the calling goroutine until the returned leave is called.
func (s *goroutineSet) enter() (leave func()) { return s.Enter() }

// holdsCaller reports whether the calling goroutine is in the set.
func (s *goroutineSet) holdsCaller() bool { return s.HoldsCaller() }
