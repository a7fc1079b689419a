package virtio_test

import (
	"io"
	"log/slog"
	"strings"
	"testing"

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
	// A restored machine's PCI host brings back the command register of
	// a guest that drives the device: bus mastering on.
	pd.PCIConfig().EnableBusMaster()
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

// queuedWhileQuiesced is a device with one 16-entry queue, quiesced (a
// snapshot under way), in whose ring the guest has queued a request for
// 8 bytes at 0x80000 and notified it: the notification waits for resume.
func queuedWhileQuiesced(t *testing.T) (*guestmem.Memory, *virtio.PCIDevice, *virtiotest.Ring, func()) {
	t.Helper()
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
	drv.Notify(0)
	return mem, pd, ring, resume
}

// TestRestoreServesQueuedRequests: a request the guest queued while the
// device was quiesced is in the snapshot's memory, not in the device's
// state; the restored device serves it without a new notification.
func TestRestoreServesQueuedRequests(t *testing.T) {
	mem, pd, ring, resume := queuedWhileQuiesced(t)
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
	pd2.Start()
	if drv2.Status() != s.Status {
		t.Fatalf("restored status %#x, want %#x", drv2.Status(), s.Status)
	}
	ring2 := *ring // the same ring, in the snapshot's memory (NewRing would zero it)
	ring2.Mem = mem2
	if _, n, err := ring2.WaitUsed(virtiotest.Patience); err != nil || n != 8 {
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

// TestRestoreRefusesUnreachableState: Restore refuses, naming the field
// and its value, transport state that no guest could have brought the
// device to (a snapshot file is input from anywhere), and a refused
// Restore leaves the device as it was: never half-restored.
func TestRestoreRefusesUnreachableState(t *testing.T) {
	const live = virtio.StatusAcknowledge | virtio.StatusDriver | virtio.StatusDriverOK
	base := func() virtio.TransportState {
		return virtio.TransportState{Type: virtio.TypeNet, Status: live,
			Queues: []virtio.QueueState{{PFN: 1, LastAvail: 7, UsedIdx: 7}, {PFN: 3}}}
	}
	tests := []struct {
		name string
		edit func(s *virtio.TransportState)
		want string
	}{
		{"ISR bit", func(s *virtio.TransportState) { s.ISR, s.Asserted = 0x81, true }, "ISR 0x81"},
		{"asserted without ISR", func(s *virtio.TransportState) { s.Asserted = true }, "asserted with ISR 0x0"},
		{"ISR without the line", func(s *virtio.TransportState) { s.ISR = virtio.ISRQueue }, "not asserted with ISR 0x1"},
		{"broken without NEEDS_RESET", func(s *virtio.TransportState) { s.Broken = true }, "broken with status 0x7"},
		{"last_avail without rings", func(s *virtio.TransportState) { s.Queues[1] = virtio.QueueState{LastAvail: 3} }, "queue 1: last_avail 3"},
		{"used idx without rings", func(s *virtio.TransportState) { s.Queues[1] = virtio.QueueState{UsedIdx: 9} }, "used idx 9"},
		{"last_avail past the queue", func(s *virtio.TransportState) { s.Queues[0].LastAvail = 7 + 17 }, "queue 0: last_avail 24 is 17 entries past used idx 7"},
		{"last_avail a queue ahead", func(s *virtio.TransportState) { s.Queues[0].LastAvail = 7 + 16 }, "queue 0: last_avail 23 is 16 entries past used idx 7"},
		{"last_avail one ahead", func(s *virtio.TransportState) { s.Queues[0].LastAvail = 7 + 1 }, "queue 0: last_avail 8 is 1 entries past used idx 7"},
		{"used idx past last_avail", func(s *virtio.TransportState) { s.Queues[0].UsedIdx = 8 }, "last_avail 7 is 65535 entries past used idx 8"},
		{"second ring outside", func(s *virtio.TransportState) { s.Queues[1].PFN = memSize / 4096 }, "queue 1: virtqueue violation: queue PFN 0x100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := guestmem.New(make([]byte, memSize))
			pd, _ := stateRig(t, mem, newFakeDev())
			if err := pd.Restore(base()); err != nil {
				t.Fatalf("the unedited state: %v", err)
			}
			pd2, _ := stateRig(t, mem, newFakeDev())
			s := base()
			tt.edit(&s)
			err := pd2.Restore(s)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Restore = %v, want an error mentioning %q", err, tt.want)
			}
			if got := pd2.State(); got.Status != 0 || got.Queues[0].PFN != 0 || got.Queues[0].LastAvail != 0 {
				t.Fatalf("state after a refused Restore %+v, want the device's as it was", got)
			}
		})
	}
}
