package virtio_test

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

func stateRig(t *testing.T, mem *guestmem.Memory, dev *fakeDev) (*virtio.PCIDevice, virtiotest.Driver) {
	t.Helper()
	pd, err := virtio.NewPCIDevice(mem, dev, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pd.Close() })
	return pd, virtiotest.Driver{Regs: pd.BARDevice(0)}
}

// TestQuiesceWaitsForRequest: a snapshot's Quiesce returns only once the
// request in flight is done, so the state it then reads has it completed.
func TestQuiesceWaitsForRequest(t *testing.T) {
	mem := guestmem.New(make([]byte, memSize))
	dev := newFakeDev()
	dev.sizes = []uint16{16}
	dev.hold, dev.entered = make(chan struct{}), make(chan struct{}, 1)
	pd, drv := stateRig(t, mem, dev)
	if _, err := drv.Attach(0, []uint32{1}); err != nil {
		t.Fatal(err)
	}
	ring, err := virtiotest.NewRing(mem, 1, 16)
	if err != nil {
		t.Fatal(err)
	}
	ring.Publish(ring.AddChain([]virtiotest.Buf{{Addr: 0x80000, Len: 8, Write: true}}))
	drv.Notify(0)
	<-dev.entered // the request is in flight
	got := make(chan virtio.TransportState)
	go func() {
		resume := pd.Quiesce()
		defer resume()
		got <- pd.State()
	}()
	close(dev.hold)
	s := <-got
	if s.Queues[0].LastAvail != 1 || s.Queues[0].UsedIdx != 1 {
		t.Fatalf("state while quiesced: queue %+v, want the request taken and used", s.Queues[0])
	}
}

// TestRestoreServesQueuedRequests: a request the guest queued while the
// device was quiesced is in the snapshot's memory, not in the device's
// state; the restored device serves it without a new notification.
func TestRestoreServesQueuedRequests(t *testing.T) {
	mem := guestmem.New(make([]byte, memSize))
	dev := newFakeDev()
	dev.sizes = []uint16{16}
	pd, drv := stateRig(t, mem, dev)
	if _, err := drv.Attach(0, []uint32{1}); err != nil {
		t.Fatal(err)
	}
	ring, err := virtiotest.NewRing(mem, 1, 16)
	if err != nil {
		t.Fatal(err)
	}
	resume := pd.Quiesce()
	ring.Publish(ring.AddChain([]virtiotest.Buf{{Addr: 0x80000, Len: 8, Write: true}}))
	drv.Notify(0) // the worker waits for the snapshot
	s := pd.State()
	saved := append([]byte(nil), mem.Bytes()...)
	resume()
	if s.Queues[0].LastAvail != 0 || s.Status&virtio.StatusDriverOK == 0 {
		t.Fatalf("state %+v: want the request not taken and the driver live", s)
	}

	mem2 := guestmem.New(saved)
	dev2 := newFakeDev()
	dev2.sizes = []uint16{16}
	pd2, drv2 := stateRig(t, mem2, dev2)
	if err := pd2.Restore(s); err != nil {
		t.Fatal(err)
	}
	if drv2.Status() != s.Status {
		t.Fatalf("restored status %#x, want %#x", drv2.Status(), s.Status)
	}
	ring2 := *ring // the same ring, in the snapshot's memory (NewRing would zero it)
	ring2.Mem = mem2
	if _, n, err := ring2.WaitUsed(2 * time.Second); err != nil || n != 8 {
		t.Fatalf("restored device: used %d bytes, %v; want the queued request served", n, err)
	}
	if b, _ := mem2.Read8(0x80000); b != 0xAB {
		t.Fatalf("buffer byte %#x, want 0xAB", b)
	}
}

// TestRestoreRefusesOtherDevice: a snapshot's transport state restores
// only into the same kind of device with the same queues, and never
// places a ring outside memory.
func TestRestoreRefusesOtherDevice(t *testing.T) {
	mem := guestmem.New(make([]byte, memSize))
	dev := newFakeDev()
	pd, _ := stateRig(t, mem, dev) // two queues
	tests := []struct {
		name string
		s    virtio.TransportState
		want string
	}{
		{"type", virtio.TransportState{Type: virtio.TypeBlock, Queues: make([]virtio.QueueState, 2)}, "type 2, this one is type 1"},
		{"queues", virtio.TransportState{Type: virtio.TypeNet, Queues: make([]virtio.QueueState, 1)}, "1 queues, the device 2"},
		{"features", virtio.TransportState{Type: virtio.TypeNet, Guest: 1 << 20, Queues: make([]virtio.QueueState, 2)}, "not all offered"},
		{"ring outside", virtio.TransportState{Type: virtio.TypeNet, Queues: []virtio.QueueState{{PFN: 1 << 20}, {}}}, "queue 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := pd.Restore(tt.s)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Restore = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}
