package virtiotest

import (
	"fmt"
	"time"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/virtio"
)

// Buf is one buffer to put in a chain.
type Buf struct {
	Addr  uint64 // its guest address
	Len   uint32 // its length in bytes
	Write bool   // device-writable
}

// Ring is the driver's view of one legacy split ring placed at PFN. It
// writes guest memory directly, as a guest would; it checks nothing, so
// tests can build any bad ring they like.
type Ring struct {
	Mem               *guestmem.Memory // the guest memory the ring is in
	Size              uint16           // the queue size, in descriptors
	PFN               uint32
	Desc, Avail, Used uint64 // the guest addresses of the three rings

	nextDesc uint16 // next descriptor to hand out (round robin)
	availIdx uint16
	usedSeen uint16
}

// NewRing lays out a ring of size entries at pfn*4096 in the legacy
// layout and zeroes it.
func NewRing(mem *guestmem.Memory, pfn uint32, size uint16) (*Ring, error) {
	base := uint64(pfn) * virtio.PageSize
	n := virtio.RingBytes(size)
	s, err := mem.Slice(base, n)
	if err != nil {
		return nil, fmt.Errorf("ring at pfn %#x: %w", pfn, err)
	}
	clear(s)
	used := base + n - 4 - 8*uint64(size) - 2
	return &Ring{Mem: mem, Size: size, PFN: pfn, Desc: base, Avail: base + 16*uint64(size), Used: used}, nil
}

// WriteDesc writes descriptor i of the table at table (Desc for the ring's
// own table, or an indirect table's address).
func (r *Ring) WriteDesc(table uint64, i uint16, addr uint64, length uint32, flags, next uint16) {
	at := table + 16*uint64(i)
	must(r.Mem.Write64(at, addr))
	must(r.Mem.Write32(at+8, length))
	must(r.Mem.Write16(at+12, flags))
	must(r.Mem.Write16(at+14, next))
}

// AddChain writes bufs as a direct chain in the next free descriptors and
// returns its head. It does not publish it.
func (r *Ring) AddChain(bufs []Buf) uint16 {
	head := r.nextDesc
	for i, b := range bufs {
		idx := r.nextDesc
		r.nextDesc = (r.nextDesc + 1) % r.Size
		r.WriteDesc(r.Desc, idx, b.Addr, b.Len, flags(b, i < len(bufs)-1), r.nextDesc)
	}
	return head
}

// AddIndirect writes bufs as an indirect table at table (16 bytes per
// buffer) and one direct descriptor pointing at it, and returns its head.
func (r *Ring) AddIndirect(table uint64, bufs []Buf) uint16 {
	for i, b := range bufs {
		r.WriteDesc(table, uint16(i), b.Addr, b.Len, flags(b, i < len(bufs)-1), uint16(i+1))
	}
	head := r.nextDesc
	r.nextDesc = (r.nextDesc + 1) % r.Size
	r.WriteDesc(r.Desc, head, table, uint32(16*len(bufs)), virtio.DescIndirect, 0)
	return head
}

// Add writes bufs as a direct chain, or as an indirect one whose table it
// takes from a, and returns its head. It does not publish it.
func (r *Ring) Add(a *Alloc, bufs []Buf, indirect bool) uint16 {
	if indirect {
		return r.AddIndirect(a.Take(16*uint64(len(bufs)), 16), bufs)
	}
	return r.AddChain(bufs)
}

// flags are the descriptor flags of b, linked to a next one or not.
func flags(b Buf, next bool) uint16 {
	var f uint16
	if b.Write {
		f |= virtio.DescWrite
	}
	if next {
		f |= virtio.DescNext
	}
	return f
}

// Publish puts head in the available ring and then advances avail.idx
// with a release store, as a driver's memory barrier would.
func (r *Ring) Publish(head uint16) {
	must(r.Mem.Write16(r.Avail+4+2*uint64(r.availIdx%r.Size), head))
	r.availIdx++
	r.SetAvailIdx(r.availIdx)
}

// SetAvailIdx stores avail.idx as given (tests of bad indices use it).
func (r *Ring) SetAvailIdx(v uint16) {
	r.availIdx = v
	w, err := r.Mem.LoadAcquire32(r.Avail)
	must(err)
	must(r.Mem.StoreRelease32(r.Avail, w&0xFFFF|uint32(v)<<16))
}

// SetAvailFlags stores avail.flags (1 = VRING_AVAIL_F_NO_INTERRUPT).
func (r *Ring) SetAvailFlags(f uint16) {
	w, err := r.Mem.LoadAcquire32(r.Avail)
	must(err)
	must(r.Mem.StoreRelease32(r.Avail, w&0xFFFF0000|uint32(f)))
}

// UsedIdx is the device's used.idx.
func (r *Ring) UsedIdx() uint16 {
	w, err := r.Mem.LoadAcquire32(r.Used)
	must(err)
	return uint16(w >> 16)
}

// NextUsed returns the next used element the driver has not seen yet.
func (r *Ring) NextUsed() (id uint32, length uint32, ok bool) {
	if r.UsedIdx() == r.usedSeen {
		return 0, 0, false
	}
	at := r.Used + 4 + 8*uint64(r.usedSeen%r.Size)
	id, err := r.Mem.Read32(at)
	must(err)
	length, err = r.Mem.Read32(at + 4)
	must(err)
	r.usedSeen++
	return id, length, true
}

// Patience is how long a test waits for what a device must do (a used
// element, an interrupt, a status bit): it only turns a hang into a
// failure, and a device served under the race detector on a busy
// machine may take seconds. A test that something does not happen
// waits briefly instead: that wait is the test.
const Patience = 20 * time.Second

// WaitUsed polls for the next used element until timeout (Patience,
// unless the test is that none comes).
func (r *Ring) WaitUsed(timeout time.Duration) (id uint32, length uint32, err error) {
	deadline := time.Now().Add(timeout)
	for {
		if id, length, ok := r.NextUsed(); ok {
			return id, length, nil
		}
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("no used element after %v (used.idx %d)", timeout, r.UsedIdx())
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// must panics on errors that mean the test laid out memory wrongly (a
// test bug, not a device bug).
func must(err error) {
	if err != nil {
		panic("virtiotest: " + err.Error())
	}
}
