//go:build amd64 || 386

package vmm

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// archGetXcompGuestPerm is ARCH_GET_XCOMP_GUEST_PERM.
const archGetXcompGuestPerm = 0x1024

// guestStatePerm returns this process's permission for dynamic guest
// state (arch_prctl ARCH_GET_XCOMP_GUEST_PERM), all ones from a kernel
// without such permissions, and false when it cannot be read.
func guestStatePerm() (uint64, bool) {
	var perm uint64
	_, _, errno := unix.RawSyscall(unix.SYS_ARCH_PRCTL, archGetXcompGuestPerm, uintptr(unsafe.Pointer(&perm)), 0)
	switch errno {
	case 0:
		return perm, true
	case unix.EINVAL:
		return ^uint64(0), true // a kernel without guest permissions
	}
	return 0, false
}
