package vmm

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/bobuhiro11/gokvm/kvm"
)

func TestTuneCPUID(t *testing.T) {
	intel := kvm.CPUIDEntry2{Function: 0, Eax: 0xD, Ebx: 0x756E6547, Edx: 0x49656E69, Ecx: 0x6C65746E}
	amd := kvm.CPUIDEntry2{Function: 0, Eax: 0xD, Ebx: 0x68747541, Edx: 0x69746E65, Ecx: 0x444D4163}
	leaf1 := kvm.CPUIDEntry2{Function: 1, Ebx: 0x07080800, Ecx: 0xFFFFFFFF}
	pmu := kvm.CPUIDEntry2{Function: 0xA, Eax: 0x07300403}
	topo := kvm.CPUIDEntry2{Function: 0xB, Flags: 1, Eax: 1, Ebx: 1, Ecx: 0x100, Edx: 3} // as answered on host CPU 3
	tests := []struct {
		name     string
		in       []kvm.CPUIDEntry2
		khz      uint64
		wantMax  uint32
		want15   bool
		wantHz15 uint32
	}{
		{"intel gets leaf 0x15", []kvm.CPUIDEntry2{intel, leaf1, pmu, topo}, 2400000, 0x15, true, 1000000000},
		{"amd untouched", []kvm.CPUIDEntry2{amd, leaf1, pmu}, 2400000, 0xD, false, 0},
		{"unknown TSC", []kvm.CPUIDEntry2{intel, leaf1}, 0, 0xD, false, 0},
		{"host leaf kept", []kvm.CPUIDEntry2{intel, leaf1, {Function: 0x15, Eax: 2, Ebx: 100, Ecx: 24000000}}, 2400000, 0xD, true, 24000000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := tuneCPUID(append([]kvm.CPUIDEntry2(nil), tt.in...), tt.khz)
			var got15 *kvm.CPUIDEntry2
			for i := range out {
				e := &out[i]
				switch e.Function {
				case 0:
					if e.Eax != tt.wantMax {
						t.Errorf("max leaf %#x, want %#x", e.Eax, tt.wantMax)
					}
				case 1:
					if e.Ecx&(1<<3) != 0 || e.Ebx>>24 != 0 || (e.Ebx>>16)&0xFF != 1 {
						t.Errorf("leaf 1 = %+v: MONITOR must be off, APIC ID 0, one logical CPU", e)
					}
				case 0xA:
					if e.Eax != 0 {
						t.Errorf("PMU leaf not hidden: %+v", e)
					}
				case 0xB:
					if e.Edx != 0 || e.Ecx != 0x100 {
						t.Errorf("leaf 0xB = %+v: x2APIC ID must be 0, the rest kept", e)
					}
				case 0x15:
					got15 = e
				}
			}
			if (got15 != nil) != tt.want15 {
				t.Fatalf("leaf 0x15 present = %v, want %v", got15 != nil, tt.want15)
			}
			if got15 != nil && got15.Ecx != tt.wantHz15 {
				t.Errorf("leaf 0x15 ECX = %d, want %d", got15.Ecx, tt.wantHz15)
			}
		})
	}
}

