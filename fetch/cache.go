package fetch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/internal/atomicfile"
	"github.com/smolvmm/smolvmm/internal/lockholder"
	"github.com/smolvmm/smolvmm/internal/regfile"
)

// DefaultCacheDir returns $XDG_CACHE_HOME/smolvmm, or ~/.cache/smolvmm when
// XDG_CACHE_HOME is unset or not absolute (as the XDG spec says).
func DefaultCacheDir() (string, error) {
	if x := os.Getenv("XDG_CACHE_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "smolvmm"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return "", fmt.Errorf("%w: neither XDG_CACHE_HOME nor HOME is set", ErrNoCacheDir)
	}
	return filepath.Join(home, ".cache", "smolvmm"), nil
}

// lockDir takes an exclusive flock on dir/.lock so that two smolvmm
// processes never write the same .part file at once, and (re)creates the
// kernel and sets directories under it. The returned function releases it.
// A cache this process may not write (another user's, a read-only file
// system) is locked through a read-only descriptor, which flock takes as
// well, or not at all when it has no lock file or may not open it
// (another user's, lockFileMode): readOnly is then set, and
// only what is cached there may be used; the error of the write is
// returned in readOnly. A cache reached through another user's
// directory or symbolic link (foreignPart) is refused to root, with its
// *ForeignCacheError, and used read-only by anybody else, that error in
// readOnly: nothing is made or written there.
// A Fetch that fails before anything is cached removes the directories and
// the lock file (removeEmpty, up to stop) while holding the lock, so a
// process that waited on the removed file starts over with a new one; a
// lockDir that fails without the lock removes nothing, as the directories
// may be those of the process holding it. The wait ends
// with ctx, with its cause: a blocking flock would ignore Ctrl-C for as
// long as the holder runs (or hangs).
func lockDir(ctx context.Context, dir, stop string, wait func(holder string)) (unlock func(), readOnly error, err error) {
	vanished := 0
	for {
		// A failed Fetch's removeEmpty may remove dir, or a parent
		// of it, between the mkdir of one directory and the next or
		// before the lock file is opened: start over, a bounded number
		// of times.
		// A missing ~/.cache, the XDG default, is made private, as
		// the XDG spec says; the cache's own directories, and those
		// above a cache given elsewhere (one shared at /srv/cache),
		// are readable by others: a cache may serve other users, which
		// gives them no say in its lock (lockFileMode).
		// A path through another user's directories is that user's
		// to lead anywhere (foreignPart): root refuses it, anybody
		// else only reads what is cached there. It is looked at again
		// once the directories are made, as one made meanwhile in a
		// directory anybody may write (/tmp) would be followed.
		euid := geteuid()
		foreign := foreignPart(dir, euid)
		var err error
		if foreign == nil {
			if parent := filepath.Dir(filepath.Dir(filepath.Dir(dir))); isHomeCache(parent) {
				err = mkdirAll(parent, 0o700)
			}
			if err == nil {
				err = mkdirAll(dir, 0o755)
			}
			if errors.Is(err, os.ErrNotExist) && vanished < maxVanished {
				vanished++
				continue
			}
			if err != nil {
				return nil, nil, cacheDirErr(fsErr("create cache directory", dir, err))
			}
			foreign = foreignPart(dir, euid)
		}
		if foreign != nil && euid == 0 {
			return nil, nil, foreign
		}
		path := filepath.Join(dir, ".lock")
		var f *os.File
		if foreign != nil {
			err = foreign
		} else {
			f, err = openFile(path, os.O_CREATE|os.O_RDWR, lockFileMode)
		}
		if errors.Is(err, os.ErrNotExist) && vanished < maxVanished {
			vanished++
			continue
		}
		if err == nil {
			narrowLockFile(f)
		}
		if foreign != nil || notWritable(err) {
			readOnly = foreign
			if readOnly == nil {
				readOnly = fsErr("create lock file", path, err)
			}
			if f, err = openFile(path, os.O_RDONLY, 0); err != nil {
				// No lock to take, and none can be made: nobody
				// who lacks it can write here either.
				return func() {}, readOnly, nil
			}
		}
		if err != nil {
			return nil, nil, fsErr("create lock file", dir, err)
		}
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if errors.Is(err, unix.EWOULDBLOCK) {
			if wait != nil {
				wait(lockholder.Describe(f))
			}
			err = waitLock(ctx, f)
		}
		if err != nil {
			holder := lockholder.Describe(f)
			f.Close()
			if holder != "" {
				return nil, nil, fmt.Errorf("lock %s (held by %s): %w", f.Name(), holder, err)
			}
			return nil, nil, fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		held, err1 := f.Stat()
		now, err2 := os.Stat(path)
		if err1 != nil || err2 != nil || !os.SameFile(held, now) {
			f.Close() // removed while we waited: lock the new one
			continue
		}
		for _, sub := range []string{"kernel", "sets"} {
			if readOnly != nil {
				break // a missing one holds nothing to use
			}
			if err := mkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
				removeEmpty(dir, stop)
				f.Close()
				return nil, nil, cacheDirErr(fsErr("create cache directory", filepath.Join(dir, sub), err))
			}
			// Another user's symlink here leads the downloads too.
			if foreign := foreignPart(filepath.Join(dir, sub), euid); foreign != nil {
				if euid == 0 {
					f.Close()
					return nil, nil, foreign
				}
				readOnly = foreign
			}
		}
		return func() { f.Close() }, readOnly, nil
	}
}

