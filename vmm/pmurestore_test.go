package vmm

import (
	"testing"

	"github.com/bobuhiro11/gokvm/kvm"
)

// TestCPUIDHasPMU: a CPUID advertises a PMU by any of the signs
// tuneCPUID clears, on Intel (leaf 0xA's version, PDCM) and AMD (the
// counter extensions, PerfMonV2); the other bits of those leaves, and a
// leaf 0xA with counters but version 0, do not. A snapshot taken by the
// build that left the VM its PMU, on AMD, shows PerfCtrExtCore.
func TestCPUIDHasPMU(t *testing.T) {
	tests := []struct {
		name    string
		entries []cpuidEntry
		want    bool
	}{
		{"none", nil, false},
		{"no PMU bits", []cpuidEntry{{Function: 1, ECX: 1 << 0, EDX: 1 << 12}, {Function: 0x80000001, ECX: 1 << 6}}, false},
		{"Intel leaf 0xA version 2", []cpuidEntry{{Function: 0xA, EAX: 0x07300402}}, true},
		{"Intel leaf 0xA version 0", []cpuidEntry{{Function: 0xA, EAX: 0x07300400, EBX: 0x7F}}, false},
		{"Intel PDCM", []cpuidEntry{{Function: 1, ECX: 1 << 15}}, true},
		{"AMD PerfCtrExtCore", []cpuidEntry{{Function: 0x80000001, ECX: 1 << 23}}, true},
		{"AMD PerfCtrExtNB", []cpuidEntry{{Function: 0x80000001, ECX: 1 << 24}}, true},
		{"AMD PerfCtrExtLLC", []cpuidEntry{{Function: 0x80000001, ECX: 1 << 28}}, true},
		{"AMD PerfMonV2", []cpuidEntry{{Function: 0x80000022, EAX: 1, EBX: 6}}, true},
		{"AMD leaf 0x80000022 without PerfMonV2", []cpuidEntry{{Function: 0x80000022, EAX: 2}}, false},
		{"PDCM's bit in another leaf", []cpuidEntry{{Function: 7, ECX: 1 << 15}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cpuidHasPMU(tt.entries); got != tt.want {
				t.Errorf("cpuidHasPMU(%+v) = %v, want %v", tt.entries, got, tt.want)
			}
		})
	}
}

// TestCPUIDHasPMUAfterTune: what tuneCPUID gives a new VM never
// advertises a PMU, so that a snapshot of it is restored without one.
func TestCPUIDHasPMUAfterTune(t *testing.T) {
	for _, vendor := range []kvm.CPUIDEntry2{
		{Function: 0, Eax: 0x80000022, Ebx: 0x756E6547, Edx: 0x49656E69, Ecx: 0x6C65746E}, // GenuineIntel
		{Function: 0, Eax: 0x80000022, Ebx: 0x68747541, Edx: 0x69746E65, Ecx: 0x444D4163}, // AuthenticAMD
	} {
		in := []kvm.CPUIDEntry2{vendor,
			{Function: 1, Ecx: 1 << 15}, {Function: 0xA, Eax: 0x07300402},
			{Function: 0x80000001, Ecx: 1<<23 | 1<<24 | 1<<28}, {Function: 0x80000022, Eax: 1, Ebx: 6}}
		if es := cpuidEntries(tuneCPUID(in, 0)); cpuidHasPMU(es) {
			t.Errorf("tuned CPUID %+v advertises a PMU", es)
		}
	}
}

// TestRestoredPMU: a restore disables the VM's PMU (where KVM can) only
// for a snapshot whose CPUID advertises none; a snapshot whose CPUID
// does (one taken by the build that left every VM its PMU) keeps it, so
// that KVM takes the counters' MSRs the snapshot saved. Every VM was
// made without one, and such a snapshot from an AMD host was refused at
// MSR 0xc0010200.
func TestRestoredPMU(t *testing.T) {
	amdOld := []cpuidEntry{{Function: 0x80000001, ECX: 1<<23 | 1<<6}}
	intelOld := []cpuidEntry{{Function: 1, ECX: 1 << 15}, {Function: 0xA}}
	noPMU := []cpuidEntry{{Function: 1}, {Function: 0xA}, {Function: 0x80000001, ECX: 1 << 6}}
	tests := []struct {
		name        string
		entries     []cpuidEntry
		canDisable  bool
		wantDisable bool
	}{
		{"AMD snapshot with a PMU", amdOld, true, false},
		{"Intel snapshot with a PMU", intelOld, true, false},
		{"snapshot without a PMU", noPMU, true, true},
		{"snapshot without a PMU, KVM cannot disable", noPMU, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := func(uintptr, kvm.Capability) (uintptr, error) {
				if tt.canDisable {
					return pmuCapDisable, nil
				}
				return 0, nil
			}
			disabled := false
			enable := func(_ uintptr, a *enableCapArgs) error {
				disabled = a.Cap == uint32(kvm.CapPMUCapability) && a.Args[0] == pmuCapDisable
				return nil
			}
			fakePMUCalls(t, check, enable)
			if err := restoredPMU(3, 4, tt.entries); err != nil {
				t.Fatal(err)
			}
			if disabled != tt.wantDisable {
				t.Errorf("PMU disabled: %v, want %v", disabled, tt.wantDisable)
			}
		})
	}
}
