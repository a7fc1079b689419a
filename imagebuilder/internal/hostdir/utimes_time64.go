//go:build linux && (386 || arm || mips || mipsle)

package hostdir

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// kernelTimespec is the kernel's struct __kernel_timespec: 64-bit
// seconds and nanoseconds on every architecture.
type kernelTimespec struct{ sec, nsec int64 }

// lutimes sets the times through utimensat_time64 (Linux 5.1), or, on an
// older kernel, through utimensat, where what 32 bits cannot hold is
// refused.
func lutimes(path string, atime, mtime Timespec) error {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return err
	}
	ts := [2]kernelTimespec{{atime.Sec, atime.Nsec}, {mtime.Sec, mtime.Nsec}}
	dirfd := unix.AT_FDCWD // a negative int, as the kernel reads it
	_, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT_TIME64, uintptr(dirfd), uintptr(unsafe.Pointer(p)), uintptr(unsafe.Pointer(&ts)), uintptr(unix.AT_SYMLINK_NOFOLLOW), 0, 0)
	switch errno {
	case 0:
		return nil
	case unix.ENOSYS:
		return utimes32(path, atime, mtime)
	}
	return errno
}
