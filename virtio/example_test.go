package virtio_test

import (
	"fmt"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

// A device pops a validated chain, uses its buffers and pushes it back.
func ExampleQueue() {
	mem := guestmem.New(make([]byte, 1<<20))
	q, _ := virtio.NewQueue(mem, 16)
	_ = q.SetPFN(1) // the driver wrote PFN 1: rings at 0x1000

	// The driver's side: a readable request and a writable reply buffer.
	ring, _ := virtiotest.NewRing(mem, 1, 16)
	_, _ = mem.WriteAt([]byte("ping"), 0x8000)
	ring.Publish(ring.AddChain([]virtiotest.Buf{{Addr: 0x8000, Len: 4}, {Addr: 0x9000, Len: 4, Write: true}}))

	c, ok, err := q.Pop()
	fmt.Println(ok, err, len(c.Descs), c.ReadableLen(), c.WritableLen())
	in, _ := c.Segments(nil, false)
	out, _ := c.Segments(nil, true)
	copy(out[0], "pong")
	_ = q.Push(c.Head, 4)
	fmt.Printf("%s -> ", in[0])

	id, n, _ := ring.NextUsed()
	reply, _ := mem.Slice(0x9000, 4)
	fmt.Printf("%s (used id %d, len %d, interrupt %v)\n", reply, id, n, q.NeedsInterrupt())
	// Output:
	// true <nil> 2 4 4
	// ping -> pong (used id 0, len 4, interrupt true)
}
