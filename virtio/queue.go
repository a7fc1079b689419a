package virtio

import (
	"fmt"

	"github.com/smolvmm/smolvmm/guestmem"
)

// PageSize is the legacy transport's queue alignment and PFN unit.
const PageSize = 4096

// MaxQueueSize is the largest queue the split ring format allows.
const MaxQueueSize = 32768

// Ring flags.
const (
	availNoInterrupt = 1 // VRING_AVAIL_F_NO_INTERRUPT
	descSize         = 16
)

// Queue is one split virtqueue in the legacy layout. Its size is fixed when
// it is made (a legacy driver cannot change it, and NetBSD panics if it
// changes across resets); the driver places it by writing a PFN.
//
// A Queue is not safe for concurrent use: the transport serialises register
// writes and the worker that serves requests.
type Queue struct {
	mem  *guestmem.Memory
	size uint16

	pfn              uint32
	desc, avail, use uint64 // guest addresses; valid when pfn != 0

	lastAvail uint16 // next available entry to consume
	usedIdx   uint16 // next used entry to produce
	pushed    bool   // used entries published since the last NeedsInterrupt

	// indirect: the device offered VIRTIO_F_INDIRECT_DESC and the driver
	// accepted it (SetFeatures); without it an indirect descriptor is a
	// ring violation.
	indirect bool

	// descs backs the Descs of the chain Pop returns, so that a request
	// costs no allocation.
	descs []Desc
}

// NewQueue returns a queue of size entries over mem. size must be a power of
// two from 1 to 32768.
func NewQueue(mem *guestmem.Memory, size uint16) (*Queue, error) {
	if err := checkSize(size); err != nil {
		return nil, err
	}
	// 20 holds what ld(4) sends: header, up to 17 pages of a 64 KiB
	// transfer, status.
	return &Queue{mem: mem, size: size, descs: make([]Desc, 0, 20)}, nil
}

func checkSize(size uint16) error {
	if size == 0 || size&(size-1) != 0 || size > MaxQueueSize {
		return fmt.Errorf("queue size %d: must be a power of two from 1 to %d", size, MaxQueueSize)
	}
	return nil
}

// SetFeatures tells the queue the features in force: those the device
// offered and the driver accepted (the transport calls it when the driver
// writes its features, and with 0 on a device reset). Pop follows indirect
// descriptors only when FeatureIndirectDesc is among them; a new queue has
// none. Placing the rings (SetPFN) or Reset keeps them: a legacy driver may
// write its features before or after the PFNs.
func (q *Queue) SetFeatures(f uint32) { q.indirect = f&Bit(FeatureIndirectDesc) != 0 }

// Size is the number of descriptors (fixed for the queue's life).
func (q *Queue) Size() uint16 { return q.size }

// PFN is the page frame number the driver wrote (0: not set up).
func (q *Queue) PFN() uint32 { return q.pfn }

// Ready reports whether the driver has placed the rings.
func (q *Queue) Ready() bool { return q.pfn != 0 }

// RingBytes is the number of bytes the legacy layout of a size-entry queue
// occupies from its PFN: descriptor table and available ring, padded to a
// page, then the used ring.
func RingBytes(size uint16) uint64 {
	return usedOffset(size) + 4 + 8*uint64(size) + 2
}

// usedOffset is where the used ring starts: after the descriptor table
// and the available ring, at the next page boundary.
func usedOffset(size uint16) uint64 {
	s := uint64(size)
	availEnd := descSize*s + 4 + 2*s + 2
	return (availEnd + PageSize - 1) &^ (PageSize - 1)
}

// SetPFN places the rings at pfn*4096 in the legacy layout: descriptor
// table, available ring right after it, used ring at the next page
// boundary. PFN 0 takes the queue down. The whole area must lie in guest
// memory; otherwise the queue stays down and the error wraps ErrRing.
// Indices restart from 0.
func (q *Queue) SetPFN(pfn uint32) error {
	q.Reset()
	if pfn == 0 {
		return nil
	}
	if err := q.checkPFN(pfn); err != nil {
		return err
	}
	base := uint64(pfn) * PageSize
	q.pfn = pfn
	q.desc = base
	q.avail = base + descSize*uint64(q.size)
	q.use = base + usedOffset(q.size)
	return nil
}

