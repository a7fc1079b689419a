package vmm

import "testing"

// TestRunIoctls: the requests are those of <linux/kvm.h> on x86-64.
func TestRunIoctls(t *testing.T) {
	want := []uint64{
		0xAE80,     // KVM_RUN
		0xC008AE67, // KVM_IRQ_LINE_STATUS
		0x4040AE79, // KVM_IOEVENTFD
		0x8090AE81, // KVM_GET_REGS
		0x8138AE83, // KVM_GET_SREGS
		// A snapshot's reads.
		0x81A0AE8C, // KVM_GET_FPU
		0x9000AEA4, // KVM_GET_XSAVE
		0x8188AEA6, // KVM_GET_XCRS
		0x8400AE8E, // KVM_GET_LAPIC
		0x8040AE9F, // KVM_GET_VCPU_EVENTS
		0x8004AE98, // KVM_GET_MP_STATE
		0x8080AEA1, // KVM_GET_DEBUGREGS
		0xC208AE62, // KVM_GET_IRQCHIP
		0x8070AE9F, // KVM_GET_PIT2
		0x8030AE7C, // KVM_GET_CLOCK
		0x9000AECF, // KVM_GET_XSAVE2, numbered with struct kvm_xsave's size
		0xC008AE88, // KVM_GET_MSRS
		0xC004AE02, // KVM_GET_MSR_INDEX_LIST
		0xAEA3,     // KVM_GET_TSC_KHZ
	}
	got := RunIoctls()
	if len(got) != len(want) {
		t.Fatalf("RunIoctls() = %#x, want %#x", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("RunIoctls()[%d] = %#x, want %#x", i, got[i], want[i])
		}
	}
}
