package main

import (
	"fmt"
	"syscall"
	"testing"

	"github.com/smolvmm/smolvmm/vmm"
)

// TestKVMHostAdvice: the library's advice about the host's KVM (its
// Hint) is on the line printed, once: a VM KVM could not create because
// another hypervisor holds VT-x or AMD-V ("smolvmm run: KVM_CREATE_VM:
// device or resource busy" said nothing more), and a KVM too old for
// this VMM.
func TestKVMHostAdvice(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"virtualization held", &vmm.Error{Op: "KVM_CREATE_VM", Err: fmt.Errorf("%w: %w", vmm.ErrVirtualizationInUse, syscall.EBUSY),
			Hint: "stop the other hypervisor using this CPU, such as VirtualBox or VMware, then try again"},
			"smolvmm run: KVM_CREATE_VM: " + vmm.ErrVirtualizationInUse.Error() + ": device or resource busy (stop the other hypervisor using this CPU, such as VirtualBox or VMware, then try again)"},
		{"KVM too old", &vmm.Error{Op: "KVM_CHECK_EXTENSION(KVM_CAP_IMMEDIATE_EXIT)", Err: fmt.Errorf("/dev/kvm has no KVM_CAP_IMMEDIATE_EXIT, which KVM has had since Linux 4.11: %w", vmm.ErrKVMTooOld),
			Hint: "use Linux 4.11 or newer"},
			"smolvmm run: KVM_CHECK_EXTENSION(KVM_CAP_IMMEDIATE_EXIT): /dev/kvm has no KVM_CAP_IMMEDIATE_EXIT, which KVM has had since Linux 4.11: " + vmm.ErrKVMTooOld.Error() + " (use Linux 4.11 or newer)"},
		{"out of memory has no advice of this kind", &vmm.Error{Op: "KVM_CREATE_VM", Err: syscall.ENOMEM},
			"smolvmm run: KVM_CREATE_VM: cannot allocate memory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := errorLine("run", advise(tc.err)); got != tc.want {
				t.Errorf("\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}
