package blk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/virtio"
)

// Request types.
const (
	TypeIn    = 0
	TypeOut   = 1
	TypeFlush = 4
	// TypeFlushOut is the legacy spelling of a flush some older drivers
	// send; it is served as TypeFlush.
	TypeFlushOut = 5
	TypeGetID    = 8
	// TypeBarrier is the legacy BARRIER flag, ORed into another type
	// (Linux's virtio_blk up to 2.6.36 sets it on barrier requests even
	// without F_BARRIER). It asks that the request be ordered after the
	// earlier ones and before the later ones; the disk serves the type
	// without it, as requests complete in order anyway (see serve).
	TypeBarrier = 0x80000000
)

// Status values written in a request's last byte.
const (
	StatusOK     = 0
	StatusIOErr  = 1
	StatusUnsupp = 2
)

// HeaderSize is the size of the request header (type, reserved, sector).
const HeaderSize = 16

// Handle serves one request chain and returns the number of bytes it wrote
// into the chain's writable buffers (data plus the status byte), the value
// for the used ring. Every failure of the request is answered in the
// status byte; a chain without a writable byte gets 0 and nothing is
// done. A fault on guest memory is not the request's: the kernel could
// not reach a data buffer (EFAULT: a page cut from the file a restored
// guest's memory maps). Handle then returns an error wrapping
// virtio.ErrMemoryFault, the status byte untouched, for Process to
// return: the transport breaks the device and tells its fault handler, as
// for the SIGBUS a copy to or from such a page gets.
func (d *Disk) Handle(c *virtio.Chain) (uint32, error) {
	var err error
	d.rd, err = c.Segments(d.rd[:0], false)
	if err != nil {
		return 0, nil
	}
	d.wr, err = c.Segments(d.wr[:0], true)
	if err != nil || len(d.wr) == 0 {
		return 0, nil
	}
	// The status is the last writable byte; the writable data is what
	// comes before it.
	last := d.wr[len(d.wr)-1]
	status := last[len(last)-1:]
	d.wr[len(d.wr)-1] = last[:len(last)-1]
	st, n, err := d.serve(d.rd, d.wr)
	if err != nil {
		return 0, err
	}
	status[0] = st
	return n + 1, nil
}

// serve performs the request whose readable stream is rd (header, then OUT
// data) and whose writable data is wr, and returns its status and the data
// bytes written to wr, or a fault on guest memory (see Handle).
func (d *Disk) serve(rd, wr [][]byte) (status uint8, written uint32, fault error) {
	// Copy the header out of guest memory before looking at it.
	var hdr [HeaderSize]byte
	if gather(hdr[:], rd) < HeaderSize {
		return StatusIOErr, 0, nil
	}
	rd = advance(rd, HeaderSize)
	// BARRIER only orders the request among the others, and that order
	// holds already: Process serves one chain at a time on the worker
	// goroutine, each read, write or fdatasync returning before its
	// status is written and the next chain is taken, so every request is
	// complete before a later one starts. Durability is FLUSH's to give.
	typ := binary.LittleEndian.Uint32(hdr[0:]) &^ TypeBarrier
	sector := binary.LittleEndian.Uint64(hdr[8:])
	switch typ {
	case TypeIn:
		// Readable bytes after the header are data in the wrong
		// direction: the device cannot put what it reads there.
		if total(rd) != 0 {
			return StatusIOErr, 0, nil
		}
		n, ok := d.span(sector, wr)
		if !ok {
			return StatusIOErr, 0, nil
		}
		if err := readV(d.b, wr, int64(sector*SectorSize)); err != nil {
			return StatusIOErr, 0, d.failed("read", n, sector, err)
		}
		return StatusOK, uint32(n), nil
	case TypeOut:
		// Writable bytes besides the status are data in the wrong
		// direction: the device takes nothing from them to write.
		if d.ro || total(wr) != 0 {
			return StatusIOErr, 0, nil
		}
		n, ok := d.span(sector, rd)
		if !ok {
			return StatusIOErr, 0, nil
		}
		// A write past the end of an image shrunk under the disk
		// would succeed, growing the file again around a hole: what
		// was cut off would read back as zeros without a word. (A
		// truncate between this check and the write still can.)
		if err := d.shrunk(); err != nil {
			d.hostError("write", int64(sector*SectorSize), n, err)
			return StatusIOErr, 0, nil
		}
		if err := writeV(d.b, rd, int64(sector*SectorSize)); err != nil {
			return StatusIOErr, 0, d.failed("write", n, sector, err)
		}
		d.writes.Add(1)
		d.written.Add(n)
		return StatusOK, 0, nil
	case TypeFlush, TypeFlushOut:
		return d.flush(), 0, nil
	case TypeGetID:
		n := scatter(wr, d.serial[:])
		return StatusOK, uint32(n), nil
	}
	return StatusUnsupp, 0, nil
}

// flush syncs the image and answers a FLUSH. Linux reports a failed
// writeback once per open file: the fdatasync after a failed one succeeds,
// though the writes whose writeback failed never reached the disk (their
// pages count as clean, and read back stale once evicted). So the first
// failure is latched and every later flush answered IOERR too, until the
// image is opened again, as QEMU does. Later flushes still sync, so that
// later writes reach the disk when they can.
//
// A read-only disk's FLUSH is answered OK without a sync: nothing was
// written through it, so there is nothing to make durable, and an image
// on a file system without fsync (squashfs, iso9660: EINVAL) would
// otherwise latch a failure that refuses every snapshot.
func (d *Disk) flush() uint8 {
	if d.ro {
		return StatusOK
	}
	err := d.b.Sync()
	d.flushMu.Lock()
	first := d.flushErr == nil && err != nil
	if first {
		d.flushErr = err
	}
	latched := d.flushErr != nil
	d.flushMu.Unlock()
	if first {
		d.flushFailed(err)
	}
	if latched {
		return StatusIOErr
	}
	return StatusOK
}

