// Package regfile opens, reads and maps input files that must be regular
// files (kernels, boot modules, snapshots) without blocking on anything
// else: opening a FIFO for reading waits for a writer, and reading
// /dev/zero or a huge file whole fills memory before any check of its
// content. A refused file is said with its kind ("a FIFO", "a character
// device").
package regfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/internal/atomicfile"
	"github.com/smolvmm/smolvmm/internal/filekind"
)

// ErrNotRegular is matched (errors.Is) by the error for a path that is not
// a regular file.
var ErrNotRegular = atomicfile.ErrNotRegular

// ErrTooLarge is matched (errors.Is) by ReadFile's and Map's error for a file larger
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
// is read, or whose size said less than it holds (procfs says 0), is cut
// at limit+1 bytes and refused too.
func ReadFile(path string, limit int64) ([]byte, error) {
	f, _, err := openWithin(path, limit)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAll(f, path, limit)
}

// openWithin is Open, refusing a file whose size says more than limit
// bytes before anything of it is read.
func openWithin(path string, limit int64) (*os.File, int64, error) {
	f, size, err := Open(path)
	if err != nil {
		return nil, 0, err
	}
	if size > limit {
		f.Close()
		return nil, 0, &TooLargeError{Path: path, Size: size, Limit: limit}
	}
	return f, size, nil
}

// readAll reads f, the file at path, to its end, refusing it past limit
// bytes: its size said nothing of that, or it grew. The bytes of an empty
// file are an empty, non-nil slice.
func readAll(f *os.File, path string, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, &TooLargeError{Path: path, Size: -1, Limit: limit}
	}
	if data == nil {
		data = []byte{}
	}
	return data, nil
}

// Map maps the regular file at path whole, read-only and private,
// refusing it before mapping when it is larger than limit bytes (a
// *TooLargeError). Its bytes are then the page cache's, read as they are
// touched, counted once however many processes map the file, and gone
// from the process at Unmap: a file copied once (a kernel loaded into
// guest memory) costs no memory of the process's own, as a buffer read
// whole would until a collection. The mapping does not follow the file:
// it keeps the size it had when opened, and a byte the file no longer has
// (cut shorter since) faults when read; read it under Guard. An empty file
// is an empty, non-nil slice.
//
// A file that cannot be mapped is read whole instead, as ReadFile reads
// it (to its end, refused past limit bytes), into anonymous memory mapped
// for it, which Unmap releases as it does a file's mapping: one its file
// system will not map (mmap's ENODEV: sysfs, debugfs, configfs, FUSE
// without mmap; EINVAL or EACCES from a driver or a security module that
// refuses it a mapping, not its read), and one whose size says 0, which a
// kernel's pseudo-files (procfs) say whatever they hold, read up to
// PseudoFileLimit bytes only. (Read into the heap, its pages went back to
// the kernel only at a collection, and not all of them even then.)
func Map(path string, limit int64) ([]byte, error) {
	f, size, err := openWithin(path, limit)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return MapFile(f, size, limit)
}

// MapFile maps the first size bytes of f (opened by Open, which gave
// size) as Map does, or reads f whole, up to limit bytes, where Map would;
// f may be closed once it returns.
func MapFile(f *os.File, size, limit int64) ([]byte, error) {
	if size == 0 {
		// A kernel's pseudo-file (procfs) says 0 whatever it holds,
		// and some hold without end: read no more than such files
		// hold, not up to the limit (a module's is guest RAM).
		return readAnon(f, f.Name(), min(limit, PseudoFileLimit))
	}
	if size < 0 || uint64(size) > uint64(^uint(0)>>1) {
		return nil, fmt.Errorf("%s: cannot map %d bytes", f.Name(), size)
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_PRIVATE)
	if errors.Is(err, unix.ENODEV) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EACCES) {
		// Not ENOMEM or the like: the process lacks the room a
		// read would need as well.
		return readAnon(f, f.Name(), limit)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: mmap: %w", f.Name(), err)
	}
	keep(data, mapping{file: data})
	return data, nil
}

// mapping is what Unmap releases: a file's mapping (unix.Mmap's, which
// unix.Munmap releases), or anonymous memory a file was read into.
type mapping struct {
	file []byte
	anon unsafe.Pointer
	size uintptr
}

// keep records m, whose bytes start data's, as one Unmap releases.
func keep(data []byte, m mapping) {
	mappings.Lock()
	mappings.m[unsafe.SliceData(data)] = m
	mappings.Unlock()
}

// readAnon is readAll into anonymous memory mapped for the bytes, the
// pages past them given back: Unmap releases it. Address space is
// reserved for limit bytes and a page (no memory: the pages are touched
// only as read, and on Linux not even committed); where there is not
// that much of it (a 32-bit process, a limit of GiBs), the bytes are
// read into the heap.
func readAnon(f *os.File, path string, limit int64) ([]byte, error) {
	page := int64(os.Getpagesize())
	reserve := (limit + 1 + page - 1) / page * page
	if reserve <= 0 || uint64(reserve) > uint64(^uint(0)>>1) {
		return readAll(f, path, limit)
	}
	// MmapPtr, not Mmap: the pages past the bytes are given back, which
	// unix.Munmap refuses for part of its mapping.
	p, err := unix.MmapPtr(-1, 0, nil, uintptr(reserve), unix.PROT_READ|unix.PROT_WRITE, anonFlags)
	if err != nil {
		return readAll(f, path, limit)
	}
	buf := unsafe.Slice((*byte)(p), reserve)
	n, err := io.ReadFull(f, buf[:limit+1])
	if err != io.ErrUnexpectedEOF && err != io.EOF {
		unix.MunmapPtr(p, uintptr(reserve))
		if err == nil {
			return nil, &TooLargeError{Path: path, Size: -1, Limit: limit}
		}
		return nil, err
	}
	if n == 0 {
		unix.MunmapPtr(p, uintptr(reserve))
		return []byte{}, nil
	}
	used := (int64(n) + page - 1) / page * page
	if used < reserve {
		if err := unix.MunmapPtr(unsafe.Add(p, used), uintptr(reserve-used)); err != nil {
			unix.MunmapPtr(p, uintptr(reserve))
			return nil, fmt.Errorf("%s: munmap: %w", path, err)
		}
	}
	data := buf[:n:n]
	keep(data, mapping{anon: p, size: uintptr(used)})
	return data, nil
}

