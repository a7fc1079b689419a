package vmm

import (
	"encoding/binary"
	"os"
	"testing"
)

// The VMX capability MSRs, IA32_VMX_BASIC to IA32_VMX_PROCBASED_CTLS3:
// KVM_GET_MSR_INDEX_LIST names them on an Intel host whose KVM runs
// nested guests (nested=1), whatever a vCPU's CPUID.
const firstVMXMSR, lastVMXMSR = 0x480, 0x492

// TestSnapshotSavesNoVMXMSRs: a vCPU is given no VMX, and a snapshot
// saves none of the VMX capability MSRs KVM lists (KVM reads them only
// for a vCPU with VMX): they describe the host's nested capabilities,
// which KVM_SET_MSRS refuses to change to another host's, and a snapshot
// keeps no nested state anyway. It skips where KVM lists none of them
// (no nested VMX), as there is nothing to leave out.
func TestSnapshotSavesNoVMXMSRs(t *testing.T) {
	if _, err := os.Stat("/dev/kvm"); err != nil {
		t.Skipf("KVM unusable here (%v)", err)
	}
	m, err := New(Config{Kernel: "spin", KernelImage: spinGuest()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	buf := make([]byte, 4+4*1024)
	binary.LittleEndian.PutUint32(buf, 1024)
	if _, err := ioctlBuf(int(m.kvm.Fd()), kvmGetMSRIndexList, buf); err != nil {
		t.Fatalf("KVM_GET_MSR_INDEX_LIST: %v", err)
	}
	listed := 0
	for i := range min(int(binary.LittleEndian.Uint32(buf)), 1024) {
		if idx := binary.LittleEndian.Uint32(buf[4+4*i:]); idx >= firstVMXMSR && idx <= lastVMXMSR {
			listed++
		}
	}
	if e := findCPUID(m.vcpu.cpuid, 1, -1); e == nil || e.ECX&(1<<5) != 0 {
		t.Errorf("the vCPU's leaf 1 is %+v: want it, without VMX (ECX bit 5)", e)
	}
	if listed == 0 {
		t.Skip("this host's KVM lists no VMX capability MSR (no nested VMX)")
	}
	saved, err := msrIndexList(int(m.kvm.Fd()), m.vcpu.fd, m.vcpu.cpuid)
	if err != nil {
		t.Fatal(err)
	}
	for _, idx := range saved {
		if idx >= firstVMXMSR && idx <= lastVMXMSR {
			t.Errorf("MSR %#x saved: KVM lists %d VMX capability MSRs, a vCPU without VMX must have none saved", idx, listed)
		}
	}
}
