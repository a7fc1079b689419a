package virtio_test

import (
	"testing"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/virtio"
)

// netbsdLayout is where NetBSD 9's virtio_alloc_vq puts a queue of n
// entries (offsets from the PFN's address): descriptors, the available
// ring right after them, the used ring at the page-rounded size of both
// (counting no used_event word), and the indirect tables after the
// page-rounded used ring. Written from the driver's arithmetic, not from
// the device's, so that the two are checked against each other.
func netbsdLayout(n uint64) (avail, used, indirect uint64) {
	align := func(x uint64) uint64 { return (x + 4095) &^ 4095 }
	avail = 16 * n
	used = align(16*n + 2*(2+n))
	indirect = used + align(2*2+8*n)
	return avail, used, indirect
}

// TestUsedRingWhereNetBSDPutsIt: for every queue size the device may
// report, a request made where NetBSD's driver writes it is seen by the
// device, and the used element lands where NetBSD's driver reads it; the
// device's own ring area fits in what NetBSD allocates, so a ring placed
// at the end of RAM is accepted.
func TestUsedRingWhereNetBSDPutsIt(t *testing.T) {
	const base = 4096
	for size := uint64(1); size <= virtio.MaxQueueSize; size *= 2 {
		avail, used, indirect := netbsdLayout(size)
		if got := virtio.RingBytes(uint16(size)); got > indirect {
			t.Errorf("size %d: the device needs %d bytes, NetBSD allocates %d before its indirect tables", size, got, indirect)
		}
		mem := guestmem.New(make([]byte, base+indirect+4096))
		q, err := virtio.NewQueue(mem, uint16(size))
		if err != nil {
			t.Fatal(err)
		}
		if err := q.SetPFN(base / 4096); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		head := uint16(size - 1)
		buf := base + indirect // one writable byte past the rings
		mustDo(t, mem.Write64(base+16*uint64(head), buf))
		mustDo(t, mem.Write32(base+16*uint64(head)+8, 1))
		mustDo(t, mem.Write16(base+16*uint64(head)+12, virtio.DescWrite))
		mustDo(t, mem.Write16(base+avail+4, head))
		mustDo(t, mem.Write16(base+avail+2, 1)) // avail.idx
		c, ok, err := q.Pop()
		if err != nil || !ok || c.Head != head {
			t.Fatalf("size %d: Pop = head %d, %v, %v; want head %d", size, c.Head, ok, err, head)
		}
		if err := q.Push(c.Head, 1); err != nil {
			t.Fatal(err)
		}
		idx, _ := mem.Read16(base + used + 2)
		id, _ := mem.Read32(base + used + 4)
		n, _ := mem.Read32(base + used + 8)
		if idx != 1 || id != uint32(head) || n != 1 {
			t.Errorf("size %d: NetBSD reads used idx %d, elem (%d, %d) at offset %#x; want 1, (%d, 1)",
				size, idx, id, n, used, head)
		}
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
