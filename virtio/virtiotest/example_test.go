package virtiotest_test

import (
	"fmt"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

// Build an indirect chain the way NetBSD does for a block request and
// look at what the device side sees.
func ExampleRing_AddIndirect() {
	mem := guestmem.New(make([]byte, 1<<20))
	a := virtiotest.NewAlloc(mem, 0x1000)
	pfn := a.Pages(2)
	ring, _ := virtiotest.NewRing(mem, pfn, 8)
	table := a.Take(3*16, 16)
	ring.Publish(ring.AddIndirect(table, []virtiotest.Buf{
		{Addr: 0x20000, Len: 16}, {Addr: 0x21000, Len: 4096, Write: true}, {Addr: 0x22000, Len: 1, Write: true},
	}))

	q, _ := virtio.NewQueue(mem, 8)
	q.SetFeatures(virtio.Bit(virtio.FeatureIndirectDesc)) // offered by the device, accepted by the driver
	_ = q.SetPFN(pfn)
	c, _, _ := q.Pop()
	for _, d := range c.Descs {
		fmt.Printf("%#x %d write=%v\n", d.Addr, d.Len, d.Write)
	}
	// Output:
	// 0x20000 16 write=false
	// 0x21000 4096 write=true
	// 0x22000 1 write=true
}
