package blk_test

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/pci"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

// TestRestoreServesOnlyOnceStarted: a disk restored from a snapshot whose
// guest left a write in its available ring writes nothing, uses no ring
// entry and raises no interrupt, whatever kicks it, until Start: a
// machine's restore may fail after its devices', and then must have
// changed nothing. Start then serves the queued write and raises INTx.
func TestRestoreServesOnlyOnceStarted(t *testing.T) {
	tests := []struct {
		name      string
		busMaster bool // as the restored PCI command register says
		kick      func(pd *virtio.PCIDevice)
	}{
		{"restore alone", true, func(*virtio.PCIDevice) {}},
		{"Kick", true, func(pd *virtio.PCIDevice) { pd.Kick() }},
		{"Serve", true, func(pd *virtio.PCIDevice) { pd.Serve() }},
		{"KickQueue", true, func(pd *virtio.PCIDevice) { pd.KickQueue(0) }},
		{"bus mastering set after", false, func(pd *virtio.PCIDevice) {
			pd.PCIConfig().EnableBusMaster()
			pd.CommandChanged(pci.CommandIO, pci.CommandIO|pci.CommandBusMaster)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d1, err := blk.New(newMemBackend(1<<20), 1<<20, blk.Options{})
			if err != nil {
				t.Fatal(err)
			}
			r := newBlkRig(t, d1)
			// Stopped first (the kick of its DRIVER_OK may still be
			// on the way): the snapshotted device never took the write.
			if err := r.pd.Close(); err != nil {
				t.Fatal(err)
			}
			data := r.alloc.Take(512, 512)
			r.mem.WriteAt(bytes.Repeat([]byte{0xAB}, 512), int64(data))
			head := r.ring.Add(r.alloc, []virtiotest.Buf{{Addr: r.header(blk.TypeOut, 0), Len: blk.HeaderSize},
				{Addr: data, Len: 512}, {Addr: r.status(), Len: 1, Write: true}}, false)
			r.ring.Publish(head)
			st := r.pd.State()
			if q := st.Queues[0]; q.LastAvail != 0 || st.Status&virtio.StatusDriverOK == 0 {
				t.Fatalf("snapshot state %+v: want a live driver and the write not taken", st)
			}

			be := newMemBackend(1 << 20)
			d2, err := blk.New(be, 1<<20, blk.Options{})
			if err != nil {
				t.Fatal(err)
			}
			irq := virtiotest.NewIRQ()
			pd, err := virtio.NewPCIDevice(r.mem, d2, irq, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer pd.Close()
			if tt.busMaster {
				pd.PCIConfig().EnableBusMaster() // as the PCI host's restore brings it back
			}
			if err := pd.Restore(st); err != nil {
				t.Fatal(err)
			}
			tt.kick(pd)
			if _, _, err := r.ring.WaitUsed(100 * time.Millisecond); err == nil {
				t.Fatal("the restored device served a request before Start")
			}
			be.mu.Lock()
			wrote := !bytes.Equal(be.b[:512], make([]byte, 512))
			be.mu.Unlock()
			if wrote {
				t.Fatal("the restored device wrote the image before Start")
			}
			if slices.Contains(irq.Levels(), true) {
				t.Fatalf("the restored device raised INTx before Start: levels %v", irq.Levels())
			}

			pd.Start()
			if id, _, err := r.ring.WaitUsed(virtiotest.Patience); err != nil || id != uint32(head) {
				t.Fatalf("after Start: used id %d, %v; want the queued write (%d) served", id, err, head)
			}
			be.mu.Lock()
			got := append([]byte(nil), be.b[:512]...)
			be.mu.Unlock()
			if !bytes.Equal(got, bytes.Repeat([]byte{0xAB}, 512)) {
				t.Error("after Start: the queued write is not in the image")
			}
			select {
			case <-irq.Raised():
			case <-time.After(virtiotest.Patience):
				t.Fatal("after Start: INTx not raised for the used write")
			}
		})
	}
}
