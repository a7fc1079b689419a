// Package staledir makes temporary directories that a process holds
// locked (flock(2)) for as long as it uses them, so that one left by a
// process that was killed (SIGKILL, the OOM killer), whose lock the
// kernel released, can be told from one in use and removed by the next
// process that makes one of the same kind.
package staledir

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// LockName is the file in a directory Make made whose flock its maker
// holds, and in which it keeps its note.
const LockName = "lock"

// maxNote bounds the note a dead directory's lock file is read for.
const maxNote = 4096

// Make makes a directory in os.TempDir() as os.MkdirTemp(pattern) does
// (mode 0700), holding a file "lock" that holds note and that the
// process keeps flock'ed (where the file system allows) until release, which removes the directory and
// then drops the lock. A directory whose lock no process holds was left
// by a maker that died: RemoveDead removes it. Only a pattern that ends
// in its "*" makes one RemoveDead can find (see RemoveDead).
func Make(pattern string, note []byte) (dir string, release func(), err error) {
	dir, lock, err := MakeIn(os.TempDir(), pattern, note)
	if err != nil {
		return "", nil, err
	}
	return dir, func() {
		os.RemoveAll(dir)
		lock.Close()
	}, nil
}

// MakeIn is Make in the directory tmp, returning the lock file itself:
// the caller removes dir, then closes lock. Where the file system refuses
// the lock, the directory is made without it, and is never found dead.
func MakeIn(tmp, pattern string, note []byte) (dir string, lock *os.File, err error) {
	made, err := os.MkdirTemp(tmp, pattern)
	if err != nil {
		return "", nil, err
	}
	newName := filepath.Join(made, LockName+".new")
	defer func() {
		if err != nil {
			// By path, with made (dir is "" by now): unlink and rmdir
			// take no descriptor, which may be what is missing (EMFILE),
			// where RemoveAll opens the directory it cannot rmdir.
			os.Remove(newName)
			os.Remove(made)
			if lock != nil {
				lock.Close()
			}
		}
	}()
	// Written and locked under another name, then renamed into place:
	// RemoveDead never finds the lock free, or its note partial, before
	// it is held.
	lock, err = os.OpenFile(newName, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", nil, err
	}
	// A lock refused (no flock on this file system: ENOLCK, EOPNOTSUPP)
	// costs only the cleanup: RemoveDead cannot take it either, and
	// keeps the directory.
	_ = flock(int(lock.Fd()), unix.LOCK_EX)
	if _, err := lock.Write(note); err != nil {
		return "", nil, err
	}
	if err := rename(newName, filepath.Join(made, LockName)); err != nil {
		return "", nil, err
	}
	return made, lock, nil
}

// RemoveDead removes the directories of os.TempDir() that a process of
// this user made with Make (pattern prefix + "*") and left when it
// died: one named prefix and os.MkdirTemp's random part (decimal
// digits), of this user's, none of whose permission bits in closed is
// set (0o022: no other user may write in it; 0o077: closed to others),
// holding a regular file "lock" of this user's that no process holds
// locked. It holds the lock itself while it calls before, when not nil,
// with the directory and the note its maker gave, and then removes the
// directory (symlinks are removed, never followed). A directory whose
// maker died before its lock was in place is removed too, without
// before (the maker never returned it): one holding only "lock.new",
// regular and this user's, that no process holds locked, or one that
// is empty, either untouched for UnfinishedAge (younger, it may be one
// a live process is making). Any other is left alone: another user's,
// one opened to others, a live process's, one made without a lock, one
// named otherwise (a user's own, say prefix + "2026-12"). Best effort:
// a directory it cannot remove costs nothing but its room.
func RemoveDead(prefix string, closed os.FileMode, before func(dir string, note []byte)) {
	RemoveDeadIn(os.TempDir(), prefix, closed, before)
}

