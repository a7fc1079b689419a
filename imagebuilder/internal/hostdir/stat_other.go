//go:build !linux

package hostdir

import "golang.org/x/sys/unix"

// fromStat converts st, whose field types vary by system; where this file
// builds, struct stat's times are 64-bit.
func fromStat(st *unix.Stat_t) Stat {
	return Stat{
		Mode:  uint32(st.Mode),
		Uid:   st.Uid,
		Gid:   st.Gid,
		Nlink: uint64(st.Nlink),
		Dev:   uint64(st.Dev),
		Ino:   uint64(st.Ino),
		Rdev:  uint64(st.Rdev),
		Size:  st.Size,
		Mtim:  Timespec{int64(st.Mtim.Sec), int64(st.Mtim.Nsec)},
		Ctim:  Timespec{int64(st.Ctim.Sec), int64(st.Ctim.Nsec)},
	}
}

func fstat(fd int) (Stat, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return Stat{}, err
	}
	return fromStat(&st), nil
}

func lstatAt(dirfd int, name string) (Stat, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return Stat{}, err
	}
	return fromStat(&st), nil
}

func statPath(path string, follow bool) (Stat, error) {
	var st unix.Stat_t
	flags := unix.AT_SYMLINK_NOFOLLOW
	if follow {
		flags = 0
	}
	if err := unix.Fstatat(unix.AT_FDCWD, path, &st, flags); err != nil {
		return Stat{}, err
	}
	return fromStat(&st), nil
}
