package vmm

import (
	"fmt"
	"net"

	"github.com/smolvmm/smolvmm/bootplan"
	"github.com/smolvmm/smolvmm/virtio"
)

// maxIOMSRs is how many MSRs KVM_SET_MSRS takes at once (the kernel's
// MAX_IO_MSRS); it refuses more.
const maxIOMSRs = 256

// checkState refuses a decoded state that no machine of ours could have
// written: a memory size New refuses, KVM structures of the wrong size or count, interrupt
// controllers out of order, interrupt controller and PIT state no guest
// could reach (KVM takes it), a boot protocol none boots by, and UART or
// RTC state no guest could reach.
// It needs neither KVM nor the machine, so a restore calls it before it
// applies anything of st (never half-restored), and before the VM's own
// errors. The PCI functions and virtio devices are checked by their
// Restore, against the machine's devices, each before it applies any of
// its state.
func checkState(st *machineState) error {
	// New's range (checkMemoryMiB): more would put RAM, in one slot from
	// address 0, across the 32-bit PCI/APIC hole; less holds no kernel.
	// The header's size is no check: it may be anything up to 1 TiB.
	if st.MemoryMiB < MinMemoryMiB || st.MemoryMiB > MaxMemoryMiB {
		return fmt.Errorf("MemoryMiB %d: a machine has %d to %d MiB", st.MemoryMiB, MinMemoryMiB, MaxMemoryMiB)
	}
	c := &st.VCPU
	for _, b := range []struct {
		name string
		buf  []byte
		size int
		opt  bool
	}{
		{"regs", c.Regs, sizeRegs, false}, {"sregs", c.Sregs, sizeSregs, false},
		{"lapic", c.LAPIC, sizeLAPIC, false}, {"vcpu events", c.Events, sizeEvents, false},
		{"mp state", c.MPState, sizeMPState, false}, {"debug registers", c.Debug, sizeDebug, false},
		{"xcrs", c.XCRs, sizeXCRs, true}, {"fpu", c.FPU, sizeFPU, true},
		{"pit2", st.PIT2, sizePIT2, false}, {"clock", st.Clock, sizeClock, false},
	} {
		if b.opt && b.buf == nil {
			continue
		}
		if len(b.buf) != b.size {
			return fmt.Errorf("%s: %d bytes, want %d", b.name, len(b.buf), b.size)
		}
	}
	// Its size is the KVM's that took it (KVM_CAP_XSAVE2's), which the
	// restore's must move (setXSave).
	if c.XSave != nil && (len(c.XSave) < sizeXSave || len(c.XSave) > maxXSave) {
		return fmt.Errorf("xsave: %d bytes, want %d to %d", len(c.XSave), sizeXSave, maxXSave)
	}
	if c.XSave == nil && c.FPU == nil {
		return fmt.Errorf("vCPU: neither XSAVE nor FPU state")
	}
	if len(c.CPUID) == 0 || len(c.CPUID) > maxCPUIDEntries+1 {
		return fmt.Errorf("CPUID: %d entries, want 1 to %d", len(c.CPUID), maxCPUIDEntries+1)
	}
	if len(c.KVMCPUID) > len(featureRegs) {
		return fmt.Errorf("KVM's CPUID: %d entries, a record has at most %d", len(c.KVMCPUID), len(featureRegs))
	}
	if len(c.MSRs) >= maxIOMSRs {
		return fmt.Errorf("MSRs: %d, KVM sets fewer than %d", len(c.MSRs), maxIOMSRs)
	}
	if len(st.IRQChips) != irqchipCount {
		return fmt.Errorf("%d interrupt controllers, want %d", len(st.IRQChips), irqchipCount)
	}
	for chip, buf := range st.IRQChips {
		if len(buf) != sizeIRQChip {
			return fmt.Errorf("interrupt controller %d: %d bytes, want %d", chip, len(buf), sizeIRQChip)
		}
		if int(buf[0]) != chip {
			return fmt.Errorf("interrupt controller %d: chip %d in its place", chip, buf[0])
		}
		if err := checkIRQChip(chip, buf); err != nil {
			return err
		}
	}
	if err := checkPIT(st.PIT2); err != nil {
		return err
	}
	// Every machine boots by one of these (loadKernel resolves Auto),
	// and Plan reports it after a restore.
	if st.Protocol != bootplan.Multiboot && st.Protocol != bootplan.NetBSD {
		return fmt.Errorf("boot protocol %d: a machine boots by multiboot (%d) or the NetBSD native handoff (%d)", int(st.Protocol), int(bootplan.Multiboot), int(bootplan.NetBSD))
	}
	if err := st.UART.Check(); err != nil {
		return err
	}
	if err := st.RTC.Check(); err != nil {
		return err
	}
	if len(st.MACs) != 0 && len(st.MACs) != len(st.Virtio) {
		return fmt.Errorf("%d network addresses for %d virtio devices", len(st.MACs), len(st.Virtio))
	}
	for i, s := range st.MACs {
		if s == "" {
			continue
		}
		if st.Virtio[i].Type != virtio.TypeNet {
			return fmt.Errorf("virtio device %d: a network address %q for a device of type %d", i, s, st.Virtio[i].Type)
		}
		if _, err := net.ParseMAC(s); err != nil {
			return fmt.Errorf("virtio device %d: network address %q: %w", i, s, err)
		}
	}
	return nil
}
