package vmm

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/bobuhiro11/gokvm/kvm"
	"golang.org/x/sys/unix"
)

// TestCreateVMError: KVM_CREATE_VM's errno becomes an *Error saying what
// it means, the errno kept: EBUSY (another hypervisor holding VT-x or
// AMD-V, KVM turning them on at the first VM before Linux 6.12) said
// only "KVM_CREATE_VM: device or resource busy". EINTR is asked again.
func TestCreateVMError(t *testing.T) {
	tests := []struct {
		name    string
		errs    []error // what each KVM_CREATE_VM returns, the last for good
		want    string  // the error, "" for none
		is      []error
		calls   int
		wantErr bool
	}{
		{"busy", []error{unix.EBUSY}, "KVM_CREATE_VM: " + ErrVirtualizationInUse.Error() + ": device or resource busy (stop the other hypervisor using this CPU, such as VirtualBox or VMware, then try again)",
			[]error{ErrVirtualizationInUse, unix.EBUSY}, 1, true},
		{"busy after a signal", []error{unix.EINTR, unix.EBUSY}, "KVM_CREATE_VM: " + ErrVirtualizationInUse.Error() + ": device or resource busy (stop the other hypervisor using this CPU, such as VirtualBox or VMware, then try again)",
			[]error{ErrVirtualizationInUse, unix.EBUSY}, 2, true},
		{"out of memory", []error{unix.ENOMEM}, "KVM_CREATE_VM: the kernel has no memory for a new VM (the host's, or this process's memory cgroup's, is used up): cannot allocate memory",
			[]error{unix.ENOMEM}, 1, true},
		{"other", []error{unix.EINVAL}, "KVM_CREATE_VM: invalid argument", []error{unix.EINVAL}, 1, true},
		{"made after a signal", []error{unix.EINTR, nil}, "", nil, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			fd, err := createVMBy(func() (uintptr, error) {
				e := tt.errs[min(calls, len(tt.errs)-1)]
				calls++
				if e != nil {
					return 0, e
				}
				return 7, nil
			})
			if calls != tt.calls {
				t.Errorf("KVM_CREATE_VM made %d times, want %d", calls, tt.calls)
			}
			if !tt.wantErr {
				if err != nil || fd != 7 {
					t.Fatalf("createVMBy = %d, %v; want 7", fd, err)
				}
				return
			}
			var ve *Error
			if !errors.As(err, &ve) || err.Error() != tt.want {
				t.Fatalf("error %v\nwant the *Error %q", err, tt.want)
			}
			for _, target := range tt.is {
				if !errors.Is(err, target) {
					t.Errorf("error %v is not %v", err, target)
				}
			}
			if tt.errs[len(tt.errs)-1] != unix.EBUSY && errors.Is(err, ErrVirtualizationInUse) {
				t.Errorf("error %v says the CPU's virtualization is taken", err)
			}
		})
	}
}

