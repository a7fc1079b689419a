package vmm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"github.com/bobuhiro11/gokvm/kvm"
	"golang.org/x/sys/unix"
)

// The KVM state a snapshot holds is kept as the kernel's own structures,
// byte for byte (x86-64 layouts from include/uapi/linux/kvm.h and
// arch/x86/include/uapi/asm/kvm.h); this file names them and moves them.

// kvmBlob is one structure KVM gets and sets with a pair of ioctls.
type kvmBlob struct {
	name     string
	get, set uintptr
	size     int
}

func ior(nr uintptr, size int) uintptr  { return kvm.IIOR(nr, uintptr(size)) }
func iow(nr uintptr, size int) uintptr  { return kvm.IIOW(nr, uintptr(size)) }
func iowr(nr uintptr, size int) uintptr { return kvm.IIOWR(nr, uintptr(size)) }

// Sizes of the structures.
const (
	sizeRegs     = 144
	sizeSregs    = 312
	sizeFPU      = 416
	sizeXSave    = 4096
	sizeXCRs     = 392
	sizeLAPIC    = 1024
	sizeEvents   = 64
	sizeMPState  = 4
	sizeDebug    = 128
	sizeIRQChip  = 520
	sizePIT2     = 112
	sizeClock    = 48
	sizeMSREntry = 16
)

// vCPU structures.
var (
	blobRegs    = kvmBlob{"regs", ior(0x81, sizeRegs), iow(0x82, sizeRegs), sizeRegs}
	blobSregs   = kvmBlob{"sregs", ior(0x83, sizeSregs), iow(0x84, sizeSregs), sizeSregs}
	blobFPU     = kvmBlob{"fpu", ior(0x8c, sizeFPU), iow(0x8d, sizeFPU), sizeFPU}
	blobXSave   = kvmBlob{"xsave", ior(0xa4, sizeXSave), iow(0xa5, sizeXSave), sizeXSave}
	blobXCRs    = kvmBlob{"xcrs", ior(0xa6, sizeXCRs), iow(0xa7, sizeXCRs), sizeXCRs}
	blobLAPIC   = kvmBlob{"lapic", ior(0x8e, sizeLAPIC), iow(0x8f, sizeLAPIC), sizeLAPIC}
	blobEvents  = kvmBlob{"vcpu events", ior(0x9f, sizeEvents), iow(0xa0, sizeEvents), sizeEvents}
	blobMPState = kvmBlob{"mp state", ior(0x98, sizeMPState), iow(0x99, sizeMPState), sizeMPState}
	blobDebug   = kvmBlob{"debug registers", ior(0xa1, sizeDebug), iow(0xa2, sizeDebug), sizeDebug}
)

// XSAVE state larger than struct kvm_xsave (AMX's tiles, once the process
// has guest permission for them): KVM_GET_XSAVE refuses it (EINVAL) and
// KVM_SET_XSAVE reads all of it, so both move a buffer of the size
// KVM_CAP_XSAVE2 answers, KVM_GET_XSAVE2 getting it.
const (
	capXSave  = 55  // KVM_CAP_XSAVE
	capXSave2 = 208 // KVM_CAP_XSAVE2: the size of the XSAVE state
	// maxXSave bounds a snapshot's XSAVE state: all of today's
	// components, AMX's 8 KiB of tiles included, take under 12 KiB.
	maxXSave = 64 << 10
)

// kvmGetXSave2 is KVM_GET_XSAVE2, numbered with struct kvm_xsave's size
// but writing as many bytes as KVM_CAP_XSAVE2 says.
var kvmGetXSave2 = ior(0xcf, sizeXSave)

// xsaveSize returns how many bytes of XSAVE state this host's KVM moves
// for a vCPU of the VM vmFD: 0 when it has no KVM_CAP_XSAVE (the FPU
// state alone is then saved), struct kvm_xsave's size, or KVM_CAP_XSAVE2's
// larger answer (asked of the VM, as KVM's documentation says). A size
// beyond what a snapshot holds is returned too: only a snapshot or a
// restore refuses it (checkXSaveSize), not a machine that runs.
func xsaveSize(kvmFD, vmFD uintptr) (int, error) {
	return xsaveSizeBy(kvm.CheckExtension, kvmFD, vmFD)
}

