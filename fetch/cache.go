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
// XDG_CACHE_HOME is unset or not absolute (as the XDG spec says). Run as
// root, it refuses that directory with a *ForeignCacheError when the
// directory the environment names (XDG_CACHE_HOME, or HOME) or a part of
// the cache below it that exists, a symbolic link met there too, belongs
// to a user other than root: root was given another user's HOME (sudo
// -E), and would make that user's ~/.cache its own and write where that
// user's links lead. The directories above it are not looked at: inside
// a user namespace / belongs to the overflow uid, and root's own home
// too may sit in another user's tree. A cache given by its path
// (Fetcher.Cache) is its giver's choice, and nobody but root is refused
// anything.
func DefaultCacheDir() (string, error) {
	c, err := defaultCache()
	if err != nil {
		return "", err
	}
	if err := c.foreign(c.dir); err != nil {
		return "", err
	}
	return c.dir, nil
}

// envCache is the default cache directory and where the environment put
// it.
type envCache struct {
	dir  string // the cache root: <base>/smolvmm or <base>/.cache/smolvmm
	base string // XDG_CACHE_HOME's or HOME's directory
	env  string // which of the two: "XDG_CACHE_HOME" or "HOME"
}

// defaultCache is DefaultCacheDir's directory, not yet looked at.
func defaultCache() (envCache, error) {
	if x := os.Getenv("XDG_CACHE_HOME"); filepath.IsAbs(x) {
		return envCache{dir: filepath.Join(x, "smolvmm"), base: x, env: "XDG_CACHE_HOME"}, nil
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return envCache{}, fmt.Errorf("%w: neither XDG_CACHE_HOME nor HOME is set", ErrNoCacheDir)
	}
	return envCache{dir: filepath.Join(home, ".cache", "smolvmm"), base: home, env: "HOME"}, nil
}

// foreign returns a *ForeignCacheError when this process is root and
// c.base, or a part of path p (c.dir or below it) that exists between
// c.base and p, or a symbolic link one of them leads through, belongs to
// another uid than root's; nil otherwise. A missing part ends the look:
// root makes it, its own.
func (c envCache) foreign(p string) error {
	if geteuid() != 0 {
		return nil
	}
	rel, err := filepath.Rel(c.base, p)
	if err != nil {
		return nil
	}
	cur := c.base
	for _, name := range append([]string{"."}, strings.Split(rel, string(filepath.Separator))...) {
		cur = filepath.Join(cur, name)
		exists, err := c.rootsPart(cur)
		if err != nil || !exists {
			return err
		}
	}
	return nil
}

// rootsPart looks at path p of the default cache: a *ForeignCacheError
// when p, or a symbolic link in the chain p starts, or what the chain
// leads to, belongs to another uid than root's (a link of root's may
// lead into another user's directory); exists is false when p or what
// it leads to is missing.
func (c envCache) rootsPart(p string) (exists bool, err error) {
	for links := 0; ; links++ {
		st, err := os.Lstat(p)
		if err != nil {
			return false, nil // the mkdir or open that follows says why
		}
		link := st.Mode()&fs.ModeSymlink != 0
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Uid != 0 {
			return true, &ForeignCacheError{Dir: c.dir, Env: c.env, Path: p, Link: link, UID: int(sys.Uid)}
		}
		if !link || links == maxLinks {
			return true, nil // the open that follows fails on more links
		}
		target, err := os.Readlink(p)
		if err != nil {
			return false, nil
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(p), target)
		}
		p = target
	}
}

// geteuid is os.Geteuid, replaced in tests, which run as root, by one
// that says another user.
var geteuid = os.Geteuid

// maxLinks bounds the symbolic links rootsPart follows, as the kernel
// bounds a path's (40).
const maxLinks = 40

// lockDir takes an exclusive flock on dir/.lock so that two smolvmm
// processes never write the same .part file at once, and (re)creates the
// kernel and sets directories under it. The returned function releases it.
// A cache this process may not write (another user's, a read-only file
// system) is locked through a read-only descriptor, which flock takes as
// well, or not at all when it has no lock file or may not open it
// (another user's, lockFileMode): readOnly is then set, and
// only what is cached there may be used; the error of the write is
// returned in readOnly.
// check, when set, says whether the directories, once made, may be used
// (envCache.foreign, for root's default cache): it runs before the lock
// file is opened and again once kernel and sets are made, as a directory
// another user made meanwhile in one anybody may write (an XDG_CACHE_HOME
// of /tmp) would be followed.
// A Fetch that fails before anything is cached removes the directories and
// the lock file (removeEmpty, up to stop) while holding the lock, so a
// process that waited on the removed file starts over with a new one; a
// lockDir that fails without the lock removes nothing, as the directories
// may be those of the process holding it. The wait ends
// with ctx, with its cause: a blocking flock would ignore Ctrl-C for as
// long as the holder runs (or hangs).
func lockDir(ctx context.Context, dir, stop string, wait func(holder string), check func() error) (unlock func(), readOnly error, err error) {
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
		var err error
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
		if check != nil {
			if err := check(); err != nil {
				return nil, nil, err
			}
		}
		path := filepath.Join(dir, ".lock")
		f, err := openFile(path, os.O_CREATE|os.O_RDWR, lockFileMode)
		if errors.Is(err, os.ErrNotExist) && vanished < maxVanished {
			vanished++
			continue
		}
		if err == nil {
			narrowLockFile(f)
		}
		if notWritable(err) {
			readOnly = fsErr("create lock file", path, err)
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
		}
		if check != nil {
			if err := check(); err != nil {
				f.Close()
				return nil, nil, err
			}
		}
		return func() { f.Close() }, readOnly, nil
	}
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
