package fetch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/internal/atomicfile"
	"github.com/smolvmm/smolvmm/internal/lockholder"
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
// processes never write the same .part file at once. The returned function
// releases it.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fsErr("create lock file", dir, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		holder := lockholder.Describe(f)
		f.Close()
		if holder != "" {
			return nil, fmt.Errorf("lock %s (held by %s): %w", f.Name(), holder, err)
		}
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

// writeFileAtomic writes data to path through a synced temporary file and
// a rename, so a crash never leaves half a digest file in the cache.
func writeFileAtomic(path string, data []byte) error {
	if err := atomicfile.WriteFile(path, data, 0o644); err != nil {
		return fsErr("write", path, err)
	}
	return nil
}

// fsErr names the file and, for a full disk, says what to do.
func fsErr(op, path string, err error) error {
	if errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("%s %s: %w (free some space or choose another cache directory): %w", op, path, ErrNoSpace, err)
	}
	return fmt.Errorf("%s %s: %w", op, path, err)
}