// TestCheckRequiredCaps: a KVM without KVM_CAP_IMMEDIATE_EXIT (Linux
// before 4.11, where kvm_run's immediate_exit is padding) is refused,
// naming the capability and the release; a kick and a snapshot relied on
// it unchecked.
func TestCheckRequiredCaps(t *testing.T) {
	failed := errors.New("refused")
	tests := []struct {
		name   string
		answer map[kvm.Capability]uintptr
		err    error // KVM_CHECK_EXTENSION's own
		want   []string
		is     error
		field  string // the device is KVMPath's; a failed ioctl says nothing of it
	}{
		{"has it", map[kvm.Capability]uintptr{kvm.CapImmediateExit: 1}, nil, nil, nil, ""},
		{"lacks it", map[kvm.Capability]uintptr{}, nil,
			[]string{"/dev/kvm has no KVM_CAP_IMMEDIATE_EXIT", "Linux 4.11", ErrKVMTooOld.Error(), "(use Linux 4.11 or newer)"}, ErrKVMTooOld, "KVMPath"},
		{"cannot ask", nil, failed, []string{"KVM_CHECK_EXTENSION(KVM_CAP_IMMEDIATE_EXIT): refused"}, failed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var asked []kvm.Capability
			check := func(fd uintptr, c kvm.Capability) (uintptr, error) {
				if fd != 3 {
					t.Errorf("asked fd %d, want /dev/kvm's, 3", fd)
				}
				asked = append(asked, c)
				return tt.answer[c], tt.err
			}
			err := checkRequiredCaps(check, 3, "/dev/kvm")
			if len(asked) == 0 || asked[0] != kvm.CapImmediateExit {
				t.Errorf("asked %v, want KVM_CAP_IMMEDIATE_EXIT (%d)", asked, kvm.CapImmediateExit)
			}
			if tt.is == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ve *Error
			if !errors.As(err, &ve) || !errors.Is(err, tt.is) {
				t.Fatalf("error %v, want an *Error wrapping %v", err, tt.is)
			}
			if ve.Field != tt.field {
				t.Errorf("error %v: Field %q, want %q", err, ve.Field, tt.field)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// fakePMUCalls makes disablePMU ask check and enable through enable for
// the rest of the test.
func fakePMUCalls(t *testing.T, check func(fd uintptr, c kvm.Capability) (uintptr, error), enable func(vmFD uintptr, a *enableCapArgs) error) {
	oldCheck, oldEnable := pmuCheck, pmuEnable
	pmuCheck, pmuEnable = check, enable
	t.Cleanup(func() { pmuCheck, pmuEnable = oldCheck, oldEnable })
}

// TestDisablePMU: the VM's PMU is disabled (KVM_ENABLE_CAP on the VM with
// KVM_CAP_PMU_CAPABILITY, KVM_PMU_CAP_DISABLE) when KVM says it can; a
// KVM that cannot (before Linux 5.18, or with enable_pmu off) is left
// alone without an error. Hiding CPUID leaf 0xA alone left an AMD guest
// the legacy counters.
func TestDisablePMU(t *testing.T) {
	failed := errors.New("refused")
	tests := []struct {
		name       string
		answer     uintptr
		checkErr   error
		enableErr  error
		wantEnable bool
		wantErr    error
	}{
		{"can disable", pmuCapDisable, nil, nil, true, nil},
		{"can disable, with other bits", pmuCapDisable | 2, nil, nil, true, nil},
		{"no capability", 0, nil, nil, false, nil},
		{"capability without disable", 2, nil, nil, false, nil},
		{"check fails", 0, failed, nil, false, nil},
		{"enable fails", pmuCapDisable, nil, failed, true, failed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := func(fd uintptr, c kvm.Capability) (uintptr, error) {
				if fd != 3 || c != kvm.CapPMUCapability {
					t.Errorf("asked fd %d for capability %d, want 3 and %d", fd, c, kvm.CapPMUCapability)
				}
				return tt.answer, tt.checkErr
			}
			enabled := false
			enable := func(fd uintptr, a *enableCapArgs) error {
				enabled = true
				if fd != 4 || a.Cap != uint32(kvm.CapPMUCapability) || a.Flags != 0 || a.Args != [4]uint64{pmuCapDisable} {
					t.Errorf("KVM_ENABLE_CAP on fd %d with %+v, want the VM's, 4, with KVM_CAP_PMU_CAPABILITY and KVM_PMU_CAP_DISABLE", fd, *a)
				}
				return tt.enableErr
			}
			fakePMUCalls(t, check, enable)
			err := disablePMU(3, 4)
			if enabled != tt.wantEnable {
				t.Errorf("KVM_ENABLE_CAP made: %v, want %v", enabled, tt.wantEnable)
			}
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// TestTuneCPUIDHidesPMU: every sign of a PMU is taken from the CPUID, on
// Intel and AMD: leaf 0xA, PDCM (leaf 1 ECX bit 15), AMD's counter
// extensions (leaf 0x80000001 ECX bits 23, 24, 28) and PerfMonV2 (leaf
// 0x80000022). Only leaf 0xA was, so an AMD guest read PerfCtrExtCore
// and would fault on counters a VM without a PMU does not have. The other
// bits of those registers stay.
func TestTuneCPUIDHidesPMU(t *testing.T) {
	intel := kvm.CPUIDEntry2{Function: 0, Eax: 0xD, Ebx: 0x756E6547, Edx: 0x49656E69, Ecx: 0x6C65746E}
	amd := kvm.CPUIDEntry2{Function: 0, Eax: 0x10, Ebx: 0x68747541, Edx: 0x69746E65, Ecx: 0x444D4163}
	tests := []struct {
		name string
		in   kvm.CPUIDEntry2
		want kvm.CPUIDEntry2
	}{
		// With the hypervisor bit (31), which tuneCPUID sets anyway.
		{"leaf 1 PDCM", kvm.CPUIDEntry2{Function: 1, Ecx: 1<<31 | 1<<15 | 1<<0 | 1<<9, Ebx: 0x00010800},
			kvm.CPUIDEntry2{Function: 1, Ecx: 1<<31 | 1<<0 | 1<<9, Ebx: 0x00010800}},
		{"leaf 0xA", kvm.CPUIDEntry2{Function: 0xA, Eax: 0x07300403, Ebx: 0x7F, Ecx: 0xF, Edx: 0x603},
			kvm.CPUIDEntry2{Function: 0xA}},
		{"leaf 0x80000001 counter extensions", kvm.CPUIDEntry2{Function: 0x80000001, Ecx: 1<<23 | 1<<24 | 1<<28 | 1<<0 | 1<<6, Edx: 1 << 29},
			kvm.CPUIDEntry2{Function: 0x80000001, Ecx: 1<<0 | 1<<6, Edx: 1 << 29}},
		{"leaf 0x80000022 PerfMonV2", kvm.CPUIDEntry2{Function: 0x80000022, Eax: 1, Ebx: 6},
			kvm.CPUIDEntry2{Function: 0x80000022}},
	}
	for _, vendor := range []struct {
		name string
		leaf kvm.CPUIDEntry2
	}{{"intel", intel}, {"amd", amd}} {
		for _, tt := range tests {
			t.Run(vendor.name+"/"+tt.name, func(t *testing.T) {
				out := tuneCPUID([]kvm.CPUIDEntry2{vendor.leaf, tt.in}, 0)
				got := out[1]
				if tt.in.Function == 1 {
					got.Ebx = tt.want.Ebx // the APIC ID and count are TestTuneCPUID's
				}
				if got != tt.want {
					t.Errorf("leaf %#x = %+v\nwant %+v", tt.in.Function, got, tt.want)
				}
			})
		}
	}
}

// TestVMHasNoPMU: on a KVM that can disable the PMU, a booted machine's
// vCPU has none, as KVM shows it to the host: a PMU event select written
// by the host reads back as 0 (KVM keeps it only for a vCPU with a PMU).
func TestVMHasNoPMU(t *testing.T) {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("KVM unusable here (%v)", err)
	}
	n, err := kvm.CheckExtension(f.Fd(), kvm.CapPMUCapability)
	f.Close()
	if err != nil || n&pmuCapDisable == 0 {
		t.Skipf("this KVM cannot disable a VM's PMU (KVM_CAP_PMU_CAPABILITY %#x, %v)", n, err)
	}
	m, err := New(Config{Kernel: "spin", KernelImage: spinGuest()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// The first event select of each vendor's legacy counters: AMD's
	// (K7) and Intel's (P6). KVM takes a write of either from the host
	// without a PMU, and drops it.
	const eventSelect = 0x76 // an event, not enabled
	sel := uint32(0x186)
	if !isIntel(m.vcpu.cpuid) {
		sel = 0xc0010000
	}
	if err := setMSRs(m.vcpu.fd, []MSR{{Index: sel, Data: eventSelect}}); err != nil {
		t.Fatalf("event select %#x: %v", sel, err)
	}
	if got, ok := getMSR(m.vcpu.fd, sel); !ok || got != 0 {
		t.Errorf("event select %#x reads %#x (readable %v) after the host wrote %#x: the vCPU has a PMU", sel, got, ok, eventSelect)
	}
}

// isIntel reports whether the CPUID entries' leaf 0 says GenuineIntel.
func isIntel(entries []cpuidEntry) bool {
	for _, e := range entries {
		if e.Function == 0 {
			return e.EBX == 0x756E6547 && e.EDX == 0x49656E69 && e.ECX == 0x6C65746E
		}
	}
	return false
}

// TestEnableVMCap: KVM_ENABLE_CAP as enableVMCap encodes it reaches a
// VM's KVM: KVM_CAP_X86_DISABLE_EXITS with nothing to disable is taken
// (a wrong ioctl number or size is ENOTTY), so disablePMU's ioctl is the
// one KVM knows even on a host whose KVM has no PMU to disable.
func TestEnableVMCap(t *testing.T) {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("KVM unusable here (%v)", err)
	}
	defer f.Close()
	const capX86DisableExits = 143 // KVM_CAP_X86_DISABLE_EXITS, Linux 4.16
	if n, err := kvm.CheckExtension(f.Fd(), capX86DisableExits); err != nil || n == 0 {
		t.Skipf("this KVM has no KVM_CAP_X86_DISABLE_EXITS (%d, %v)", n, err)
	}
	vmFD, err := createVM(f.Fd())
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(int(vmFD))
	if err := enableVMCap(vmFD, &enableCapArgs{Cap: capX86DisableExits}); err != nil {
		t.Fatalf("KVM_ENABLE_CAP(KVM_CAP_X86_DISABLE_EXITS, 0): %v", err)
	}
}