// TestCPUIDOneCPUTopology checks that every topology leaf describes the one
// CPU leaf 1 declares, whatever the host's counts, read the way NetBSD's
// x86_cpu_topology reads them (Intel: leaf 1 EBX[23:16] logical CPUs, leaf
// 4 EAX[31:26]+1 cores; AMD: 0x80000008 ECX NC and core ID size, 0x8000001E
// threads per core).
func TestCPUIDOneCPUTopology(t *testing.T) {
	host := []kvm.CPUIDEntry2{
		{Function: 0, Eax: 0x1F, Ebx: 0x756E6547, Edx: 0x49656E69, Ecx: 0x6C65746E},
		{Function: 1, Ebx: 0x10100800, Edx: 1 << 28}, // HTT, 16 logical CPUs, APIC ID 16
		{Function: 4, Index: 0, Eax: 0x1C004121},     // 8 cores, 2 sharing the L1d
		{Function: 4, Index: 3, Eax: 0x1C03C163},     // 16 sharing the L3
		{Function: 0xB, Index: 0, Eax: 1, Ebx: 2, Ecx: 0x100, Edx: 5},
		{Function: 0xB, Index: 1, Eax: 4, Ebx: 16, Ecx: 0x201, Edx: 5},
		{Function: 0xB, Index: 2, Eax: 0, Ebx: 0, Ecx: 2, Edx: 5}, // the invalid level ending the list
		{Function: 0x80000008, Ecx: 0x700F},                       // 16 cores, 7 core ID bits
		{Function: 0x8000001D, Index: 0, Eax: 0x4121},             // 2 sharing
		{Function: 0x8000001E, Eax: 0x11, Ebx: 0x0108, Ecx: 0x0103},
	}
	out := tuneCPUID(slices.Clone(host), 0)
	if len(out) != len(host) {
		t.Fatalf("%d leaves out of %d", len(out), len(host))
	}
	for i, e := range out {
		name := fmt.Sprintf("leaf %#x.%d", e.Function, e.Index)
		switch e.Function {
		case 1:
			if got := (e.Ebx >> 16) & 0xFF; got != 1 {
				t.Errorf("%s: %d logical CPUs, want 1", name, got)
			}
		case 4, 0x8000001D:
			if cores, sharing := e.Eax>>26+1, (e.Eax>>14)&0xFFF+1; e.Function == 4 && cores != 1 || sharing != 1 {
				t.Errorf("%s EAX %#x: %d cores, %d CPUs sharing, want 1 and 1", name, e.Eax, cores, sharing)
			}
			if e.Eax&0x3FFF != host[i].Eax&0x3FFF {
				t.Errorf("%s EAX %#x: the cache's type and level changed (host %#x)", name, e.Eax, host[i].Eax)
			}
		case 0xB:
			level := (e.Ecx >> 8) & 0xFF
			if e.Edx != 0 {
				t.Errorf("%s: x2APIC ID %d, want 0", name, e.Edx)
			}
			if level != 0 && (e.Ebx&0xFFFF != 1 || e.Eax&0x1F != 0) {
				t.Errorf("%s (level type %d): %d CPUs, shift %d; want 1 and 0", name, level, e.Ebx&0xFFFF, e.Eax&0x1F)
			}
			if level == 0 && e.Ebx != 0 {
				t.Errorf("%s: the invalid level must stay empty, EBX %#x", name, e.Ebx)
			}
		case 0x80000008:
			if nc, bits := e.Ecx&0xFF, (e.Ecx>>12)&0xF; nc != 0 || bits != 0 {
				t.Errorf("%s: NC %d, core ID bits %d; want 0 and 0", name, nc, bits)
			}
		case 0x8000001E:
			if e.Eax != 0 || e.Ebx&0xFFFF != 0 || e.Ecx&0x7FF != 0 {
				t.Errorf("%s = %#x %#x %#x: want extended APIC ID, core, threads and node all 0", name, e.Eax, e.Ebx, e.Ecx)
			}
		}
	}
}

// TestTSCLeafFrequency reads the leaf 0x15 tuneCPUID makes the way NetBSD's
// cpu_tsc_freq_cpuid does (crystal kHz = ECX/1000, TSC = kHz*1000*EBX/EAX)
// and Linux does (ECX*EBX/EAX): both must get the vCPU's TSC frequency,
// also above 4.29 GHz, where the frequency in Hz no longer fits ECX.
func TestTSCLeafFrequency(t *testing.T) {
	intel := kvm.CPUIDEntry2{Function: 0, Eax: 0xD, Ebx: 0x756E6547, Edx: 0x49656E69, Ecx: 0x6C65746E}
	for _, khz := range []uint64{1000000, 2400000, 2899999, 4294967, 4294968, 5000000, 5300123} {
		out := tuneCPUID([]kvm.CPUIDEntry2{intel}, khz)
		var e *kvm.CPUIDEntry2
		for i := range out {
			if out[i].Function == 0x15 {
				e = &out[i]
			}
		}
		if e == nil || e.Eax == 0 || e.Ebx == 0 || e.Ecx == 0 {
			t.Fatalf("%d kHz: leaf 0x15 = %+v, want all of EAX, EBX, ECX set", khz, e)
		}
		netbsd := uint64(e.Ecx) / 1000 * 1000 * uint64(e.Ebx) / uint64(e.Eax)
		linux := uint64(e.Ecx) * uint64(e.Ebx) / uint64(e.Eax)
		if netbsd != khz*1000 || linux != khz*1000 {
			t.Errorf("%d kHz: leaf 0x15 %+v gives NetBSD %d Hz and Linux %d Hz, want %d", khz, e, netbsd, linux, khz*1000)
		}
	}
}

// TestCPUID2Layout checks cpuid2 against struct kvm_cpuid2 as the kernel
// reads it: nent and padding, then 40-byte entries from offset 8, with a
// spare entry for the leaf tuneCPUID may add.
func TestCPUID2Layout(t *testing.T) {
	var c cpuid2
	if off := unsafe.Offsetof(c.entries); off != cpuid2HeaderSize {
		t.Errorf("entries at offset %d, want %d", off, cpuid2HeaderSize)
	}
	if size := unsafe.Sizeof(c.entries[0]); size != 40 {
		t.Errorf("entry size %d, want 40 (struct kvm_cpuid_entry2)", size)
	}
	if n := len(c.entries); n != maxCPUIDEntries+1 {
		t.Errorf("room for %d entries, want %d", n, maxCPUIDEntries+1)
	}
}

