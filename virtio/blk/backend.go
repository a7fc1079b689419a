package blk

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Backend stores the disk's bytes. Offsets passed to it are always inside
// the size the disk was made with.
type Backend interface {
	io.ReaderAt
	io.WriterAt
	// Sync makes every completed write durable (fdatasync for a file).
	Sync() error
}

// VectorBackend is a Backend that can move a scatter-gather list in one
// call (preadv/pwritev for a file). The device uses it when present, so a
// request of many guest pages costs one system call.
type VectorBackend interface {
	Backend
	// ReadVAt fills bufs, in order, from the bytes at off on, and
	// returns how many it read. As io.ReaderAt's, it returns an error
	// whenever it read fewer than all of bufs hold (io.ErrUnexpectedEOF
	// where the image ends early): a short read is never a success.
	ReadVAt(bufs [][]byte, off int64) (int, error)
	// WriteVAt writes bufs, in order, at off on, and returns how many
	// bytes it wrote; an error whenever it wrote fewer than all of them.
	WriteVAt(bufs [][]byte, off int64) (int, error)
}

// fileBackend is a raw image file. It is used by one worker goroutine at a
// time (the transport serialises requests), so it can keep a scratch
// iovec array and spare the allocation x/sys's Preadv makes per call.
type fileBackend struct {
	f   *os.File
	fd  int
	iov []unix.Iovec
}

func newFileBackend(f *os.File) *fileBackend { return &fileBackend{f: f, fd: int(f.Fd())} }

// ReadAt is pread.
func (b *fileBackend) ReadAt(p []byte, off int64) (int, error) { return b.f.ReadAt(p, off) }

// WriteAt is pwrite.
func (b *fileBackend) WriteAt(p []byte, off int64) (int, error) { return b.f.WriteAt(p, off) }

// Sync flushes the image's data (and the metadata needed to read it back)
// to stable storage.
func (b *fileBackend) Sync() error {
	for {
		err := unix.Fdatasync(b.fd)
		if !errors.Is(err, unix.EINTR) {
			if err != nil {
				return fmt.Errorf("fdatasync %s: %w", b.f.Name(), err)
			}
			return nil
		}
	}
}

// fileSize is the image file's size now (fstat): serve compares it with
// the size the disk was opened with before each write.
func (b *fileBackend) fileSize() (int64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(b.fd, &st); err != nil {
		return 0, err
	}
	return st.Size, nil
}

// ReadVAt is preadv, repeated until bufs are full.
func (b *fileBackend) ReadVAt(bufs [][]byte, off int64) (int, error) {
	return vectorIO(bufs, off, func(v [][]byte, o int64) (int, error) { return b.sys(unix.SYS_PREADV, v, o) })
}

// WriteVAt is pwritev, repeated until bufs are written.
func (b *fileBackend) WriteVAt(bufs [][]byte, off int64) (int, error) {
	return vectorIO(bufs, off, func(v [][]byte, o int64) (int, error) { return b.sys(unix.SYS_PWRITEV, v, o) })
}

// maxIov is Linux's IOV_MAX; longer lists are moved in several calls.
const maxIov = 1024

// sys issues preadv or pwritev over (at most maxIov of) bufs, which
// vectorIO has stripped of empty leading buffers.
func (b *fileBackend) sys(trap uintptr, bufs [][]byte, off int64) (int, error) {
	b.iov = b.iov[:0]
	for _, p := range bufs {
		if len(b.iov) == maxIov {
			break
		}
		if len(p) == 0 {
			continue
		}
		v := unix.Iovec{Base: &p[0]}
		v.SetLen(len(p))
		b.iov = append(b.iov, v)
	}
	// The offset is passed as (low, high) words; on 64-bit hosts the
	// kernel takes all of it from low.
	var hi uintptr
	if bits.UintSize == 32 {
		hi = uintptr(uint64(off) >> 32)
	}
	n, _, errno := unix.Syscall6(trap, uintptr(b.fd), uintptr(unsafe.Pointer(&b.iov[0])), uintptr(len(b.iov)),
		uintptr(off), hi, 0)
	if errno != 0 {
		return int(n), errno
	}
	return int(n), nil
}

// vectorIO repeats op until bufs are done, retrying EINTR and continuing
// after short transfers. A transfer of 0 bytes is reported as
// io.ErrUnexpectedEOF (the image shrank under us).
func vectorIO(bufs [][]byte, off int64, op func([][]byte, int64) (int, error)) (int, error) {
	total := 0
	bufs = advance(bufs, 0)
	for len(bufs) > 0 {
		n, err := op(bufs, off)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return total, err
		}
		if n == 0 {
			return total, io.ErrUnexpectedEOF
		}
		total += n
		off += int64(n)
		bufs = advance(bufs, n)
	}
	return total, nil
}

// advance drops the first n bytes of a scatter-gather list.
func advance(bufs [][]byte, n int) [][]byte {
	for n > 0 && len(bufs) > 0 {
		if n < len(bufs[0]) {
			bufs[0] = bufs[0][n:]
			return bufs
		}
		n -= len(bufs[0])
		bufs = bufs[1:]
	}
	for len(bufs) > 0 && len(bufs[0]) == 0 {
		bufs = bufs[1:]
	}
	return bufs
}

// readV reads into bufs at off, in one call if b can.
func readV(b Backend, bufs [][]byte, off int64) error {
	if v, ok := b.(VectorBackend); ok {
		_, err := v.ReadVAt(bufs, off)
		return err
	}
	return eachAt(b.ReadAt, bufs, off)
}

// writeV writes bufs at off, in one call if b can.
func writeV(b Backend, bufs [][]byte, off int64) error {
	if v, ok := b.(VectorBackend); ok {
		_, err := v.WriteVAt(bufs, off)
		return err
	}
	return eachAt(b.WriteAt, bufs, off)
}

// eachAt moves bufs one by one from off on, with ReadAt or WriteAt.
func eachAt(op func([]byte, int64) (int, error), bufs [][]byte, off int64) error {
	for _, p := range bufs {
		if _, err := op(p, off); err != nil {
			return err
		}
		off += int64(len(p))
	}
	return nil
}
