package vmm

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unsafe"

	"github.com/bobuhiro11/gokvm/kvm"
	"golang.org/x/sys/unix"
)

// What a snapshot records of the vCPU's identity besides its registers:
// the CPUID it was given and its TSC frequency. A restore sets both as
// they were, so that the guest, which read them once at boot (NetBSD
// selects code by CPUID and calibrates its clock against the TSC), finds
// the same CPU after it: a restore on another CPU model or TSC rate either
// keeps them or is refused.

// ErrCPUID is wrapped by a restore refused because the snapshot's vCPU had
// CPU features this host's KVM does not offer.
var ErrCPUID = errors.New("the snapshot's CPU features are not all supported by this host")

// ErrTSCFrequency is wrapped by a restore refused because this host's
// vCPU runs its TSC at another rate than the snapshot's did and KVM cannot
// scale it.
var ErrTSCFrequency = errors.New("the snapshot's TSC frequency cannot be set on this host")

// cpuidEntry is one struct kvm_cpuid_entry2, as a snapshot holds it.
type cpuidEntry struct {
	Function, Index, Flags uint32
	EAX, EBX, ECX, EDX     uint32
}

// cpuidFlagIndexed is KVM_CPUID_FLAG_SIGNIFCANT_INDEX: the entry answers
// for its Index (subleaf) alone.
const cpuidFlagIndexed = 1

func cpuidEntries(es []kvm.CPUIDEntry2) []cpuidEntry {
	out := make([]cpuidEntry, len(es))
	for i, e := range es {
		out[i] = cpuidEntry{e.Function, e.Index, e.Flags, e.Eax, e.Ebx, e.Ecx, e.Edx}
	}
	return out
}

// reg returns the register r ("EAX".."EDX") of e.
func (e *cpuidEntry) reg(r string) uint32 {
	switch r {
	case "EAX":
		return e.EAX
	case "EBX":
		return e.EBX
	case "ECX":
		return e.ECX
	}
	return e.EDX
}

// featureRegs are the CPUID registers that are sets of feature bits (and
// of XSAVE components), which a restore checks against what the host's
// KVM supports: a guest that saw a bit at boot may use the feature at any
// time. sub is the subleaf, or -1 for a leaf without. Other registers
// (vendor, family, topology, cache, sizes) describe rather than enable.
var featureRegs = []struct {
	leaf uint32
	sub  int
	regs []string
}{
	{0x1, -1, []string{"ECX", "EDX"}},
	{0x6, -1, []string{"EAX"}},
	{0x7, 0, []string{"EBX", "ECX", "EDX"}},
	{0x7, 1, []string{"EAX", "EDX"}},
	{0xD, 0, []string{"EAX", "EDX"}}, // XCR0 components
	{0xD, 1, []string{"EAX"}},
	// KVM's paravirtual features: tuneCPUID gives none, but a
	// snapshot by an earlier smolvmm has them.
	{0x40000001, -1, []string{"EAX"}},
	{0x80000001, -1, []string{"ECX", "EDX"}},
	{0x80000007, -1, []string{"EDX"}},
	{0x80000008, -1, []string{"EBX"}},
}

// findCPUID returns the entry of es that answers leaf and subleaf sub
// (-1: none), or nil.
func findCPUID(es []cpuidEntry, leaf uint32, sub int) *cpuidEntry {
	for i := range es {
		e := &es[i]
		if e.Function == leaf && (sub < 0 || e.Flags&cpuidFlagIndexed == 0 || e.Index == uint32(sub)) {
			return e
		}
	}
	return nil
}

// kvmRecord returns the entries of supported (KVM_GET_SUPPORTED_CPUID's
// answer) that checkCPUID reads, in supported's order: the snapshot's
// record of it (nil for nil). checkCPUID finds the same entry in either.
func kvmRecord(supported []cpuidEntry) []cpuidEntry {
	var out []cpuidEntry
	for i := range supported {
		e := &supported[i]
		for _, f := range featureRegs {
			if e == findCPUID(supported, f.leaf, f.sub) {
				out = append(out, *e)
				break
			}
		}
	}
	return out
}