// xsaveSizeBy is xsaveSize asking check (KVM_CHECK_EXTENSION).
func xsaveSizeBy(check func(fd uintptr, c kvm.Capability) (uintptr, error), kvmFD, vmFD uintptr) (int, error) {
	n, err := check(kvmFD, capXSave)
	if err != nil {
		return 0, fmt.Errorf("KVM_CHECK_EXTENSION(KVM_CAP_XSAVE): %w", err)
	}
	if n == 0 {
		return 0, nil
	}
	// An error: a KVM without KVM_CHECK_EXTENSION on a VM, older than
	// KVM_CAP_XSAVE2 itself.
	n2, err := check(vmFD, capXSave2)
	if err != nil || n2 <= sizeXSave {
		return sizeXSave, nil
	}
	// Bounded only so that the int holds it: checkXSaveSize refuses
	// anything near.
	return int(min(n2, 1<<30)), nil
}

// ErrXSaveTooLarge is wrapped by a snapshot or a restore on a host whose
// KVM moves more XSAVE state per vCPU (KVM_CAP_XSAVE2) than a snapshot
// holds, 64 KiB; machines booted there run, but are not snapshotted.
var ErrXSaveTooLarge = errors.New("this host's KVM moves more XSAVE state than a snapshot holds")

// checkXSaveSize refuses (ErrXSaveTooLarge) size bytes of XSAVE state,
// xsaveSize's, when a snapshot cannot hold them.
func checkXSaveSize(size int) error {
	if size > maxXSave {
		return fmt.Errorf("%w: %d bytes (KVM_CAP_XSAVE2), at most %d", ErrXSaveTooLarge, size, maxXSave)
	}
	return nil
}

// getXSave returns the vCPU's XSAVE state, size bytes (xsaveSize's).
func getXSave(fd, size int) ([]byte, error) {
	if size == sizeXSave {
		return blobXSave.getFrom(fd)
	}
	buf := make([]byte, size)
	if _, err := ioctlBuf(fd, kvmGetXSave2, buf); err != nil {
		return nil, fmt.Errorf("get xsave (KVM_GET_XSAVE2, %d bytes): %w", size, err)
	}
	return buf, nil
}

// setXSave sets the vCPU's XSAVE state from buf, which must be size bytes
// (xsaveSize's): KVM reads as many as its vCPU's state takes, up to size.
func setXSave(fd, size int, buf []byte) error {
	if len(buf) != size {
		if size == 0 {
			return fmt.Errorf("set xsave: %d bytes in the snapshot, and this host's KVM has no KVM_CAP_XSAVE", len(buf))
		}
		return fmt.Errorf("set xsave: %d bytes in the snapshot, this host's KVM moves %d (KVM_CAP_XSAVE2; it depends on the CPU and the process's guest XSAVE permission)", len(buf), size)
	}
	if _, err := ioctlBuf(fd, blobXSave.set, buf); err != nil {
		return fmt.Errorf("set xsave: %w", err)
	}
	return nil
}

// VM structures. KVM_GET_IRQCHIP is _IOWR: the chip id goes in.
var (
	blobIRQChip = kvmBlob{"irqchip", iowr(0x62, sizeIRQChip), ior(0x63, sizeIRQChip), sizeIRQChip}
	blobPIT2    = kvmBlob{"pit2", ior(0x9f, sizePIT2), iow(0xa0, sizePIT2), sizePIT2}
	blobClock   = kvmBlob{"clock", ior(0x7c, sizeClock), iow(0x7b, sizeClock), sizeClock}
)

// MSR ioctls: struct kvm_msrs is an 8-byte header then the entries.
var (
	kvmGetMSRs         = iowr(0x88, 8)
	kvmSetMSRs         = iow(0x89, 8)
	kvmGetMSRIndexList = iowr(0x02, 4)
)