// TestCheckCPUID: a restore refuses feature bits the host's KVM lacks,
// naming leaf, subleaf, register and bits, and only in feature registers;
// against a snapshot's record of KVM's answer (kvmRecord) it gives the
// same verdicts as against the whole answer.
func TestCheckCPUID(t *testing.T) {
	sup := []cpuidEntry{
		{Function: 0, EAX: 0xD, EBX: 0x756E6547},
		{Function: 1, ECX: 0x0000_00F0, EDX: 0xFF, EAX: 0x906EA},
		{Function: 4, Index: 0, Flags: cpuidFlagIndexed, EAX: 0x121},
		{Function: 7, Index: 0, Flags: cpuidFlagIndexed, EBX: 0x1},
		{Function: 7, Index: 1, Flags: cpuidFlagIndexed},
		{Function: 0xB, Index: 0, Flags: cpuidFlagIndexed, EDX: 3},
	}
	record := kvmRecord(sup)
	if want := []cpuidEntry{sup[1], sup[3], sup[4]}; !slices.Equal(record, want) {
		t.Fatalf("kvmRecord = %+v, want the feature leaves %+v", record, want)
	}
	tests := []struct {
		name string
		rec  []cpuidEntry
		want string // "" for accepted
	}{
		{"subset", []cpuidEntry{{Function: 1, ECX: 0x10, EDX: 0x1}, {Function: 7, Flags: cpuidFlagIndexed, EBX: 1}}, ""},
		{"other family and leaf 0x15 are not features", []cpuidEntry{{Function: 1, EAX: 0x12345}, {Function: 0x15, EAX: 1, EBX: 2, ECX: 3}}, ""},
		{"one bit", []cpuidEntry{{Function: 1, ECX: 0x11}}, "CPUID leaf 0x1 ECX bit 0, which"},
		{"bits of two registers", []cpuidEntry{{Function: 1, ECX: 0x300, EDX: 0x100}}, "leaf 0x1 ECX bits 8, 9; leaf 0x1 EDX bit 8"},
		{"subleaf", []cpuidEntry{{Function: 7, Index: 0, Flags: cpuidFlagIndexed, EBX: 1}, {Function: 7, Index: 1, Flags: cpuidFlagIndexed, EAX: 1 << 5}}, "leaf 0x7 subleaf 1 EAX bit 5"},
		{"leaf the host lacks", []cpuidEntry{{Function: 0x80000001, EDX: 1 << 29}}, "leaf 0x80000001 EDX bit 29"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkCPUID(tt.rec, sup, false)
			if again := checkCPUID(tt.rec, record, false); fmt.Sprint(again) != fmt.Sprint(err) {
				t.Errorf("checkCPUID against the record = %v, against the answer %v", again, err)
			}
			if tt.want == "" {
				if err != nil {
					t.Fatalf("checkCPUID = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrCPUID) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("checkCPUID = %v, want ErrCPUID mentioning %q", err, tt.want)
			}
		})
	}
}

// TestTuneCPUIDFeatureBits: the feature bits a guest is given whatever
// the host's KVM_GET_SUPPORTED_CPUID says of them, read in the register
// a guest reads: leaf 1 ECX bit 31 (hypervisor), which KVM lists only
// since Linux 6.14 and without which NetBSD 9's x86_errata() writes MSRs
// KVM refuses on AMD family 10h and Zen 1 signatures. And those it is
// not given whatever KVM says: VMX (leaf 1 ECX bit 5) and SVM (leaf
// 0x80000001 ECX bit 2), which KVM lists with nested=1, though a snapshot
// keeps no nested state, nor KVM's paravirtual features (leaf 0x40000001),
// which grow with each kernel and which NetBSD does not read; its
// signature (leaf 0x40000000), which NetBSD does, stays. The host's other
// bits pass.
func TestTuneCPUIDFeatureBits(t *testing.T) {
	intel := kvm.CPUIDEntry2{Function: 0, Eax: 0xD, Ebx: 0x756E6547, Edx: 0x49656E69, Ecx: 0x6C65746E}
	amd := kvm.CPUIDEntry2{Function: 0, Eax: 0xD, Ebx: 0x68747541, Edx: 0x69746E65, Ecx: 0x444D4163}
	const sse3, vmx, ssse3, hypervisor = 1 << 0, 1 << 5, 1 << 9, 1 << 31
	const lahf, svm, abm = 1 << 0, 1 << 2, 1 << 5
	tests := []struct {
		name       string
		vendor     kvm.CPUIDEntry2
		leaf       uint32
		reg        string
		host, want uint32
	}{
		{"hypervisor bit where KVM lacks it (Linux < 6.14), Intel", intel, 1, "ECX", sse3 | ssse3, sse3 | ssse3 | hypervisor},
		{"hypervisor bit where KVM lacks it (Linux < 6.14), AMD", amd, 1, "ECX", sse3 | ssse3, sse3 | ssse3 | hypervisor},
		{"hypervisor bit where KVM lists it", amd, 1, "ECX", sse3 | hypervisor, sse3 | hypervisor},
		{"no leaf 1 ECX feature but the hypervisor", intel, 1, "ECX", 0, hypervisor},
		{"VMX (nested=1)", intel, 1, "ECX", sse3 | vmx | ssse3 | hypervisor, sse3 | ssse3 | hypervisor},
		{"SVM (nested=1)", amd, 0x80000001, "ECX", lahf | svm | abm, lahf | abm},
		{"SVM on a non-AMD leaf 0x80000001", intel, 0x80000001, "ECX", lahf | svm, lahf},
		{"KVM's paravirtual features", intel, 0x40000001, "EAX", 0x01007AFB, 0},
		{"KVM's paravirtual hints", amd, 0x40000001, "EDX", 1, 0},
		{"KVM's signature", intel, 0x40000000, "EBX", 0x4B4D564B, 0x4B4D564B},
		{"KVM's paravirtual leaves", amd, 0x40000000, "EAX", 0x40000001, 0x40000001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := kvm.CPUIDEntry2{Function: tt.leaf}
			*cpuidReg(&e, tt.reg) = tt.host
			out := tuneCPUID([]kvm.CPUIDEntry2{tt.vendor, e}, 0)
			for i := range out {
				if out[i].Function != tt.leaf {
					continue
				}
				if got := *cpuidReg(&out[i], tt.reg); got != tt.want {
					t.Errorf("leaf %#x %s = %#08x given the host's %#08x, want %#08x", tt.leaf, tt.reg, got, tt.host, tt.want)
				}
				return
			}
			t.Fatalf("leaf %#x missing from %+v", tt.leaf, out)
		})
	}
}

