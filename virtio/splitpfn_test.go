package virtio_test

import (
	"testing"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

// TestSplitPFNWrite: a queue PFN written in parts takes effect with its
// high byte, as the merged value, so a low half that alone names the VGA
// hole does not break the device on its way to RAM above 256 MiB.
func TestSplitPFNWrite(t *testing.T) {
	const (
		mem  = 260 << 20
		pfn  = 0x100A0 // 256 MiB + 0xA0000: RAM
		hole = 0xA0    // the low half alone: 0xA0000, the VGA hole
	)
	for _, tc := range []struct {
		name  string
		write func(d virtiotest.Driver)
	}{
		{"low half, then high half", func(d virtiotest.Driver) {
			d.Write16(virtio.RegQueuePFN, hole)
			d.Write16(virtio.RegQueuePFN+2, pfn>>16)
		}},
		{"byte by byte", func(d virtiotest.Driver) {
			for i := range uint64(4) {
				d.Write8(virtio.RegQueuePFN+i, uint8(uint32(pfn)>>(8*i)))
			}
		}},
		{"one 32-bit write", func(d virtiotest.Driver) { d.Write32(virtio.RegQueuePFN, pfn) }},
		{"low half twice, then high half", func(d virtiotest.Driver) {
			d.Write16(virtio.RegQueuePFN, 0x1234)
			d.Write16(virtio.RegQueuePFN, hole)
			d.Write16(virtio.RegQueuePFN+2, pfn>>16)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := guestmem.New(make([]byte, mem), guestmem.Range{Start: 0xA0000, End: 0xC0000})
			r := newRigOn(t, newFakeDev(), m)
			r.drv.SetStatus(virtio.StatusAcknowledge | virtio.StatusDriver)
			r.drv.Write16(virtio.RegQueueSelect, 0)
			tc.write(r.drv)
			if r.pd.Broken() {
				t.Fatalf("device broken by a PFN written as %s: %s", tc.name, r.log)
			}
			if got := r.drv.Read32(virtio.RegQueuePFN); got != pfn {
				t.Errorf("PFN reads %#x, want %#x", got, uint32(pfn))
			}
			if st := r.pd.State(); st.Queues[0].PFN != pfn {
				t.Errorf("queue 0 placed at PFN %#x, want %#x", st.Queues[0].PFN, uint32(pfn))
			}
		})
	}
}

// TestSplitPFNWriteDropped: the part of a PFN written before the driver
// selects another queue, or resets the device, is not kept for the next
// high byte.
func TestSplitPFNWriteDropped(t *testing.T) {
	for _, tc := range []struct {
		name    string
		between func(d virtiotest.Driver)
	}{
		{"select", func(d virtiotest.Driver) {
			d.Write16(virtio.RegQueueSelect, 1)
			d.Write16(virtio.RegQueueSelect, 0)
		}},
		{"reset", func(d virtiotest.Driver) {
			d.SetStatus(0)
			d.SetStatus(virtio.StatusAcknowledge | virtio.StatusDriver)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, newFakeDev())
			r.drv.SetStatus(virtio.StatusAcknowledge | virtio.StatusDriver)
			r.drv.Write16(virtio.RegQueueSelect, 0)
			r.drv.Write16(virtio.RegQueuePFN, 0x7FFF) // far past the end of memory
			tc.between(r.drv)
			r.drv.Write16(virtio.RegQueuePFN+2, 0)
			if r.pd.Broken() {
				t.Fatalf("a low half written before the %s was applied: %s", tc.name, r.log)
			}
			if got := r.drv.Read32(virtio.RegQueuePFN); got != 0 {
				t.Errorf("PFN reads %#x, want 0", got)
			}
		})
	}
}