// flushFailed warns, once, that the image's first flush failed with err
// and what follows for the guest. Later failures are not news: every
// flush fails from then on.
func (d *Disk) flushFailed(err error) {
	if d.warn == nil {
		return
	}
	var args []any
	if d.path != "" {
		args = append(args, "image", d.path)
	}
	args = append(args, "op", "flush", "err", err)
	d.warn("flush-latched", "virtio-blk: flushing the disk image failed on the host: writes the guest made before it may not be on the disk, so this flush and every later one get an I/O error until the image is opened again", args...)
}

// shrunkError is a write's refusal: the image file is now Size bytes,
// shorter than the Opened it had when the disk was opened. It is the
// kind of error (io.ErrUnexpectedEOF) a read past the new end meets, so
// both warn alike (errKind: eof).
type shrunkError struct{ Size, Opened int64 }

func (e shrunkError) Error() string {
	return fmt.Sprintf("the image file is %d bytes, shrunk from the %d it had when the disk was opened", e.Size, e.Opened)
}

func (e shrunkError) Unwrap() error { return io.ErrUnexpectedEOF }

// shrunk is a shrunkError when d's image file is now shorter than the
// disk's sectors, else nil: the bytes past the last whole sector, which
// the guest never sees, may go. A backend that is no file is never
// shrunk, and an fstat that fails leaves the write to report its own
// error.
func (d *Disk) shrunk() error {
	fb, ok := d.b.(*fileBackend)
	if !ok {
		return nil
	}
	size, err := fb.fileSize()
	if err != nil || uint64(size) >= d.sectors*SectorSize {
		return nil
	}
	return shrunkError{Size: size, Opened: d.size}
}

// failed is what serve returns for a read or write of n bytes at sector
// that failed with err: the fault on guest memory, or nil for an error of
// the image, which is logged (hostError) and answered IOERR.
func (d *Disk) failed(op string, n, sector uint64, err error) error {
	if f := guestFault(op, n, sector, err); f != nil {
		return f
	}
	d.hostError(op, int64(sector*SectorSize), n, err)
	return nil
}

// hostError warns, once per operation and kind of error, that the image
// failed op (a read or write) of n bytes at byte offset off: the guest
// sees only IOERR (NetBSD prints "ld0a: error writing fsbn ..."), and the
// cause, a full or failing host disk, is the host's to fix.
func (d *Disk) hostError(op string, off int64, n uint64, err error) {
	if d.warn == nil {
		return
	}
	var args []any
	if d.path != "" {
		args = append(args, "image", d.path)
	}
	args = append(args, "op", op, "offset", off, "bytes", n, "err", err)
	d.warn("host-io:"+op+":"+errKind(err), "virtio-blk: the disk image failed on the host; the guest's request gets an I/O error", args...)
}

// errKind names the kind of an image error for once-per-kind warnings:
// its errno, or eof (the image is shorter than the disk: shrunk since it
// was opened), or other.
func errKind(err error) string {
	var errno unix.Errno
	switch {
	case errors.As(err, &errno):
		if name := unix.ErrnoName(errno); name != "" {
			return name
		}
		return fmt.Sprintf("errno %d", int(errno))
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	}
	return "other"
}

// guestFault is the fault on guest memory a read or write of n bytes at
// sector met, when err is the kernel's EFAULT (a system call moving the
// data could not reach a guest buffer); nil for any other error, the
// image's, which the request's status answers.
func guestFault(op string, n, sector uint64, err error) error {
	if !errors.Is(err, unix.EFAULT) {
		return nil
	}
	return fmt.Errorf("virtio-blk: %s of %d bytes at sector %d: guest buffer: %w: %w", op, n, sector, virtio.ErrMemoryFault, err)
}

// span checks that the data of bufs is whole sectors that start at sector
// and end inside the disk, without overflow, and no more than SEG_MAX
// segments of SIZE_MAX hold, and returns its length.
func (d *Disk) span(sector uint64, bufs [][]byte) (uint64, bool) {
	n := total(bufs)
	if n%SectorSize != 0 || n > MaxRequest || sector > d.sectors || n/SectorSize > d.sectors-sector {
		return 0, false
	}
	return n, true
}

// total is the number of bytes in bufs.
func total(bufs [][]byte) uint64 {
	var n uint64
	for _, b := range bufs {
		n += uint64(len(b))
	}
	return n
}

// gather copies the start of bufs into dst and returns the bytes copied.
func gather(dst []byte, bufs [][]byte) int {
	n := 0
	for _, b := range bufs {
		if n == len(dst) {
			break
		}
		n += copy(dst[n:], b)
	}
	return n
}

// scatter copies src into the start of bufs and returns the bytes copied.
func scatter(bufs [][]byte, src []byte) int {
	n := 0
	for _, b := range bufs {
		if n == len(src) {
			break
		}
		n += copy(b, src[n:])
	}
	return n
}