// checkCPUID refuses recorded entries with feature bits that supported
// (KVM_GET_SUPPORTED_CPUID) lacks, naming each leaf, register and bit,
// but for those KVM gives a vCPU without listing them (kvmEmulatedLeaf1ECX;
// tscDeadline: the host's KVM has KVM_CAP_TSC_DEADLINE_TIMER).
func checkCPUID(recorded, supported []cpuidEntry, tscDeadline bool) error {
	var missing []string
	for _, f := range featureRegs {
		rec := findCPUID(recorded, f.leaf, f.sub)
		if rec == nil {
			continue
		}
		sup := findCPUID(supported, f.leaf, f.sub)
		for _, r := range f.regs {
			extra := rec.reg(r)
			if sup != nil {
				extra &^= sup.reg(r)
			}
			if f.leaf == 1 && r == "ECX" {
				extra &^= kvmEmulatedLeaf1ECX(tscDeadline)
			}
			if extra == 0 {
				continue
			}
			var bits []string
			for b := range 32 {
				if extra&(1<<b) != 0 {
					bits = append(bits, fmt.Sprint(b))
				}
			}
			where := fmt.Sprintf("leaf %#x", f.leaf)
			if f.sub >= 0 {
				where += fmt.Sprintf(" subleaf %d", f.sub)
			}
			s := "bit"
			if len(bits) > 1 {
				s = "bits"
			}
			missing = append(missing, fmt.Sprintf("%s %s %s %s", where, r, s, strings.Join(bits, ", ")))
		}
	}
	if missing != nil {
		return fmt.Errorf("%w: the snapshot's vCPU had CPUID %s, which this host's KVM does not support", ErrCPUID, strings.Join(missing, "; "))
	}
	return nil
}

// cpuid1ECXTSCDeadline is CPUID.1:ECX bit 24, the local APIC timer's
// TSC deadline mode.
const cpuid1ECXTSCDeadline = 1 << 24

// kvmEmulatedLeaf1ECX returns the leaf 1 ECX bits KVM gives a vCPU with an
// in-kernel local APIC (every machine's) whose CPUID has them, though KVM
// lists them in KVM_GET_SUPPORTED_CPUID only since Linux 6.14: the
// hypervisor bit, which tuneCPUID sets anyway, and the TSC deadline timer,
// which older KVMs tell of by KVM_CAP_TSC_DEADLINE_TIMER instead
// (tscDeadline). A snapshot taken on a newer kernel records both, and
// restores on the same CPU under an older one.
func kvmEmulatedLeaf1ECX(tscDeadline bool) uint32 {
	bits := uint32(cpuid1ECXHypervisor)
	if tscDeadline {
		bits |= cpuid1ECXTSCDeadline
	}
	return bits
}

// restoreCPUID gives the vCPU the snapshot's CPUID entries, once checked
// against the host's KVM. When the restore asked KVM, the vCPU was made
// with this host's, as a boot would give them (newVCPU, while the state
// was read): a snapshot taken on a host of the same CPU and TSC rate
// recorded exactly those, which are then set already, and supported by
// construction. Other entries are checked against KVM's answer as the
// vCPU's fetch kept it, untouched, not asked again. When it did not ask,
// this KVM being the one the snapshot's record (kvmRecord) came from
// (kvmid.go), the vCPU has no CPUID yet and the entries are checked
// against that record, as they would be against KVM's answer.
func (m *Machine) restoreCPUID(recorded, kvmRecord []cpuidEntry) error {
	if len(recorded) == 0 || len(recorded) > maxCPUIDEntries+1 {
		return fmt.Errorf("CPUID: %d entries in the snapshot, want 1 to %d", len(recorded), maxCPUIDEntries+1)
	}
	if m.cpuid.notAsked() {
		if len(kvmRecord) == 0 {
			// The header named this KVM, the state has no record of
			// its answer: ask after all.
			if err := m.cpuid.askNow(m.kvm.Fd()); err != nil {
				return err
			}
		} else {
			m.cpuid.supported = kvmRecord // for this machine's snapshots
		}
	} else if slices.Equal(recorded, m.vcpu.cpuid) {
		return nil
	}
	// The answer newVCPU had, untouched: it tuned its own copy in place.
	if _, err := m.cpuid.wait(); err != nil {
		return err
	}
	sup := m.cpuid.supported
	// Asked even of the KVM the record came from: a record holds
	// KVM_GET_SUPPORTED_CPUID's answer alone. An error tells nothing:
	// the capability is taken as absent.
	n, capErr := kvm.CheckExtension(m.kvm.Fd(), kvm.CapTSCDeadlineTimer)
	if err := checkCPUID(recorded, sup, capErr == nil && n > 0); err != nil {
		return err
	}
	c := new(cpuid2)
	c.nent = uint32(len(recorded))
	for i, e := range recorded {
		c.entries[i] = kvm.CPUIDEntry2{Function: e.Function, Index: e.Index, Flags: e.Flags, Eax: e.EAX, Ebx: e.EBX, Ecx: e.ECX, Edx: e.EDX}
	}
	return m.vcpu.setCPUIDEntries(c)
}

// setCPUIDEntries gives the vCPU c's entries and keeps them for a
// snapshot.
func (v *vcpu) setCPUIDEntries(c *cpuid2) error {
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(v.fd), kvm.IIOW(kvmSetCPUID2, cpuid2HeaderSize), uintptr(unsafe.Pointer(c))); errno != 0 {
		return &Error{Op: "KVM_SET_CPUID2", Err: errno}
	}
	v.cpuid = cpuidEntries(c.entries[:c.nent])
	return nil
}

