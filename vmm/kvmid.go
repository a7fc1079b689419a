package vmm

import (
	"crypto/sha256"
	"encoding/binary"
	"os"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/snapshot"
)

// A restore checks the snapshot's CPUID against what this host's KVM
// supports (KVM_GET_SUPPORTED_CPUID), a question that costs ~1 ms on a
// nested host (each CPUID instruction KVM runs to answer it exits to the
// outer hypervisor) and, while it runs, holds up the memory slots, which
// wait for a grace period. A snapshot records, with the part of the
// answer the check reads (the feature registers of featureRegs' leaves),
// the identity of the KVM that gave it; a restore on a KVM of the same
// identity checks against that record instead of asking.
//
// Why that is the answer KVM would give: the registers the check reads
// are, in KVM's answer, copied from kvm_cpu_caps and kvm_caps (leaf 0xD's
// XCR0 components, also masked by the calling process's permission for
// dynamic guest state such as AMX), both computed once, when the vendor
// module (kvm_intel, kvm_amd...) initialises and registers /dev/kvm, from
// the CPU features the kernel found at boot. Nothing changes them
// afterwards: a late microcode load leaves the boot CPU's feature list as
// it was, and the module parameters that shape them are read-only once
// loaded; loading the module again, with other parameters or not,
// registers /dev/kvm again. The rest of the answer (topology, caches, the
// APIC ID of the CPU that answered) can differ from one question to the
// next, but the check does not read it: the vCPU gets the snapshot's
// entries either way.
//
// So the identity is, hashed: the kernel's boot (its random boot_id,
// shared by containers on that kernel, which share its KVM too); the
// sysfs node of the misc device "kvm", which every registration of
// /dev/kvm creates anew, with an inode number (kernfs's node id, handed
// out cyclically with a generation in its high half on 64-bit kernels
// since Linux 5.5) that names no other node in one boot; that the
// descriptor asked is that device (misc major 10, minor 232, KVM_MINOR),
// not another given as the KVM path; and this process's guest state
// permission (arch_prctl ARCH_GET_XCOMP_GUEST_PERM; a kernel without it
// has none, which its KVM's answer then does not depend on). A host that
// is itself a VM, restored from a snapshot on another machine, keeps its
// boot_id and its KVM, whose answer comes from the same kvm_cpu_caps
// there: asking would tell no more. Whatever of it cannot be read (no
// /sys, a chroot, another device) leaves the identity unknown, and the
// restore asks, as does any difference. A forged snapshot could
// claim this host's identity with a record of its own; it could as well
// hold any guest state, and a vCPU given features the host lacks harms
// only its own guest (which KVM runs as it would any CPUID userspace
// sets).

// kvmMinor is KVM_MINOR, /dev/kvm's misc minor number; miscMajor is the
// misc devices' major.
const (
	kvmMinor  = 232
	miscMajor = 10
)

// kvmMiscNode is the sysfs node of /dev/kvm's registration, and bootIDPath
// holds the kernel's boot_id, a random UUID drawn at boot (variables for
// the tests).
var (
	kvmMiscNode = "/sys/devices/virtual/misc/kvm"
	bootIDPath  = "/proc/sys/kernel/random/boot_id"
)

// readKVMIdentity returns the identity of the KVM kvm (an open /dev/kvm)
// is, and false when it cannot be told. It costs a few system calls
// (~0.05 ms here, the hash included), no CPUID.
func readKVMIdentity(kvm *os.File) (snapshot.KVMID, bool) {
	var id snapshot.KVMID
	var dev, node unix.Stat_t
	if err := unix.Fstat(int(kvm.Fd()), &dev); err != nil || dev.Mode&unix.S_IFMT != unix.S_IFCHR ||
		unix.Major(dev.Rdev) != miscMajor || unix.Minor(dev.Rdev) != kvmMinor {
		return id, false
	}
	if err := unix.Stat(kvmMiscNode, &node); err != nil || node.Mode&unix.S_IFMT != unix.S_IFDIR || node.Ino == 0 {
		return id, false
	}
	// Both facts must come from the kernel itself: a file bind-mounted
	// over either (a fixed boot_id in a container image, say) could give
	// two hosts one identity.
	var fs unix.Statfs_t
	if err := unix.Statfs(kvmMiscNode, &fs); err != nil || fs.Type != unix.SYSFS_MAGIC {
		return id, false
	}
	boot, ok := readBootID()
	if !ok {
		return id, false
	}
	perm, ok := guestStatePerm() // kvmid_x86.go, kvmid_other.go
	if !ok {
		return id, false
	}
	b := make([]byte, 0, 64)
	b = append(b, "smolvmm kvm identity 1\x00"...)
	b = append(b, boot[:]...)
	b = binary.LittleEndian.AppendUint64(b, node.Ino)
	b = binary.LittleEndian.AppendUint64(b, perm)
	sum := sha256.Sum256(b)
	copy(id[:], sum[:])
	if id == (snapshot.KVMID{}) {
		return id, false // zero says none
	}
	return id, true
}

// readBootID reads the kernel's boot_id, 36 characters and a newline.
func readBootID() (b [36]byte, ok bool) {
	fd, err := unix.Open(bootIDPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return b, false
	}
	defer unix.Close(fd)
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil || fs.Type != unix.PROC_SUPER_MAGIC {
		return b, false
	}
	var buf [64]byte
	n, err := unix.Read(fd, buf[:])
	if err != nil || n != 37 || buf[36] != '\n' {
		return b, false
	}
	copy(b[:], buf[:36])
	return b, true
}

// kvmIdentity returns the identity of the machine's KVM, zero when it
// cannot be told, read once: by a restore's decision whether to ask KVM
// for the CPUID, else, for a snapshot's header, before Run's sandbox
// (Config.BeforeRun, which may refuse the reads) when there is one or a
// snapshot is configured, or at the first snapshot. The KVM cannot change
// meanwhile: the machine's open /dev/kvm keeps the module loaded.
func (m *Machine) kvmIdentity() snapshot.KVMID {
	m.kvmIDOnce.Do(func() {
		if m.cpuid != nil && m.cpuid.identified {
			m.kvmID = m.cpuid.kvmID
			return
		}
		m.kvmID, _ = readKVMIdentity(m.kvm)
	})
	return m.kvmID
}