// TestCheckCPUIDAcrossKernels: a snapshot from a host whose KVM lists
// HYPERVISOR and TSC_DEADLINE_TIMER (leaf 1 ECX bits 31 and 24, Linux 6.14
// and later) restores on the same CPU under an older kernel, which lists
// neither: KVM gives a vCPU the hypervisor bit whatever it lists (and
// tuneCPUID sets it everywhere), and the TSC deadline timer wherever it
// has KVM_CAP_TSC_DEADLINE_TIMER. Without that capability the timer is
// missing; another bit missing is still refused.
func TestCheckCPUIDAcrossKernels(t *testing.T) {
	const sse3, monitor, ssse3, deadline, hypervisor = 1 << 0, 1 << 3, 1 << 9, 1 << 24, 1 << 31
	older := []cpuidEntry{{Function: 0, EAX: 0xD}, {Function: 1, ECX: sse3 | ssse3, EDX: 0xFF}}
	tests := []struct {
		name        string
		recECX      uint32
		tscDeadline bool // KVM_CAP_TSC_DEADLINE_TIMER
		want        string
	}{
		{"hypervisor", sse3 | ssse3 | hypervisor, false, ""},
		{"hypervisor, the timer capability", sse3 | hypervisor, true, ""},
		{"TSC deadline timer, the capability", sse3 | deadline, true, ""},
		{"TSC deadline timer and hypervisor, the capability", ssse3 | deadline | hypervisor, true, ""},
		{"TSC deadline timer, no capability", sse3 | deadline | hypervisor, false, "leaf 0x1 ECX bit 24, which"},
		{"another bit missing", sse3 | monitor | deadline | hypervisor, true, "leaf 0x1 ECX bit 3, which"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := []cpuidEntry{{Function: 0, EAX: 0xD}, {Function: 1, ECX: tt.recECX, EDX: 0x1}}
			for _, sup := range [][]cpuidEntry{older, kvmRecord(older)} {
				err := checkCPUID(rec, sup, tt.tscDeadline)
				if tt.want == "" {
					if err != nil {
						t.Fatalf("checkCPUID = %v, want nil", err)
					}
					continue
				}
				if !errors.Is(err, ErrCPUID) || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("checkCPUID = %v, want ErrCPUID mentioning %q", err, tt.want)
				}
			}
		})
	}
}
