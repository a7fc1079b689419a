package vmm

import (
	"unsafe"

	"github.com/bobuhiro11/gokvm/kvm"
)

// RunIoctls are the ioctl requests a Machine makes once its guest runs,
// KVM_RUN first: an allow-list such as sandbox.Filter's needs no others
// (KVM_IRQ_LINE_STATUS drives the devices' interrupt lines, KVM_IOEVENTFD
// follows a guest that moves a virtio BAR, KVM_GET_REGS and KVM_GET_SREGS
// describe a crash), and the reads of KVM state a snapshot makes.
// Everything else, /dev/kvm and the VM's setup included, happens in New.
func RunIoctls() []uint64 {
	return append([]uint64{
		uint64(kvmRunIoctl),
		uint64(kvm.IIOWR(0x67, 8)),                             // KVM_IRQ_LINE_STATUS, struct kvm_irq_level
		uint64(kvm.IIOW(0x79, unsafe.Sizeof(ioeventfdArgs{}))), // KVM_IOEVENTFD
		uint64(kvm.IIOR(0x81, unsafe.Sizeof(kvm.Regs{}))),      // KVM_GET_REGS
		uint64(kvm.IIOR(0x83, unsafe.Sizeof(kvm.Sregs{}))),     // KVM_GET_SREGS
	}, snapshotIoctls()...) // Machine.Snapshot reads the vCPU, VM and clocks
}

// OpBeforeRun is the Op of the Error that wraps Config.BeforeRun's.
const OpBeforeRun = "before run"

// beforeRun calls Config.BeforeRun.
func (m *Machine) beforeRun() error {
	if m.cfg.BeforeRun == nil {
		return nil
	}
	if err := m.cfg.BeforeRun(); err != nil {
		return &Error{Op: OpBeforeRun, Err: err}
	}
	return nil
}
