package vmm_test

import (
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/portready/portreadytest"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestRestoreReadiness: a guest snapshotted after it was ready is ready
// again at the restore's first instruction only when the restore has no
// readiness condition of its own; with one, PhaseReady waits for it after
// the restore, and never comes when the restored guest does not meet it
// (the counter guest runs to its end, so the negatives are deterministic).
func TestRestoreReadiness(t *testing.T) {
	path, _, _ := snapshotCounter(t, vmm.Config{}, "")
	// A port bound and never listening for the whole test, where a port
	// once listened on and closed could be taken by another's listener.
	closed := portreadytest.Refusing(t)
	tests := []struct {
		name string
		cfg  vmm.Config
		// ready: PhaseReady reported; after: the phase it follows.
		ready bool
		after vmm.Phase
	}{
		{"no condition: ready as it first runs", vmm.Config{}, true, vmm.PhaseFirstRun},
		{"a pattern the restored guest prints", vmm.Config{Ready: regexp.MustCompile(`^count 105$`)}, true, vmm.PhaseFirstOutput},
		{"a pattern never printed", vmm.Config{Ready: regexp.MustCompile(`never-printed`)}, false, ""},
		{"a port that never answers", vmm.Config{ReadyAddr: closed}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var phases []vmm.Phase
			cfg := tt.cfg
			cfg.OnEvent = func(e vmm.Event) { phases = append(phases, e.Phase) }
			_, e, err := restoreRun(t, cfg, path)
			wantDebugExit(t, e, err, 0)
			i := slices.Index(phases, vmm.PhaseReady)
			if (i >= 0) != tt.ready {
				t.Fatalf("ready reported %v, want %v (phases %v)", i >= 0, tt.ready, phases)
			}
			if tt.ready && (i == 0 || phases[i-1] != tt.after) {
				t.Errorf("ready reported after %v, want right after %s", phases[:i], tt.after)
			}
		})
	}
}

// TestReadyGuestPort: with ReadyGuestPort, PhaseReady is the guest's
// SYN-ACK from that port on its network card, the connections to
// ReadyAddr (a user-network forward, which accepts on the host before it
// asks the guest) only making the forward ask: the vnet guest listening
// there is ready, one refusing there (RST) is not, though the forward
// accepted every connection on the host. Each guest ends by itself.
func TestReadyGuestPort(t *testing.T) {
	tests := []struct {
		name, words string
		ready       bool
	}{
		{"accepts", "listen=80 timeout=30", true},
		{"refuses", "listen=81 timeout=30", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := vnetReadyByPort(t, tt.words) // onevent_test.go
			var phases []vmm.Phase
			cfg.OnEvent = func(e vmm.Event) { phases = append(phases, e.Phase) }
			out, e, err := boot(t, cfg, 60*time.Second)
			wantDebugExit(t, e, err, 0)
			if ready := slices.Contains(phases, vmm.PhaseReady); ready != tt.ready {
				t.Errorf("ready %v, want %v (phases %v)\n%s", ready, tt.ready, phases, out)
			}
		})
	}
}