// checkPFN refuses a PFN (not 0) whose rings do not lie wholly in guest
// memory, with an error wrapping ErrRing.
func (q *Queue) checkPFN(pfn uint32) error {
	base := uint64(pfn) * PageSize
	if err := q.mem.Check(base, RingBytes(q.size)); err != nil {
		return fmt.Errorf("%w: queue PFN %#x: rings of %d entries at %#x: %w", ErrRing, pfn, q.size, base, err)
	}
	return nil
}

// Reset takes the queue down and clears its indices (device reset).
func (q *Queue) Reset() {
	q.pfn, q.desc, q.avail, q.use = 0, 0, 0, 0
	q.lastAvail, q.usedIdx, q.pushed = 0, 0, false
}

// Pop takes the next available chain. ok is false when the ring is empty.
// The chain's Descs are valid until the next Pop of the queue, which reuses
// their memory: finish with a chain before taking another. A non-nil error wraps ErrRing (the ring is corrupt; the caller should stop
// using the queue) or ErrNotReady.
func (q *Queue) Pop() (c Chain, ok bool, err error) {
	if q.pfn == 0 {
		return Chain{}, false, ErrNotReady
	}
	w, err := q.mem.LoadAcquire32(q.avail)
	if err != nil {
		return Chain{}, false, fmt.Errorf("%w: avail ring header at %#x: %w", ErrRing, q.avail, err)
	}
	availIdx := uint16(w >> 16)
	pending := availIdx - q.lastAvail
	if pending == 0 {
		return Chain{}, false, nil
	}
	if pending > q.size {
		return Chain{}, false, fmt.Errorf("%w: avail idx %d is %d entries ahead of the device's %d (queue size %d)",
			ErrRing, availIdx, pending, q.lastAvail, q.size)
	}
	slot := q.avail + 4 + 2*uint64(q.lastAvail%q.size)
	head, err := q.mem.Read16(slot)
	if err != nil {
		return Chain{}, false, fmt.Errorf("%w: avail ring entry at %#x: %w", ErrRing, slot, err)
	}
	c, err = q.walk(head)
	if err != nil {
		return Chain{}, false, err
	}
	q.lastAvail++
	return c, true, nil
}

// Push returns chain head to the driver with written bytes in its
// device-writable buffers: the used element is written first, then used.idx
// is published with a release store so the driver never sees the index
// before the element.
func (q *Queue) Push(head uint16, written uint32) error {
	if q.pfn == 0 {
		return ErrNotReady
	}
	if head >= q.size {
		return fmt.Errorf("push: head %d >= queue size %d", head, q.size)
	}
	// The element is id (u32) then len (u32), little-endian: one store.
	elem := q.use + 4 + 8*uint64(q.usedIdx%q.size)
	if err := q.mem.Write64(elem, uint64(head)|uint64(written)<<32); err != nil {
		return fmt.Errorf("%w: used element at %#x: %w", ErrRing, elem, err)
	}
	q.usedIdx++
	// used.flags (low half) stays 0: the device never asks the driver to
	// skip notifications.
	if err := q.mem.StoreRelease32(q.use, uint32(q.usedIdx)<<16); err != nil {
		return fmt.Errorf("%w: used ring header at %#x: %w", ErrRing, q.use, err)
	}
	q.pushed = true
	return nil
}

// NeedsInterrupt reports whether used entries were published since the last
// call and the driver has not set VRING_AVAIL_F_NO_INTERRUPT. It clears the
// "published" mark either way. EVENT_IDX is never offered, so the flag is
// the only suppression there is.
func (q *Queue) NeedsInterrupt() bool {
	if !q.pushed || q.pfn == 0 {
		return false
	}
	q.pushed = false
	// The release store of used.idx is a full barrier on x86 (XCHG), so
	// this load cannot be ordered before it: a driver that clears the flag
	// and then checks used.idx is never left without an interrupt.
	w, err := q.mem.LoadAcquire32(q.avail)
	if err != nil {
		return true
	}
	return w&availNoInterrupt == 0
}
