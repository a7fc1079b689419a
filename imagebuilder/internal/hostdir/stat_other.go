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

// statAt reads the status of name in dirfd through fstatat.
func statAt(dirfd int, name string, flags int) (Stat, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, flags); err != nil {
		return Stat{}, err
	}
	return fromStat(&st), nil
}