// getCPUID2 reads the vCPU's CPUID back (KVM_GET_CPUID2), as KVM holds
// it: the entries set, with the bits KVM keeps up to date at run time
// (OSXSAVE, the APIC's enable, XSAVE sizes) as the vCPU's state has them.
func (v *vcpu) getCPUID2() ([]cpuidEntry, error) {
	c := new(cpuid2)
	c.nent = uint32(len(c.entries))
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(v.fd), kvm.IIOWR(kvmGetCPUID2, cpuid2HeaderSize), uintptr(unsafe.Pointer(c))); errno != 0 {
		return nil, &Error{Op: "KVM_GET_CPUID2", Err: errno}
	}
	return cpuidEntries(c.entries[:c.nent]), nil
}

// KVM_GET_CPUID2 is _IOWR(KVMIO, 0x91, struct kvm_cpuid2); KVM_GET_TSC_KHZ
// and KVM_SET_TSC_KHZ are _IO(KVMIO, 0xa3) and _IO(KVMIO, 0xa2), the
// frequency passed as the argument.
const (
	kvmGetCPUID2 = 0x91
	kvmGetTSCKHz = 0xa3
)

// tscToleranceKHz is how far from khz, the host's rate, KVM takes a
// requested TSC rate for the host's own: 250 ppm, its tsc_tolerance_ppm
// default (NTP corrects that much). Within it KVM sets the rate without
// scaling.
func tscToleranceKHz(khz uint64) uint64 { return khz * 250 / 1000000 }

// canScaleTSC reports whether the KVM of kvmFD (/dev/kvm) scales a vCPU's
// TSC to another rate than the host's.
func canScaleTSC(kvmFD uintptr) bool {
	n, err := kvm.CheckExtension(kvmFD, kvm.CapTSCControl)
	return err == nil && n > 0
}

// getTSCKHz asks KVM for the vCPU's TSC frequency.
func getTSCKHz(vcpuFD int) (uint64, error) { return kvm.GetTSCKHz(uintptr(vcpuFD)) }

// restoreTSCKHz sets the vCPU's TSC frequency to the snapshot's (want,
// kHz; 0 when the snapshot's KVM could not tell, and nothing is checked)
// if this vCPU's differs, with KVM's TSC scaling. It refuses, naming both
// frequencies, when KVM cannot scale: KVM_SET_TSC_KHZ would then fail for
// a lower rate and, for a higher one, only emulate it by catching the TSC
// up at each entry.
func (m *Machine) restoreTSCKHz(want uint32) error {
	if want == 0 {
		return nil
	}
	fd := uintptr(m.vcpu.fd)
	have, err := kvm.GetTSCKHz(fd)
	if err != nil {
		return &Error{Op: "KVM_GET_TSC_KHZ", Err: err}
	}
	if uint64(want) == have {
		return nil
	}
	diff := max(uint64(want), have) - min(uint64(want), have)
	if diff > tscToleranceKHz(have) && !canScaleTSC(m.kvm.Fd()) {
		return tscRefusal(want, have, "this host's KVM cannot scale the TSC (no KVM_CAP_TSC_CONTROL)", nil)
	}
	if err := kvm.SetTSCKHz(fd, uint64(want)); err != nil {
		return tscRefusal(want, have, "KVM refused the snapshot's", err)
	}
	got, err := kvm.GetTSCKHz(fd)
	return tscReadBack(want, have, got, err)
}

// tscReadBack checks what KVM_GET_TSC_KHZ read (got, err) after
// KVM_SET_TSC_KHZ set want kHz on a host running have: a failed read and
// another rate are told apart, as neither says anything of the other.
func tscReadBack(want uint32, have, got uint64, err error) error {
	if err != nil {
		return tscRefusal(want, have, "KVM_GET_TSC_KHZ could not read back the rate set", err)
	}
	if got != uint64(want) {
		return tscRefusal(want, have, fmt.Sprintf("KVM set %d kHz instead", got), nil)
	}
	return nil
}

// tscRefusal is restoreTSCKHz's refusal of a snapshot whose vCPU ran its
// TSC at want kHz on a host running have, for why (and err, if any).
func tscRefusal(want uint32, have uint64, why string, err error) error {
	e := fmt.Errorf("%w: the snapshot's vCPU ran its TSC at %d kHz, this host's runs at %d kHz, and %s", ErrTSCFrequency, want, have, why)
	if err != nil {
		e = fmt.Errorf("%w: %w", e, err)
	}
	return &Error{Op: "KVM_SET_TSC_KHZ", Err: e,
		Hint: "restore on a host whose TSC runs at the snapshot's rate, or whose KVM scales the TSC, or boot afresh"}
}