// Irqchip ids: the two 8259s and the I/O APIC.
const irqchipCount = 3

func ioctlBuf(fd int, req uintptr, buf []byte) (int, error) {
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(unsafe.Pointer(&buf[0])))
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

func (b kvmBlob) getFrom(fd int) ([]byte, error) {
	buf := make([]byte, b.size)
	if _, err := ioctlBuf(fd, b.get, buf); err != nil {
		return nil, fmt.Errorf("get %s: %w", b.name, err)
	}
	return buf, nil
}

func (b kvmBlob) setTo(fd int, buf []byte) error {
	if len(buf) != b.size {
		return fmt.Errorf("set %s: %d bytes in the snapshot, KVM's structure is %d", b.name, len(buf), b.size)
	}
	if _, err := ioctlBuf(fd, b.set, buf); err != nil {
		return fmt.Errorf("set %s: %w", b.name, err)
	}
	return nil
}

// MSR is one model-specific register's index and value.
type MSR struct {
	Index uint32 // the MSR's number (ECX of RDMSR)
	Data  uint64 // its value
}

// msrIndexList returns the MSRs a snapshot saves for a vCPU whose CPUID
// entries are cpuid: those KVM saves and restores
// (KVM_GET_MSR_INDEX_LIST) and the MTRRs (mtrrMSRs), without those this
// vCPU refuses to read: the list names every MSR the host's KVM knows,
// some of which the vCPU's CPUID does not enable.
func msrIndexList(kvmFD, vcpuFD int, cpuid []cpuidEntry) ([]uint32, error) {
	buf := make([]byte, 4+4*1024)
	binary.LittleEndian.PutUint32(buf, 1024)
	if _, err := ioctlBuf(kvmFD, kvmGetMSRIndexList, buf); err != nil {
		return nil, fmt.Errorf("KVM_GET_MSR_INDEX_LIST: %w", err)
	}
	n := min(int(binary.LittleEndian.Uint32(buf)), 1024)
	var all []uint32
	listed := map[uint32]bool{}
	for i := range n {
		idx := binary.LittleEndian.Uint32(buf[4+4*i:])
		all = append(all, idx)
		listed[idx] = true
	}
	mtrrCap, capOK := getMSR(vcpuFD, msrMTRRCap)
	for _, idx := range mtrrMSRs(cpuidHasMTRR(cpuid), mtrrCap, capOK) {
		if !listed[idx] {
			all = append(all, idx)
		}
	}
	var ok []uint32
	for _, idx := range all {
		if _, readable := getMSR(vcpuFD, idx); readable {
			ok = append(ok, idx)
		}
	}
	return ok, nil
}

// getMSR reads one MSR of the vCPU fd; false when KVM refuses it.
func getMSR(fd int, idx uint32) (uint64, bool) {
	one := make([]byte, 8+sizeMSREntry)
	binary.LittleEndian.PutUint32(one, 1)
	binary.LittleEndian.PutUint32(one[8:], idx)
	if got, err := ioctlBuf(fd, kvmGetMSRs, one); err != nil || got != 1 {
		return 0, false
	}
	return binary.LittleEndian.Uint64(one[8+8:]), true
}

// MTRR MSRs and CPUID bits. KVM_GET_MSR_INDEX_LIST names none of the
// MTRRs, yet a guest sets them (NetBSD's MTRR code writes MTRRdefType
// at every boot) and KVM keeps them per vCPU: a restore left them 0.
const (
	msrMTRRCap       = 0xfe  // IA32_MTRRCAP: VCNT in bits 7:0, FIX bit 8
	msrMTRRPhysBase0 = 0x200 // variable ranges: base, mask pairs
	msrMTRRDefType   = 0x2ff
	cpuid1EDXMTRR    = 1 << 12 // CPUID.1:EDX.MTRR
	mtrrCapFixed     = 1 << 8
	// maxVarMTRRs bounds the variable pairs saved: KVM has 8, and
	// MTRRcap's 8-bit count could otherwise take more MSRs than
	// KVM_SET_MSRS sets at once.
	maxVarMTRRs = 32
)

