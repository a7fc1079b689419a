// Package guestmem gives bounds-checked access to a guest's physical memory.
//
// Every access names a guest physical address (GPA) and a length and is
// checked against the memory's size and its holes before it touches a byte,
// so a hostile guest address can produce an error but never a host fault,
// nor reach bytes the guest does not see as RAM. Once its owner has closed
// it (Close), before unmapping it, every access is an error too. Nothing overlays
// Go structs on guest memory: multi-byte values are read and written
// explicitly in little-endian order.
package guestmem

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"
)

// ErrOutOfRange is wrapped by every error about an access outside memory.
var ErrOutOfRange = errors.New("outside guest memory")

// ErrClosed is wrapped by every error about an access to a Memory after
// Close: its mapping may be gone.
var ErrClosed = errors.New("guest memory is closed")

// Memory is a guest's RAM starting at guest physical address 0, less its
// holes. The real machine backs it with an mmap; tests use a plain byte
// slice.
type Memory struct {
	b     []byte
	holes []Range
	// closed is set by Close before the owner unmaps b. An atomic load
	// per access (a plain load on x86) rather than a lock: the owner
	// stops its users before it closes (see Close).
	closed atomic.Bool
}

// Range is the guest physical addresses [Start, End).
type Range struct {
	Start, End uint64
}

// New wraps b (usually an mmap of guest RAM) as guest memory. holes are
// ranges of b that the guest does not see as RAM, such as a PC's VGA window
// at 0xA0000-0xBFFFF, which the VMM does not give KVM: an access that
// touches one is refused like one past the end, so a device can neither
// take data from nor leave data where the guest never reads. Bytes still
// covers them, for whoever copies the whole mapping.
func New(b []byte, holes ...Range) *Memory {
	return &Memory{b: b, holes: append([]Range(nil), holes...)}
}

// Close ends access to the memory: every access begun after it fails
// with an error wrapping ErrClosed, and Bytes returns nil. It does not
// free the bytes New was given: their owner unmaps them once Close has
// returned. Close does not wait for accesses under way, nor reach
// slices Slice or Bytes returned before: whoever unmaps must first stop
// every goroutine that may be in one (a vmm.Machine stops its vCPU and
// joins its devices), or that access may fault. Close may be called more
// than once, from any goroutine.
func (m *Memory) Close() { m.closed.Store(true) }

// Size is the number of bytes of guest RAM (the same after Close).
func (m *Memory) Size() uint64 { return uint64(len(m.b)) }

// Bytes returns the whole of guest RAM, holes included, for loaders that
// fill it before the guest runs and for snapshots that copy it; nil
// after Close.
func (m *Memory) Bytes() []byte {
	if m.closed.Load() {
		return nil
	}
	return m.b
}

// Check reports whether [gpa, gpa+n) lies inside memory, without overflow,
// and touches none of its holes, and that the memory is not closed.
// Every other access checks through it.
func (m *Memory) Check(gpa, n uint64) error {
	if m.closed.Load() {
		return fmt.Errorf("guest range [%#x, +%#x): %w", gpa, n, ErrClosed)
	}
	end := gpa + n
	if end < gpa || end > uint64(len(m.b)) {
		return fmt.Errorf("guest range [%#x, +%#x): %w (size %#x)", gpa, n, ErrOutOfRange, len(m.b))
	}
	for _, h := range m.holes {
		// An empty range touches a hole only strictly inside it.
		if gpa < h.End && h.Start < end {
			return fmt.Errorf("guest range [%#x, +%#x): %w (no RAM at [%#x, %#x))", gpa, n, ErrOutOfRange, h.Start, h.End)
		}
	}
	return nil
}

// Slice returns the n bytes at gpa. The slice aliases guest memory: the guest
// may change it at any time, so callers copy what they validate.
func (m *Memory) Slice(gpa, n uint64) ([]byte, error) {
	if err := m.Check(gpa, n); err != nil {
		return nil, err
	}
	return m.b[gpa : gpa+n : gpa+n], nil
}

// ReadAt copies len(p) bytes from guest address off into p.
func (m *Memory) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("guest address %d: %w", off, ErrOutOfRange)
	}
	s, err := m.Slice(uint64(off), uint64(len(p)))
	if err != nil {
		return 0, err
	}
	return copy(p, s), nil
}

// WriteAt copies p into guest memory at address off.
func (m *Memory) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("guest address %d: %w", off, ErrOutOfRange)
	}
	s, err := m.Slice(uint64(off), uint64(len(p)))
	if err != nil {
		return 0, err
	}
	return copy(s, p), nil
}

// Read8 reads one byte at gpa.
func (m *Memory) Read8(gpa uint64) (uint8, error) {
	s, err := m.Slice(gpa, 1)
	if err != nil {
		return 0, err
	}
	return s[0], nil
}

// Read16 reads a little-endian 16-bit value at gpa.
func (m *Memory) Read16(gpa uint64) (uint16, error) {
	s, err := m.Slice(gpa, 2)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(s), nil
}

// Read32 reads a little-endian 32-bit value at gpa.
func (m *Memory) Read32(gpa uint64) (uint32, error) {
	s, err := m.Slice(gpa, 4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(s), nil
}

// Read64 reads a little-endian 64-bit value at gpa.
func (m *Memory) Read64(gpa uint64) (uint64, error) {
	s, err := m.Slice(gpa, 8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(s), nil
}

// Write8 writes one byte at gpa.
func (m *Memory) Write8(gpa uint64, v uint8) error {
	s, err := m.Slice(gpa, 1)
	if err != nil {
		return err
	}
	s[0] = v
	return nil
}

// Write16 writes a little-endian 16-bit value at gpa.
func (m *Memory) Write16(gpa uint64, v uint16) error {
	s, err := m.Slice(gpa, 2)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint16(s, v)
	return nil
}

// Write32 writes a little-endian 32-bit value at gpa.
func (m *Memory) Write32(gpa uint64, v uint32) error {
	s, err := m.Slice(gpa, 4)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(s, v)
	return nil
}

// Write64 writes a little-endian 64-bit value at gpa.
func (m *Memory) Write64(gpa uint64, v uint64) error {
	s, err := m.Slice(gpa, 8)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint64(s, v)
	return nil
}

// LoadAcquire32 reads the aligned 32-bit word at gpa with acquire ordering:
// no later read of guest memory is performed before it. Virtqueue code uses
// it for the available ring's flags and index, which the guest publishes
// after writing the entries they cover. Only x86 hosts (little-endian) are
// supported, so the atomic load yields the little-endian value.
func (m *Memory) LoadAcquire32(gpa uint64) (uint32, error) {
	if gpa%4 != 0 {
		return 0, fmt.Errorf("guest address %#x: unaligned 32-bit atomic access", gpa)
	}
	s, err := m.Slice(gpa, 4)
	if err != nil {
		return 0, err
	}
	return atomic.LoadUint32((*uint32)(unsafe.Pointer(&s[0]))), nil
}

// StoreRelease32 writes the aligned 32-bit word at gpa with release
// ordering: every earlier write to guest memory is visible before it.
// Virtqueue code uses it to publish the used ring's index after the used
// elements it covers.
func (m *Memory) StoreRelease32(gpa uint64, v uint32) error {
	if gpa%4 != 0 {
		return fmt.Errorf("guest address %#x: unaligned 32-bit atomic access", gpa)
	}
	s, err := m.Slice(gpa, 4)
	if err != nil {
		return err
	}
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&s[0])), v)
	return nil
}
