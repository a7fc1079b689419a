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