// PseudoFileLimit is the most Map and MapFile read of a file whose size
// says 0, as a kernel's pseudo-files (procfs) say whatever they hold.
const PseudoFileLimit = 16 << 20

// mappings are MapFile's mappings not yet released, of a file or of the
// memory it read one into, by their first byte: Unmap releases only
// these, never bytes in the heap.
var mappings = struct {
	sync.Mutex
	m map[*byte]mapping
}{m: map[*byte]mapping{}}

// Mapped reports whether data is a mapping Map or MapFile made that Unmap
// has not released, of the file or of the memory they read it into: false
// for bytes read into the heap (ReadFile's, or Map's where the process had
// no address space to reserve), kept alive by whoever holds them.
func Mapped(data []byte) bool {
	if len(data) == 0 {
		return false
	}
	mappings.Lock()
	defer mappings.Unlock()
	_, ok := mappings.m[unsafe.SliceData(data)]
	return ok
}

// Unmap releases what Map or MapFile returned; data must not be used
// after, nor given to Unmap again: its address may belong to a later
// mapping by then, which it would release. Only a mapping is released
// (Mapped): bytes in the heap (an empty file's, ReadFile's), or any that
// Map did not return, are nothing to release, and Unmap returns nil.
func Unmap(data []byte) error {
	if len(data) == 0 {
		return nil
	}
	mappings.Lock()
	m, ok := mappings.m[unsafe.SliceData(data)]
	delete(mappings.m, unsafe.SliceData(data))
	mappings.Unlock()
	if !ok {
		return nil
	}
	if m.anon != nil {
		return unix.MunmapPtr(m.anon, m.size)
	}
	return unix.Munmap(m.file)
}

// ErrCut is matched (errors.Is) by Guard's error for a mapped file whose
// bytes could not be read: it was cut shorter while mapped.
var ErrCut = errors.New("file cut shorter while read")

// Region is bytes Guard watches: a file's mapping (Map), or any bytes,
// which never fault.
type Region struct {
	// Name is what the error calls it: the file's path.
	Name string
	// Data is the bytes watched.
	Data []byte
}

// CutError is Guard's error for a fault reading Regions[Index]: its file
// has no byte at Offset any more. It matches ErrCut.
type CutError struct {
	// Name is the region's Name.
	Name string
	// Index is the region's index among those given to Guard.
	Index int
	// Offset is the first byte that could not be read, from the
	// region's start.
	Offset int64
}

// Error names the file and the offset.
func (e *CutError) Error() string {
	return fmt.Sprintf("%s: no byte at offset %d: the file was cut shorter while read", e.Name, e.Offset)
}

// Is makes errors.Is(err, ErrCut) true.
func (e *CutError) Is(target error) bool { return target == ErrCut }

// Guard runs fn, which reads regions, with the fault of a read past the
// end of a file cut shorter while mapped (SIGBUS, fatal to the process
// otherwise) made a *CutError; other faults and panics go on. Only the
// calling goroutine's reads are guarded: fn must read them on it.
func Guard(fn func() error, regions ...Region) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		var fault interface{ Addr() uintptr }
		if re, ok := r.(error); ok && errors.As(re, &fault) {
			if cut := regionOf(fault.Addr(), regions); cut != nil {
				err = cut
				return
			}
		}
		panic(r)
	}()
	return fn()
}

// regionOf is the CutError for a fault at addr in one of regions (or in
// the rest of its last page, which the mapping covers too), nil when addr
// is in none.
func regionOf(addr uintptr, regions []Region) *CutError {
	page := uintptr(os.Getpagesize())
	for i, r := range regions {
		if len(r.Data) == 0 {
			continue
		}
		base := uintptr(unsafe.Pointer(unsafe.SliceData(r.Data)))
		end := (uintptr(len(r.Data)) + page - 1) &^ (page - 1)
		if addr >= base && addr-base < end {
			return &CutError{Name: r.Name, Index: i, Offset: int64(addr - base)}
		}
	}
	return nil
}

// TooLargeError is ReadFile's and Map's error for a file larger than its limit; it
// matches ErrTooLarge (errors.Is).
type TooLargeError struct {
	Path  string // the file as given
	Size  int64  // the file's size, or -1 when more than Limit bytes were read all the same (it grew, or it says 0 as procfs files do)
	Limit int64
}

// Error gives the sizes as a reader counts them, in MiB (as memory sizes
// are given), not in bytes to be divided by hand.
func (e *TooLargeError) Error() string {
	if e.Size < 0 {
		return fmt.Sprintf("%s read as more than the %s allowed, more than its size said", e.Path, Size(e.Limit))
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
