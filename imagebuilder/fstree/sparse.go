package fstree

import (
	"context"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// ReadChunk is the unit ReadSparse reads in and keeps or drops.
const ReadChunk = 64 << 10

// ShrankError is ReadSparse's error for a file found shorter, at the end
// of the read, than the size it had when it was opened.
type ShrankError struct {
	Was, Now int64 // sizes in bytes: when opened, and now
}

// Error says both sizes.
func (e *ShrankError) Error() string {
	return fmt.Sprintf("it had %d bytes when it was opened and now has %d bytes", e.Was, e.Now)
}

// ReadSparse reads the open regular file f of size bytes into a node: the
// data regions the file system reports (SEEK_DATA, SEEK_HOLE) in chunks,
// keeping only chunks that hold a non-zero byte, so a sparse file costs
// memory only for its data. A file found shorter than size changed while
// it was read: where a read shows it, that is an error naming the byte;
// at the end, a *ShrankError.
func ReadSparse(f *os.File, size int64) (*Node, error) {
	return ReadSparseContext(context.Background(), f, size)
}

// ReadSparseContext is ReadSparse stopping once ctx is done, before the
// next chunk, with ctx.Err().
func ReadSparseContext(ctx context.Context, f *os.File, size int64) (*Node, error) {
	return readSparse(ctx, f, size, nil)
}

// readSparse is ReadSparseContext telling take (when not nil) what each
// chunk it keeps adds, and stopping at its error.
func readSparse(ctx context.Context, f *os.File, size int64, take func(usage) error) (*Node, error) {
	n := NewFile(0, nil)
	n.Size = size
	fd := int(f.Fd())
	buf := make([]byte, min(ReadChunk, size))
	var room roomCounter
	for off := int64(0); off < size; {
		data, err := seekData(fd, off) // sparse_seek.go, sparse_noseek.go
		if err == unix.ENXIO {
			// No data from off on: a hole up to size, or the end of a
			// file that shrank, which the check below tells.
			break
		}
		switch {
		case err == unix.EINVAL || err == unix.EOPNOTSUPP:
			data = off // no hole reporting: read it all
		case err != nil:
			return nil, fmt.Errorf("at byte %d: seeking data: %w", off, err)
		}
		hole, err := seekHole(fd, data)
		if err != nil || hole > size {
			hole = size
		}
		for ; data < hole; data += int64(ReadChunk) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			chunk := buf[:min(int64(ReadChunk), hole-data)]
			if k, err := f.ReadAt(chunk, data); k < len(chunk) {
				if err == io.EOF {
					return nil, fmt.Errorf("it ended at byte %d, not at %d as when it was opened: %w", data+int64(k), size, io.ErrUnexpectedEOF)
				}
				return nil, fmt.Errorf("at byte %d: %w", data+int64(k), err)
			}
			if IsZero(chunk) {
				continue
			}
			if last := len(n.Extents) - 1; last >= 0 && n.Extents[last].Off+int64(len(n.Extents[last].Data)) == data {
				n.Extents[last].Data = append(n.Extents[last].Data, chunk...)
			} else {
				n.Extents = append(n.Extents, Extent{Off: data, Data: append([]byte(nil), chunk...)})
			}
			if take != nil {
				if err := take(usage{int64(len(chunk)), room.add(data, chunk)}); err != nil {
					return nil, err
				}
			}
		}
		off = max(hole, off+1)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("fstat: %w", err)
	}
	if st.Size < size {
		return nil, &ShrankError{Was: size, Now: st.Size}
	}
	n.room = room.room
	return n, nil
}
