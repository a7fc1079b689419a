// Package regfile opens and reads input files that must be regular files
// (kernels, boot modules, snapshots) without blocking on anything else:
// opening a FIFO for reading waits for a writer, and reading /dev/zero or
// a huge file whole fills memory before any check of its content. A
// refused file is said with its kind ("a FIFO", "a character device").
package regfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/smolvmm/smolvmm/internal/atomicfile"
	"github.com/smolvmm/smolvmm/internal/filekind"
)

// ErrNotRegular is matched (errors.Is) by the error for a path that is not
// a regular file.
var ErrNotRegular = atomicfile.ErrNotRegular

// ErrTooLarge is matched (errors.Is) by ReadFile's error for a file larger
// than its limit.
var ErrTooLarge = errors.New("file too large")

// Open opens path for reading and returns it with its size, refusing
// anything but a regular file (after symlinks). The open itself does not
// block: O_NONBLOCK makes a FIFO open at once, and fstat then refuses it.
func Open(path string) (*os.File, int64, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%s is %s: %w", path, filekind.Of(st.Mode()), ErrNotRegular)
	}
	return f, st.Size(), nil
}

// ReadFile reads the regular file at path whole, refusing it before
// reading when it is larger than limit bytes. A file that grows while it
// is read is cut at limit+1 bytes and refused too.
func ReadFile(path string, limit int64) ([]byte, error) {
	f, size, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if size > limit {
		return nil, &TooLargeError{Path: path, Size: size, Limit: limit}
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, &TooLargeError{Path: path, Size: -1, Limit: limit}
	}
	return data, nil
}

// TooLargeError is ReadFile's error for a file larger than its limit; it
// matches ErrTooLarge (errors.Is).
type TooLargeError struct {
	Path  string // the file as given
	Size  int64  // the file's size, or -1 when it grew past Limit while read
	Limit int64
}

// Error gives the sizes as a reader counts them, in MiB (as memory sizes
// are given), not in bytes to be divided by hand.
func (e *TooLargeError) Error() string {
	if e.Size < 0 {
		return fmt.Sprintf("%s grew past %s while read", e.Path, Size(e.Limit))
	}
	return fmt.Sprintf("%s is %s, more than the %s allowed", e.Path, Size(e.Size), Size(e.Limit))
}

// Is makes errors.Is(err, ErrTooLarge) true.
func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

// Size says n bytes as "512 MiB", "600.5 MiB", or "4095 bytes" below a
// MiB. A size above its limit by less than 0.05 MiB still reads larger:
// it gets the bytes after the MiB.
func Size(n int64) string {
	const mib = 1 << 20
	switch {
	case n < mib:
		return fmt.Sprintf("%d bytes", n)
	case n%mib == 0:
		return fmt.Sprintf("%d MiB", n/mib)
	}
	s := fmt.Sprintf("%.1f MiB", float64(n)/mib)
	if s == fmt.Sprintf("%d.0 MiB", n/mib) {
		if n%mib == 1 {
			return fmt.Sprintf("%d MiB and 1 byte", n/mib)
		}
		return fmt.Sprintf("%d MiB and %d bytes", n/mib, n%mib)
	}
	return s
}