// geteuid is os.Geteuid, replaced in tests, which run as root, by one
// that says another user.
var geteuid = os.Geteuid

// maxLinks bounds the symbolic links foreignPart follows, as the kernel
// bounds a path's (40): the open that follows fails on more.
const maxLinks = 40

// foreignPart returns a *ForeignCacheError when a directory on cache
// directory dir's path (from /), or a symbolic link followed on the way,
// belongs to neither euid nor root: its owner may rename what is in it
// or link it anywhere, so a process of another user would write its
// directories, lock file and downloads where that owner leads, and trust
// the digest files found there. nil when every part is euid's or root's;
// what is missing (to be made by this process) and what cannot be looked
// at (the mkdir or open that follows says why) end the walk.
func foreignPart(dir string, euid int) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil
	}
	owned := func(p string, st os.FileInfo) error {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != euid && sys.Uid != 0 {
			return &ForeignCacheError{Dir: dir, Path: p, UID: int(sys.Uid), Self: euid, Link: st.Mode()&fs.ModeSymlink != 0}
		}
		return nil
	}
	cur := "/"
	if st, err := os.Lstat(cur); err == nil {
		if err := owned(cur, st); err != nil {
			return err
		}
	}
	todo := strings.Split(abs, "/")
	for links := 0; len(todo) > 0; {
		name := todo[0]
		todo = todo[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur) // cur holds no symbolic link
			continue
		}
		next := filepath.Join(cur, name)
		st, err := os.Lstat(next)
		if err != nil {
			return nil
		}
		if err := owned(next, st); err != nil {
			return err
		}
		if st.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if links++; links > maxLinks {
			return nil
		}
		target, err := os.Readlink(next)
		if err != nil {
			return nil
		}
		if filepath.IsAbs(target) {
			cur = "/"
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	return nil
}

// isHomeCache reports whether dir is ~/.cache, XDG_CACHE_HOME's default
// (a private directory), rather than a directory given elsewhere.
func isHomeCache(dir string) bool {
	home, err := os.UserHomeDir()
	return err == nil && home != "" && filepath.Clean(dir) == filepath.Join(home, ".cache")
}

// lockFileMode is the lock file's access: flock needs only a descriptor,
// a read-only one too, so any user who could open the file could hold
// the lock and keep its owner's fetches waiting for as long as it likes.
const lockFileMode = 0o600

// narrowLockFile takes group and others' access off f, the lock file, if
// this user owns it: one made before lockFileMode was 0644. Best effort:
// the lock works either way.
func narrowLockFile(f *os.File) {
	st, err := f.Stat()
	if err != nil || st.Mode().Perm()&^lockFileMode == 0 {
		return
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) == os.Geteuid() {
		_ = f.Chmod(st.Mode().Perm() & lockFileMode)
	}
}

