package main

import (
	"path/filepath"
	"testing"

	"github.com/smolvmm/smolvmm/bench"
	"github.com/smolvmm/smolvmm/guests"
)

// TestBenchPortReady: the counter guest writes the boot-timer port at
// count 5. Without a ready condition, bench counts it ready there and
// stops it a second later when it spins on (it timed out: no ready pipe
// was given, so the write was learned only from the report at the end);
// with a --ready line that comes much later, or never, ready is the
// port's write, as run --timings says, not the line's.
func TestBenchPortReady(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	counter := guests.ForTest(t, "counter")
	for _, tt := range []struct {
		name    string
		args    []string
		stopped bool // else either: a slow host may take a second to count
	}{
		{"spins, no ready condition", []string{"-a", "n=20 at=5 spin"}, true},
		{"line never printed", []string{"-a", "n=20 at=5 spin", "--ready", "THIS NEVER APPEARS"}, true},
		{"line later", []string{"-a", "n=400 at=1", "--ready", "^counter: done"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			js := filepath.Join(t.TempDir(), "r.json")
			args := append([]string{"-k", counter, "--net", "none", "-n", "1", "--warmup", "0", "--timeout", "20s", "--json", js}, tt.args...)
			status, stdout, stderr := benchRun(t, nil, args...)
			if status != 0 {
				t.Fatalf("status %d\n%s\n%s", status, stdout, stderr)
			}
			res := readBenchJSON(t, js)
			b := res.Systems[0].Boots[0]
			if tt.stopped && !b.Stopped() {
				t.Errorf("not stopped: %v", b.Phases)
			}
			// The guest ends, or is stopped, after its last line; the
			// write comes at its start.
			end, ok := b.Phases[bench.PhaseGuestExit]
			if !ok {
				end = b.Phases[bench.PhaseStopped]
			}
			first := b.Phases[bench.PhaseFirstOutput]
			if ready, ok := b.Phases[bench.PhaseReady]; !ok || ready > first+(end-first)/2 {
				t.Errorf("ready at %.3f ms (%v), want the port write's, nearer the first output than the end: %v", ready, ok, b.Phases)
			}
		})
	}
}