// mtrrFixed are the fixed-range MTRRs.
var mtrrFixed = []uint32{0x250, 0x258, 0x259, 0x268, 0x269, 0x26a, 0x26b, 0x26c, 0x26d, 0x26e, 0x26f}

// cpuidHasMTRR reports whether the CPUID entries give the vCPU MTRRs.
func cpuidHasMTRR(cpuid []cpuidEntry) bool {
	e := findCPUID(cpuid, 1, -1)
	return e != nil && e.EDX&cpuid1EDXMTRR != 0
}

// mtrrMSRs returns the MTRRs of a vCPU that has them (CPUID) and whose
// MTRRcap reads mtrrCap (capOK: it could be read): MTRRdefType, the
// fixed ranges when MTRRcap has them, and VCNT variable range pairs.
func mtrrMSRs(has bool, mtrrCap uint64, capOK bool) []uint32 {
	if !has || !capOK {
		return nil
	}
	idx := []uint32{msrMTRRDefType}
	if mtrrCap&mtrrCapFixed != 0 {
		idx = append(idx, mtrrFixed...)
	}
	for i := range min(uint32(mtrrCap&0xff), maxVarMTRRs) {
		idx = append(idx, msrMTRRPhysBase0+2*i, msrMTRRPhysBase0+2*i+1)
	}
	return idx
}

func getMSRs(fd int, idx []uint32) ([]MSR, error) {
	if len(idx) == 0 {
		return nil, nil
	}
	buf := make([]byte, 8+sizeMSREntry*len(idx))
	binary.LittleEndian.PutUint32(buf, uint32(len(idx)))
	for i, x := range idx {
		binary.LittleEndian.PutUint32(buf[8+sizeMSREntry*i:], x)
	}
	n, err := ioctlBuf(fd, kvmGetMSRs, buf)
	if err != nil {
		return nil, fmt.Errorf("KVM_GET_MSRS: %w", err)
	}
	if n != len(idx) {
		return nil, fmt.Errorf("KVM_GET_MSRS: read %d of %d MSRs, stopped at %#x", n, len(idx), idx[n])
	}
	msrs := make([]MSR, len(idx))
	for i := range msrs {
		e := buf[8+sizeMSREntry*i:]
		msrs[i] = MSR{Index: binary.LittleEndian.Uint32(e), Data: binary.LittleEndian.Uint64(e[8:])}
	}
	return msrs, nil
}

func setMSRs(fd int, msrs []MSR) error {
	if len(msrs) == 0 {
		return nil
	}
	buf := make([]byte, 8+sizeMSREntry*len(msrs))
	binary.LittleEndian.PutUint32(buf, uint32(len(msrs)))
	for i, m := range msrs {
		e := buf[8+sizeMSREntry*i:]
		binary.LittleEndian.PutUint32(e, m.Index)
		binary.LittleEndian.PutUint64(e[8:], m.Data)
	}
	n, err := ioctlBuf(fd, kvmSetMSRs, buf)
	if err != nil {
		return fmt.Errorf("KVM_SET_MSRS: %w", err)
	}
	if n != len(msrs) {
		return fmt.Errorf("KVM_SET_MSRS: this host's KVM refused MSR %#x (set %d of %d)", msrs[n].Index, n, len(msrs))
	}
	return nil
}

// snapshotIoctls are the ioctls a running machine makes to take a
// snapshot besides KVM_GET_REGS and KVM_GET_SREGS, which RunIoctls lists
// already.
func snapshotIoctls() []uint64 {
	var r []uint64
	for _, b := range []kvmBlob{blobFPU, blobXSave, blobXCRs, blobLAPIC, blobEvents,
		blobMPState, blobDebug, blobIRQChip, blobPIT2, blobClock} {
		r = append(r, uint64(b.get))
	}
	return append(r, uint64(kvmGetXSave2), uint64(kvmGetMSRs), uint64(kvmGetMSRIndexList), uint64(kvm.IIO(kvmGetTSCKHz)))
}