// maxVanished bounds lockDir's new starts after the cache directory
// vanished under it: each takes another process's failed Fetch.
const maxVanished = 100

// mkdirAll and openFile are os.MkdirAll and os.OpenFile, replaced in tests
// by ones that fail as for another user: the tests run as root too, who
// may write anywhere.
var (
	mkdirAll = os.MkdirAll
	openFile = os.OpenFile
)

// notWritable reports whether err says this process may not write there.
func notWritable(err error) bool {
	return errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS)
}

// notWritableErr is err, matching ErrCacheNotWritable too when it says
// the cache may not be written.
func notWritableErr(err error) error {
	if notWritable(err) {
		return cacheNotWritable{err}
	}
	return err
}

// cacheDirErr is err, the failure to make a directory of the cache,
// matching ErrCacheNotWritable when the cache may not be written,
// ErrNoSpace when it is full, and ErrCacheDir otherwise.
func cacheDirErr(err error) error {
	err = notWritableErr(err)
	if errors.Is(err, ErrCacheNotWritable) || errors.Is(err, ErrNoSpace) {
		return err
	}
	return cacheDirError{err}
}

// cacheDirError is a cache directory's failure, said as the system says
// it, matching ErrCacheDir as well.
type cacheDirError struct{ err error }

func (e cacheDirError) Error() string   { return e.err.Error() }
func (e cacheDirError) Unwrap() []error { return []error{ErrCacheDir, e.err} }

// cacheNotWritable is the system's error of a write into the cache,
// matching ErrCacheNotWritable as well.
type cacheNotWritable struct{ err error }

func (e cacheNotWritable) Error() string   { return e.err.Error() }
func (e cacheNotWritable) Unwrap() []error { return []error{ErrCacheNotWritable, e.err} }

// lockRetry is how often a waiter tries the lock again: flock has no
// timeout nor a way to be woken but by a signal, which Go's runtime
// restarts the call after.
const lockRetry = 100 * time.Millisecond

// waitLock takes f's exclusive flock, trying again every lockRetry until
// it is free or ctx ends (its cause is returned).
func waitLock(ctx context.Context, f *os.File) error {
	t := time.NewTicker(lockRetry)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-t.C:
		}
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return err
		}
	}
}

// notRegular checks that the cache entry at path, when there is one, is
// a regular file, without waiting on it (regfile.Open): a FIFO put there
// would hold Fetch, and the release's lock, for ever on its open. Only
// the user knows what it is, so it is refused, not removed.
func notRegular(path string) error {
	f, _, err := regfile.Open(path)
	if err == nil {
		f.Close()
		return nil
	}
	return entryErr(err)
}

// entryErr is err, when it refuses a cache entry that is not a regular
// file, said as such; nil otherwise (an absent entry is the caller's).
func entryErr(err error) error {
	if !errors.Is(err, regfile.ErrNotRegular) {
		return nil
	}
	return fmt.Errorf("cache entry %w: remove it, the cache holds only files it writes", err)
}

// writeFileAtomic writes data to path through a synced temporary file and
// a rename, so a crash never leaves half a digest file in the cache.
func writeFileAtomic(path string, data []byte) error {
	if err := atomicfile.WriteFile(path, data, 0o644); err != nil {
		return fsErr("write", path, err)
	}
	return nil
}

// fsErr names the file and its fault once ("write X.part: no space left
// on device"); a full disk also matches ErrNoSpace.
func fsErr(op, path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == path && err.Error() == pe.Error() {
		err = pe.Err // named below
	}
	if errors.Is(err, syscall.ENOSPC) {
		err = noSpace{err}
	}
	return fmt.Errorf("%s %s: %w", op, path, err)
}

// noSpace is a full disk's error, said as the system says it, matching
// ErrNoSpace as well as the system's error.
type noSpace struct{ err error }

func (e noSpace) Error() string   { return e.err.Error() }
func (e noSpace) Unwrap() []error { return []error{ErrNoSpace, e.err} }
