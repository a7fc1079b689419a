package bench

import (
	"encoding/json"
	"fmt"
	"os"
)

// ChildReport is what a Target with a ReportFlag writes to the file named
// after that flag before it exits: its own phases on CLOCK_MONOTONIC.
type ChildReport struct {
	// Phases maps a phase name (PhaseRuntime, PhaseVMCreated, ...) to
	// CLOCK_MONOTONIC nanoseconds (see MonoNow and MonoOf).
	Phases map[string]int64 `json:"phases_mono_ns"`
	// GuestStatus is the exit status the guest chose by ending the run
	// itself: (v<<1)|1 for a write of v to the debug-exit port, 0 for a
	// halt, reset or power-off. Nil when the run ended otherwise (a stop,
	// an error of the VMM): the bench then takes no nonzero status as a
	// good end, since the VMM's own failures have odd statuses too (1
	// for most errors, 128+n for a signal under a jail).
	GuestStatus *int `json:"guest_status,omitempty"`
}

// WriteChildReport writes r to path as JSON.
func WriteChildReport(path string, r ChildReport) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("bench report: %w", err)
	}
	return nil
}

func readChildReport(path string) (ChildReport, error) {
	var r ChildReport
	b, err := os.ReadFile(path)
	if err != nil {
		return r, fmt.Errorf("bench report: %w", err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("bench report %s: %w", path, err)
	}
	for name := range r.Phases {
		if !knownPhase(name) {
			return r, fmt.Errorf("bench report %s: unknown phase %q", path, name)
		}
	}
	return r, nil
}
