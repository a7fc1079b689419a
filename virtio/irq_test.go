package virtio_test

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/bus"
	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

// sharedRig is two devices whose INTx drive one line, as a fifth virtio
// device shares IRQ 10 with the first.
type sharedRig struct {
	line   *virtiotest.IRQ
	inputs [2]*seenIRQ
	drv    [2]virtiotest.Driver
	rings  [2]*virtiotest.Ring
}

// seenIRQ passes a device's level on to its input, then records it, so a
// test can wait for that device's own interrupt rather than for a line
// another device may already hold high.
type seenIRQ struct {
	to   bus.IRQ
	seen *virtiotest.IRQ
}

func (s *seenIRQ) Set(level bool) {
	s.to.Set(level)
	s.seen.Set(level)
}

func newSharedRig(t *testing.T, input func(line bus.IRQ) func() bus.IRQ) *sharedRig {
	t.Helper()
	mem := guestmem.New(make([]byte, memSize))
	alloc := virtiotest.NewAlloc(mem, 4096)
	r := &sharedRig{line: virtiotest.NewIRQ()}
	next := input(r.line)
	for i := range r.drv {
		dev := newFakeDev()
		dev.sizes = []uint16{16}
		r.inputs[i] = &seenIRQ{to: next(), seen: virtiotest.NewIRQ()}
		pd, err := virtio.NewPCIDevice(mem, dev, r.inputs[i], slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pd.Close() })
		pfn := alloc.Pages(2)
		if r.rings[i], err = virtiotest.NewRing(mem, pfn, 16); err != nil {
			t.Fatal(err)
		}
		r.drv[i] = virtiotest.Driver{Regs: pd.BARDevice(0)}
		if _, err := r.drv[i].Attach(0, []uint32{pfn}); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// complete has device i finish one request and waits for its interrupt.
func (r *sharedRig) complete(t *testing.T, i int) {
	t.Helper()
	ring := r.rings[i]
	ring.Publish(ring.AddChain([]virtiotest.Buf{{Addr: 0x80000 + 0x1000*uint64(i), Len: 8, Write: true}}))
	r.drv[i].Notify(0)
	if _, _, err := ring.WaitUsed(virtiotest.Patience); err != nil {
		t.Fatal(err)
	}
	// The used element is published before the interrupt is raised, and
	// the shared line may be high already for the other device.
	deadline := time.Now().Add(virtiotest.Patience)
	for !r.inputs[i].seen.Level() {
		if time.Now().After(deadline) {
			t.Fatalf("device %d completed a request but never raised its interrupt", i)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// TestSharedLine: NetBSD runs every handler of a shared level-triggered
// line and each reads its own device's ISR. Device 1 completes while
// device 0's interrupt is pending; device 0's handler reading its ISR must
// not lower the line under device 1, whose interrupt would then be lost
// (its line stays "asserted" in the transport, so it never rises again).
func TestSharedLine(t *testing.T) {
	r := newSharedRig(t, func(line bus.IRQ) func() bus.IRQ {
		s := bus.NewSharedIRQ(line)
		return s.Input
	})
	r.complete(t, 0)
	r.complete(t, 1)
	if got := r.drv[0].ISR(); got != virtio.ISRQueue {
		t.Fatalf("device 0 ISR %#x, want %#x", got, virtio.ISRQueue)
	}
	if !r.line.Level() {
		t.Fatal("device 0's ISR read lowered the shared line while device 1's interrupt is pending")
	}
	if got := r.drv[1].ISR(); got != virtio.ISRQueue {
		t.Fatalf("device 1 ISR %#x, want %#x", got, virtio.ISRQueue)
	}
	if r.line.Level() {
		t.Fatal("line still high after both ISRs were read")
	}
	// And again, in the other order: the line follows the last input.
	r.complete(t, 1)
	r.complete(t, 0)
	r.drv[1].ISR()
	if !r.line.Level() {
		t.Fatal("device 1's ISR read lowered the line under device 0")
	}
	r.drv[0].ISR()
	if r.line.Level() {
		t.Fatal("line high with no interrupt pending")
	}
}
