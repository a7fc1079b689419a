package vmm

import (
	"fmt"
	"testing"
)

// TestMTRRMSRs: a vCPU with MTRRs (CPUID.1:EDX bit 12) has MTRRdefType,
// the fixed ranges when MTRRcap says so and MTRRcap's count of variable
// pairs saved, though KVM_GET_MSR_INDEX_LIST names none of them (a
// restored NetBSD, which writes MTRRdefType at boot, found it 0); a
// count past what KVM sets at once is bounded.
func TestMTRRMSRs(t *testing.T) {
	fixed := "[2ff 250 258 259 268 269 26a 26b 26c 26d 26e 26f"
	for _, tt := range []struct {
		name  string
		cpuid []cpuidEntry
		cap   uint64
		capOK bool
		want  string
	}{
		{"KVM's: 8 pairs, fixed", []cpuidEntry{{Function: 1, EDX: 1 << 12}}, 0x508, true,
			fixed + " 200 201 202 203 204 205 206 207 208 209 20a 20b 20c 20d 20e 20f]"},
		{"no fixed, 1 pair", []cpuidEntry{{Function: 0}, {Function: 1, EDX: 1<<12 | 1}}, 0x1, true, "[2ff 200 201]"},
		{"no MTRR in CPUID", []cpuidEntry{{Function: 1, EDX: 1}}, 0x508, true, "[]"},
		{"no leaf 1", nil, 0x508, true, "[]"},
		{"MTRRcap unreadable", []cpuidEntry{{Function: 1, EDX: 1 << 12}}, 0, false, "[]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := fmt.Sprintf("%x", mtrrMSRs(cpuidHasMTRR(tt.cpuid), tt.cap, tt.capOK))
			if got != tt.want {
				t.Errorf("MTRRs %s, want %s", got, tt.want)
			}
		})
	}
	if n := len(mtrrMSRs(true, 0x1ff, true)); n != 1+len(mtrrFixed)+2*maxVarMTRRs || n >= maxIOMSRs/2 {
		t.Errorf("MTRRcap counting 255 pairs: %d MSRs, want %d, well under KVM's %d at once", n, 1+len(mtrrFixed)+2*maxVarMTRRs, maxIOMSRs)
	}
}
