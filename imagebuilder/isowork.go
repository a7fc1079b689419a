package imagebuilder

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// isoWorkPrefix begins the name of the directory in os.TempDir() that
// holds an ISO 9660 build's work tree.
const isoWorkPrefix = "smolvmm-iso-"

// isoWorkLock is the file in that directory a build holds flock'ed while
// it runs: one whose lock is free was left by a build that died.
const isoWorkLock = "lock"

// isoWorkRoot is the work tree, the image's root, inside the directory.
const isoWorkRoot = "root"

// isoWorkTree makes the work tree go-diskfs copies a data directory into
// before it writes an ISO 9660 image, and returns it with the function
// that removes it. The tree is a copy of files that may be private
// (root's, or a user's under umask 077) given the modes the image's
// guest users need (0755, 0644: see isoMode): it lies in a directory of
// mode 0700, so no other user reaches it. A build killed leaves it
// behind; the next ISO 9660 build of the same user removes it.
func isoWorkTree() (work string, done func(), err error) {
	removeDeadISOWork()
	dir, err := os.MkdirTemp("", isoWorkPrefix)
	if err != nil {
		return "", nil, err
	}
	var lock *os.File
	done = func() {
		os.RemoveAll(dir)
		if lock != nil {
			lock.Close()
		}
	}
	defer func() {
		if err != nil {
			done()
		}
	}()
	// The lock is taken under another name and renamed into place, so
	// that another build never finds it free before it is held.
	lock, err = os.OpenFile(filepath.Join(dir, isoWorkLock+".new"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", nil, err
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return "", nil, fmt.Errorf("locking %s: %w", lock.Name(), err)
	}
	if err := os.Rename(lock.Name(), filepath.Join(dir, isoWorkLock)); err != nil {
		return "", nil, err
	}
	work = filepath.Join(dir, isoWorkRoot)
	if err := os.Mkdir(work, 0o755); err != nil {
		return "", nil, err
	}
	// The root's Rock Ridge mode is taken from here: 0755 whatever the
	// umask, as isoMode gives the directories below it.
	if err := os.Chmod(work, 0o755); err != nil {
		return "", nil, err
	}
	return work, done, nil
}

// removeDeadISOWork removes the ISO 9660 work directories in
// os.TempDir() that builds of this user left when they were killed: a
// directory of this user's, closed to others, whose lock no process
// holds. Any other is left alone (another user's, a live build's, one
// made by an older smolvmm without a lock). Best effort: a directory it
// cannot remove costs nothing but its room.
func removeDeadISOWork() {
	tmp := os.TempDir()
	es, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	for _, e := range es {
		if !strings.HasPrefix(e.Name(), isoWorkPrefix) || !e.IsDir() {
			continue
		}
		dir := filepath.Join(tmp, e.Name())
		st, err := os.Lstat(dir)
		if err != nil || !st.IsDir() || st.Mode().Perm()&0o077 != 0 {
			continue
		}
		if sys, ok := st.Sys().(*syscall.Stat_t); !ok || int(sys.Uid) != os.Geteuid() {
			continue
		}
		removeIfDead(dir)
	}
}

// removeIfDead removes dir, an ISO 9660 work directory, when no process
// holds its lock, and holds the lock itself while it does.
func removeIfDead(dir string) {
	fd, err := unix.Open(filepath.Join(dir, isoWorkLock), unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return
	}
	if unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) == nil {
		os.RemoveAll(dir)
	}
}
