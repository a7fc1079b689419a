package bus_test

import (
	"fmt"
	"testing"

	"github.com/smolvmm/smolvmm/bus"
)

// recIRQ records every level it is driven to.
type recIRQ struct{ levels []bool }

func newRecIRQ() *recIRQ         { return &recIRQ{} }
func (r *recIRQ) Set(level bool) { r.levels = append(r.levels, level) }
func (r *recIRQ) Levels() []bool { return r.levels }

// Level is the last level driven (low before any).
func (r *recIRQ) Level() bool { return len(r.levels) > 0 && r.levels[len(r.levels)-1] }

func TestSharedIRQInputs(t *testing.T) {
	line := newRecIRQ()
	s := bus.NewSharedIRQ(line)
	a, b := s.Input(), s.Input()
	for _, step := range []struct {
		in    bus.IRQ
		level bool
		want  bool
	}{
		{a, true, true},
		{a, true, true}, // repeated: still one input high
		{b, true, true},
		{a, false, true},
		{a, false, true}, // repeated low must not count b out
		{b, false, false},
		{b, false, false},
		{b, true, true},
		{b, false, false},
	} {
		step.in.Set(step.level)
		if line.Level() != step.want {
			t.Fatalf("after Set(%v): line %v, want %v (levels %v)", step.level, line.Level(), step.want, line.Levels())
		}
	}
	// The line is driven only on changes: high, low, high, low.
	if got := line.Levels(); len(got) != 4 {
		t.Errorf("line driven %d times (%v), want 4: only on changes", len(got), got)
	}
}

func ExampleSharedIRQ() {
	line := newRecIRQ()
	shared := bus.NewSharedIRQ(line)
	disk, nic := shared.Input(), shared.Input()
	disk.Set(true)
	nic.Set(true)
	disk.Set(false) // the disk's ISR was read; the NIC still interrupts
	fmt.Println(line.Level())
	nic.Set(false)
	fmt.Println(line.Level())
	// Output:
	// true
	// false
}
