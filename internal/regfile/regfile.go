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
		return nil, fmt.Errorf("%s is %d bytes, more than the %d allowed: %w", path, size, limit, ErrTooLarge)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s grew past %d bytes while read: %w", path, limit, ErrTooLarge)
	}
	return data, nil
}