// RemoveDeadIn is RemoveDead in the directory tmp. On a network file
// system it removes nothing (see NetworkFS).
func RemoveDeadIn(tmp, prefix string, closed os.FileMode, before func(dir string, note []byte)) {
	if NetworkFS(tmp) {
		return
	}
	es, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	for _, e := range es {
		digits, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || !IsRandomPart(digits) || !e.IsDir() {
			continue
		}
		dir := filepath.Join(tmp, e.Name())
		st, err := os.Lstat(dir)
		if err != nil || !st.IsDir() || st.Mode().Perm()&closed != 0 {
			continue
		}
		if sys, ok := st.Sys().(*syscall.Stat_t); !ok || int(sys.Uid) != os.Geteuid() {
			continue
		}
		removeIfDead(dir, before)
	}
}

// flock is unix.Flock; tests replace it to refuse locks.
var flock = unix.Flock

// rename is os.Rename; tests replace it to fail.
var rename = os.Rename

// NetworkFS reports whether dir lies on a file system whose flocks
// another host may not see: NFS (mounted local_lock, or nolock, a lock
// is this host's alone), CIFS and SMB (before Linux 5.5 a flock was
// local), or FUSE (sshfs, and whatever its server does). A lock free
// there may be held by a live process on another host, so neither
// RemoveDead nor atomicfile removes anything from such a directory. One
// whose type cannot be read counts as one, and so does every directory
// off Linux, where the type is not read (staledir_other.go).
func NetworkFS(dir string) bool { return networkFS(dir) }

// IsRandomPart says whether s can be the random part os.MkdirTemp and
// os.CreateTemp put in a name: the decimal digits of a uint32.
func IsRandomPart(s string) bool {
	if s == "" || len(s) > 10 {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// UnfinishedAge is how long a directory without its lock in place (an
// empty one, or one whose "lock.new" is free) must have been left
// untouched before RemoveDead takes it for a dead maker's: a live maker
// holds it so between two system calls (mkdir and open, open and
// flock), unless it is stopped there.
const UnfinishedAge = time.Minute

// removeIfDead removes dir when no process holds its lock, holding the
// lock itself meanwhile; without a lock, removeUnfinished judges it.
func removeIfDead(dir string, before func(dir string, note []byte)) {
	f, err := openLock(filepath.Join(dir, LockName))
	if errors.Is(err, unix.ENOENT) {
		removeUnfinished(dir)
		return
	}
	if err != nil {
		return
	}
	defer f.Close()
	if flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		return
	}
	if before != nil {
		note, err := io.ReadAll(io.LimitReader(f, maxNote))
		if err != nil {
			return
		}
		before(dir, note)
	}
	os.RemoveAll(dir)
}

// removeUnfinished removes dir, which has no lock in place, when its
// maker died (or failed and could not remove it) before the rename that
// puts it there: its lock.new free and untouched for UnfinishedAge, or,
// without one, dir empty and untouched as long. A maker renaming its
// lock.new meanwhile keeps it: the file opened is the lock it holds, or
// rmdir finds the directory not empty.
func removeUnfinished(dir string) {
	f, err := openLock(filepath.Join(dir, LockName+".new"))
	if errors.Is(err, unix.ENOENT) {
		var st unix.Stat_t
		if unix.Lstat(dir, &st) == nil && unfinishedLongEnough(st) {
			unix.Rmdir(dir) // refused, not emptied, if anything is in it by now
		}
		return
	}
	if err != nil {
		return
	}
	defer f.Close()
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil || !unfinishedLongEnough(st) {
		return
	}
	if flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		return
	}
	os.RemoveAll(dir)
}

// unfinishedLongEnough reports whether st was last modified
// UnfinishedAge ago or earlier.
func unfinishedLongEnough(st unix.Stat_t) bool {
	return time.Since(time.Unix(st.Mtim.Unix())) >= UnfinishedAge
}

// openLock opens path, a lock file, for reading without following a
// symlink: it fails unless path is a regular file of this user's.
func openLock(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), path)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || int(st.Uid) != os.Geteuid() {
		f.Close()
		return nil, unix.EPERM
	}
	return f, nil
}
