// Package usercache gives the root of this user's caches: the user's cache
// directory (os.UserCacheDir), or, where the environment names none (HOME
// unset), a directory of this user's own under os.TempDir(). A fixed name
// there is one anybody may make first and fill; it is used only when it
// is this user's and nobody else may write it.
package usercache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/internal/filekind"
)

// ErrNotPrivate is matched by every *NotPrivateError.
var ErrNotPrivate = errors.New("not this user's private directory")

// NotPrivateError is the directory TempDir would use, refused: another
// user's, or something else than a directory (a symbolic link, which
// would lead anywhere), or one that group or others may write. Whatever
// is in it may have been put there by another user. Nothing is removed
// or changed.
type NotPrivateError struct {
	Path string // the directory refused
	// Kind is what Path is when it is no directory ("a symbolic
	// link", as filekind.Of says it); "" for a directory.
	Kind string
	UID  int         // Path's owner
	Self int         // this process's effective user
	Mode fs.FileMode // Path's permission bits
}

// Error names the directory and what is wrong with it.
func (e *NotPrivateError) Error() string {
	switch {
	case e.Kind != "":
		return fmt.Sprintf("cache directory %s: %v: it is %s of uid %d (this process's user is uid %d)", e.Path, ErrNotPrivate, e.Kind, e.UID, e.Self)
	case e.UID != e.Self:
		return fmt.Sprintf("cache directory %s: %v: it belongs to uid %d, not to this process's user (uid %d)", e.Path, ErrNotPrivate, e.UID, e.Self)
	}
	return fmt.Sprintf("cache directory %s: %v: group or others may write it (mode %#o)", e.Path, ErrNotPrivate, e.Mode)
}

// Is makes errors.Is(err, ErrNotPrivate) true.
func (e *NotPrivateError) Is(target error) bool { return target == ErrNotPrivate }

// Dir returns os.UserCacheDir's directory, else TempDir's.
func Dir() (string, error) {
	if dir, err := os.UserCacheDir(); err == nil {
		return dir, nil
	}
	return TempDir()
}

// TempDir returns os.TempDir()/smolvmm-cache-UID, UID this process's
// effective user, made mode 0700 when missing. One that is there already
// is used only when it is a directory (not followed if a symbolic link),
// of this user's, that group and others may not write: under a sticky
// /tmp nobody else may then rename or fill it. Otherwise the error is a
// *NotPrivateError.
func TempDir() (string, error) {
	return tempDir(os.TempDir(), os.Geteuid())
}

// tempDir is TempDir in dir for user euid.
func tempDir(dir string, euid int) (string, error) {
	path := filepath.Join(dir, fmt.Sprintf("smolvmm-cache-%d", euid))
	if err := os.Mkdir(path, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("cache directory: %w", err)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		// O_NOFOLLOW's "too many levels of symbolic links" would not
		// say whose it is.
		if st, err := os.Lstat(path); err == nil {
			e := &NotPrivateError{Path: path, Kind: filekind.Of(st.Mode()), Self: euid, Mode: st.Mode().Perm()}
			if sys, ok := st.Sys().(*syscall.Stat_t); ok {
				e.UID = int(sys.Uid)
			}
			return "", e
		}
	}
	if err != nil {
		return "", fmt.Errorf("cache directory: %w", &fs.PathError{Op: "open", Path: path, Err: err})
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "", fmt.Errorf("cache directory: %w", &fs.PathError{Op: "fstat", Path: path, Err: err})
	}
	if int(st.Uid) != euid || st.Mode&0o022 != 0 {
		return "", &NotPrivateError{Path: path, UID: int(st.Uid), Self: euid, Mode: fs.FileMode(st.Mode & 0o777)}
	}
	return path, nil
}

// private is Root's directory of this process's own, made once.
var private struct {
	once sync.Once
	dir  string
}

// Root is Dir for callers that return no error (the tests' cache
// helpers): where Dir fails, a directory of this process's own, made
// private by os.MkdirTemp under os.TempDir() and the same for every call,
// whose contents last for this process only (nothing another user
// planted is trusted, at the cost of downloading again, and the
// directory is left behind); where even that cannot be made, a path below
// os.DevNull, where nothing is and nothing can be made. refused is Dir's
// error, nil when its directory is used.
func Root() (dir string, refused error) {
	dir, refused = Dir()
	if refused == nil {
		return dir, nil
	}
	private.once.Do(func() {
		d, err := os.MkdirTemp("", fmt.Sprintf("smolvmm-cache-%d-", os.Geteuid()))
		if err != nil {
			d = filepath.Join(os.DevNull, "smolvmm-cache")
		}
		private.dir = d
	})
	return private.dir, refused
}
