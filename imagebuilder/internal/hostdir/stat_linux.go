package hostdir

import "golang.org/x/sys/unix"

// statAt reads the status of name in dirfd through statx (Linux 4.11),
// whose times are 64-bit on every architecture.
func statAt(dirfd int, name string, flags int) (Stat, error) {
	var x unix.Statx_t
	if err := unix.Statx(dirfd, name, flags|unix.AT_STATX_SYNC_AS_STAT, unix.STATX_BASIC_STATS, &x); err != nil {
		return Stat{}, err
	}
	// Mkdev encodes a device number as the kernel's stat does, so Dev
	// and Rdev equal st_dev and st_rdev.
	return Stat{
		Mode:  uint32(x.Mode),
		Uid:   x.Uid,
		Gid:   x.Gid,
		Nlink: uint64(x.Nlink),
		Dev:   unix.Mkdev(x.Dev_major, x.Dev_minor),
		Ino:   x.Ino,
		Rdev:  unix.Mkdev(x.Rdev_major, x.Rdev_minor),
		Size:  int64(x.Size),
		Mtim:  Timespec{x.Mtime.Sec, int64(x.Mtime.Nsec)},
		Ctim:  Timespec{x.Ctime.Sec, int64(x.Ctime.Nsec)},
	}, nil
}

func fstat(fd int) (Stat, error) { return statAt(fd, "", unix.AT_EMPTY_PATH) }
