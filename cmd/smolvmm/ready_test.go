package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/guests"
)

// TestCLIRestoreReady: run --restore of a snapshot taken at the ready
// point reports ready at its first instruction without a readiness flag;
// with --ready it waits for that pattern on what the restored guest
// prints, and reports no ready when the guest never prints it (the
// counter guest runs to its end, so this is deterministic).
func TestCLIRestoreReady(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := guests.ForTest(t, "counter")
	snap := filepath.Join(t.TempDir(), "counter.snap")
	if out, stderr, status := runCLI(t, "run", "-k", kernel, "-m", "16", "-a", "n=120 at=100", "--net", "none",
		"--snapshot", snap, "--snapshot-exit"); status != 0 {
		t.Fatalf("snapshot run: status %d, output %q, stderr:\n%s", status, out, stderr)
	}
	tests := []struct {
		name  string
		args  []string
		ready bool
		// after: the phase ready comes right after in --timings.
		after string
	}{
		{"no ready flag", nil, true, "first-run"},
		{"a pattern the restored guest prints", []string{"--ready", "^count 110$"}, true, "first-output"},
		{"a pattern never printed", []string{"--ready", "never-printed"}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"run", "--restore", snap, "--net", "none", "--timings"}, tt.args...)
			_, stderr, status := runCLI(t, args...)
			if status != 1 {
				t.Fatalf("status %d, want 1 (debug-exit 0)\n%s", status, stderr)
			}
			phases := timingPhases(stderr)
			i := strings.Index(" "+strings.Join(phases, " ")+" ", " ready ")
			if (i >= 0) != tt.ready {
				t.Fatalf("ready in --timings %v, want %v:\n%s", i >= 0, tt.ready, stderr)
			}
			if tt.ready && !strings.Contains(" "+strings.Join(phases, " ")+" ", " "+tt.after+" ready ") {
				t.Errorf("ready not right after %s:\n%s", tt.after, stderr)
			}
		})
	}
}

// timingPhases returns the phase names of --timings' lines, in order.
func timingPhases(stderr string) []string {
	var phases []string
	for _, l := range strings.Split(stderr, "\n") {
		if f := strings.Fields(l); strings.HasPrefix(l, "  ") && len(f) == 2 {
			phases = append(phases, f[0])
		}
	}
	return phases
}
