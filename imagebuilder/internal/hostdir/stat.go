package hostdir

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Stat is an entry's status, its times 64-bit on every host: a 32-bit
// Linux's struct stat (unix.Stat_t, from fstatat64) holds 32-bit seconds,
// and the kernel fills it with a time past 2038 cut to its low 32 bits,
// without an error (2120 reads as 1983). Its other fields have one type
// on every host (a Darwin dev_t is an int32).
type Stat struct {
	Mode       uint32   // file type and permission bits, as st_mode
	Uid, Gid   uint32   // owner and group
	Nlink      uint64   // hard links
	Dev, Ino   uint64   // the file system's device and the inode, as st_dev and st_ino
	Rdev       uint64   // a device node's device number, as st_rdev
	Size       int64    // bytes
	Mtim, Ctim Timespec // modification and status change times
}

// Timespec is a file time.
type Timespec struct {
	Sec  int64 // seconds since the Unix epoch
	Nsec int64 // nanoseconds past Sec
}

// Unix returns t's seconds and nanoseconds, as time.Unix takes them.
func (t Timespec) Unix() (sec, nsec int64) { return t.Sec, t.Nsec }

// Time is t as a time.Time.
func (t Timespec) Time() time.Time { return time.Unix(t.Sec, t.Nsec) }

// Before reports whether t is before u, for any times (a time past 2262
// has no int64 count of nanoseconds).
func (t Timespec) Before(u Timespec) bool {
	return t.Sec < u.Sec || t.Sec == u.Sec && t.Nsec < u.Nsec
}

// LstatPath is the status of the entry at path, a symlink not followed.
func LstatPath(path string) (Stat, error) {
	st, err := statAt(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW)
	if err != nil {
		return st, &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	return st, nil
}

// StatPath is the status of the file at path, symlinks followed.
func StatPath(path string) (Stat, error) {
	st, err := statAt(unix.AT_FDCWD, path, 0)
	if err != nil {
		return st, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return st, nil
}

// Fstat is the status of the open descriptor fd, which path (for the
// error) names.
func Fstat(fd int, path string) (Stat, error) {
	st, err := fstat(fd)
	if err != nil {
		return st, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	return st, nil
}

// Lutimes sets the access and modification times of the entry at path,
// a symlink not followed, for any time the file system holds: on a
// 32-bit Linux, utimensat and os.Chtimes take 32-bit seconds, and cut a
// time past 2038 to its low 32 bits.
func Lutimes(path string, atime, mtime Timespec) error {
	if err := lutimes(path, atime, mtime); err != nil {
		return &os.PathError{Op: "utimes", Path: path, Err: err}
	}
	return nil
}

// utimes32 sets the times through a struct timespec, where its seconds
// may be 32-bit: a time they cannot hold is refused (ERANGE), never cut.
func utimes32(path string, atime, mtime Timespec) error {
	var ts [2]unix.Timespec
	for i, t := range []Timespec{atime, mtime} {
		var err error
		if ts[i], err = unix.TimeToTimespec(t.Time()); err != nil {
			return err
		}
	}
	return unix.UtimesNanoAt(unix.AT_FDCWD, path, ts[:], unix.AT_SYMLINK_NOFOLLOW)
}
