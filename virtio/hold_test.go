package virtio_test

import (
	"testing"

	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

// TestHoldKeepsQueuedRequests: a device held while quiesced (a machine
// stopping with its snapshot) serves nothing once resumed, neither the
// notification that waited for the snapshot nor a later one: the request
// stays in the ring as the snapshot recorded it (a network card's frame
// unsent, a disk's write not made), and Start serves it.
func TestHoldKeepsQueuedRequests(t *testing.T) {
	mem, pd, ring, resume := queuedWhileQuiesced(t)
	s := pd.State()
	pd.Hold()
	resume()
	pd.Serve() // as the machine's notification reader would
	if n := ring.UsedIdx(); n != 0 {
		t.Fatalf("held device: used idx %d, want the request not served", n)
	}
	if b, _ := mem.Read8(0x80000); b != 0 {
		t.Fatalf("held device wrote buffer byte %#x", b)
	}
	if got := pd.State(); got.Queues[0] != s.Queues[0] {
		t.Fatalf("held device's queue %+v, want %+v as the snapshot recorded it", got.Queues[0], s.Queues[0])
	}
	pd.Start()
	if _, n, err := ring.WaitUsed(virtiotest.Patience); err != nil || n != 8 {
		t.Fatalf("started: used %d bytes, %v; want the kept request served", n, err)
	}
}
