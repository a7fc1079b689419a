package vmm_test

import (
	"encoding/json"
	"sync/atomic"
	"testing"

	"github.com/smolvmm/smolvmm/vmm"
)

// TestRestorePMUPerSnapshot: New disables the VM's PMU; Restore, with or
// without PrepareRestore, disables it for a snapshot whose CPUID
// advertises none, and keeps it for one whose CPUID advertises a PMU
// (AMD's PerfCtrExtCore, as the build that left every VM its PMU
// recorded on AMD): every restored VM was made without one, and KVM then
// refused such a snapshot's counter MSRs. KVM's answers are faked, so
// that the decision shows on any host; the edited snapshot may then be
// refused for a CPUID bit this host's KVM lacks, after the decision.
func TestRestorePMUPerSnapshot(t *testing.T) {
	var disabled atomic.Int32
	defer vmm.FakePMUDisable(&disabled)()
	path, _ := snapshotNew(t)
	if n := disabled.Swap(0); n != 1 {
		t.Errorf("New disabled the PMU %d times, want once", n)
	}
	withPMU := editSnapshot(t, path, func(v map[string]json.RawMessage) {
		es := recordedCPUID(t, v)
		for i := range es {
			if es[i].Function == 0x80000001 {
				es[i].ECX |= 1 << 23 // PerfCtrExtCore
			}
		}
		setCPUID(t, v, es)
	}, nil)
	tests := []struct {
		name string
		path string
		want int32 // PMU disables
	}{
		{"snapshot without a PMU", path, 1},
		{"snapshot with a PMU", withPMU, 0},
	}
	for _, tt := range tests {
		for _, prepared := range []bool{false, true} {
			name := tt.name
			if prepared {
				name += ", prepared"
			}
			t.Run(name, func(t *testing.T) {
				disabled.Store(0)
				var opts []vmm.RestoreOption
				if prepared {
					p := vmm.PrepareRestore("", tt.path)
					defer p.Close()
					opts = append(opts, vmm.WithPrepared(p))
				}
				m, err := vmm.Restore(vmm.Config{}, tt.path, opts...)
				if err == nil {
					m.Close()
				} else {
					t.Logf("Restore: %v", err)
				}
				if tt.want == 1 && err != nil {
					t.Errorf("Restore of the unedited snapshot: %v", err)
				}
				if n := disabled.Load(); n != tt.want {
					t.Errorf("Restore disabled the PMU %d times, want %d", n, tt.want)
				}
			})
		}
	}
}
