package virtio_test

import (
	"errors"
	"testing"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

// TestSplitPFNWrite: a queue PFN written in parts, in any order, ends
// with the rings at the value the parts make: a part that alone names
// the VGA hole does not break the device on its way to RAM above 256 MiB,
// and a low half alone (a PFN below 65536) places the rings.
func TestSplitPFNWrite(t *testing.T) {
	const (
		mem  = 260 << 20
		pfn  = 0x100A0 // 256 MiB + 0xA0000: RAM
		hole = 0xA0    // the low half alone: 0xA0000, the VGA hole
	)
	for _, tc := range []struct {
		name  string
		write func(d virtiotest.Driver)
		want  uint32 // 0: pfn
	}{
		{"high half, then low half", func(d virtiotest.Driver) {
			d.Write16(virtio.RegQueuePFN+2, pfn>>16)
			d.Write16(virtio.RegQueuePFN, pfn&0xFFFF)
		}, 0},
		{"high half, then low half, over rings placed before", func(d virtiotest.Driver) {
			d.Write32(virtio.RegQueuePFN, 0x200)
			d.Write16(virtio.RegQueuePFN+2, pfn>>16)
			d.Write16(virtio.RegQueuePFN, pfn&0xFFFF)
		}, 0},
		{"bytes from the high one down", func(d virtiotest.Driver) {
			for i := uint64(4); i > 0; i-- {
				d.Write8(virtio.RegQueuePFN+i-1, uint8(uint32(pfn)>>(8*(i-1))))
			}
		}, 0},
		{"low half only, below 256 MiB", func(d virtiotest.Driver) {
			d.Write16(virtio.RegQueuePFN, 0x1234)
		}, 0x1234},
		{"low half into the hole, then a whole write", func(d virtiotest.Driver) {
			d.Write16(virtio.RegQueuePFN, hole)
			d.Write32(virtio.RegQueuePFN, 0x1234)
		}, 0x1234},
		{"low half, then high half", func(d virtiotest.Driver) {
			d.Write16(virtio.RegQueuePFN, hole)
			d.Write16(virtio.RegQueuePFN+2, pfn>>16)
		}, 0},
		{"byte by byte", func(d virtiotest.Driver) {
			for i := range uint64(4) {
				d.Write8(virtio.RegQueuePFN+i, uint8(uint32(pfn)>>(8*i)))
			}
		}, 0},
		{"one 32-bit write", func(d virtiotest.Driver) { d.Write32(virtio.RegQueuePFN, pfn) }, 0},
		{"low half twice, then high half", func(d virtiotest.Driver) {
			d.Write16(virtio.RegQueuePFN, 0x1234)
			d.Write16(virtio.RegQueuePFN, hole)
			d.Write16(virtio.RegQueuePFN+2, pfn>>16)
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := guestmem.New(make([]byte, mem), guestmem.Range{Start: 0xA0000, End: 0xC0000})
			r := newRigOn(t, newFakeDev(), m)
			r.drv.SetStatus(virtio.StatusAcknowledge | virtio.StatusDriver)
			r.drv.Write16(virtio.RegQueueSelect, 0)
			tc.write(r.drv)
			want := tc.want
			if want == 0 {
				want = pfn
			}
			if r.pd.Broken() {
				t.Fatalf("device broken by a PFN written as %s: %s", tc.name, r.log)
			}
			if got := r.drv.Read32(virtio.RegQueuePFN); got != want {
				t.Errorf("PFN reads %#x, want %#x", got, want)
			}
			if err := r.pd.Settled(); err != nil {
				t.Errorf("a PFN still held: %v", err)
			}
			if st := r.pd.State(); st.Queues[0].PFN != want {
				t.Errorf("queue 0 placed at PFN %#x, want %#x", st.Queues[0].PFN, want)
			}
			r.drv.SetStatus(virtio.StatusAcknowledge | virtio.StatusDriver | virtio.StatusDriverOK)
			if r.pd.Broken() {
				t.Errorf("DRIVER_OK broke the device: %s", r.log)
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

// TestSplitPFNWriteHeldInvalid: a part of a PFN that leaves the rings out
// of memory is held, reading back as written and breaking nothing, until
// the driver sets DRIVER_OK with it still so: the device is then broken,
// as by a whole write of it, and its queue left down.
func TestSplitPFNWriteHeldInvalid(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(d virtiotest.Driver)
		held  uint32
	}{
		{"low half past memory", func(d virtiotest.Driver) { d.Write16(virtio.RegQueuePFN, 0x7FFF) }, 0x7FFF},
		{"high half past memory", func(d virtiotest.Driver) { d.Write16(virtio.RegQueuePFN+2, 1) }, 0x10000},
		{"high half past memory over rings placed before", func(d virtiotest.Driver) {
			d.Write32(virtio.RegQueuePFN, 0x20)
			d.Write16(virtio.RegQueuePFN+2, 1)
		}, 0x10020},
		{"one byte past memory", func(d virtiotest.Driver) { d.Write8(virtio.RegQueuePFN+1, 0x7F) }, 0x7F00},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, newFakeDev())
			r.drv.SetStatus(virtio.StatusAcknowledge | virtio.StatusDriver)
			r.drv.Write16(virtio.RegQueueSelect, 0)
			tc.write(r.drv)
			if r.pd.Broken() {
				t.Fatalf("a part of a PFN broke the device: %s", r.log)
			}
			if got := r.drv.Read32(virtio.RegQueuePFN); got != tc.held {
				t.Errorf("PFN reads %#x, want %#x (as written)", got, tc.held)
			}
			if err := r.pd.Settled(); !errors.Is(err, virtio.ErrPFNHeld) {
				t.Errorf("Settled with a PFN held: %v, want ErrPFNHeld", err)
			}
			r.drv.Notify(0)
			if r.pd.Broken() {
				t.Fatal("a notify before DRIVER_OK broke the device")
			}
			r.drv.SetStatus(virtio.StatusAcknowledge | virtio.StatusDriver | virtio.StatusDriverOK)
			if !r.pd.Broken() || r.drv.Status()&virtio.StatusNeedsReset == 0 {
				t.Fatalf("DRIVER_OK with a PFN held out of memory: not broken, status %#x", r.drv.Status())
			}
			if got := r.drv.Read32(virtio.RegQueuePFN); got != 0 {
				t.Errorf("PFN reads %#x after DRIVER_OK, want 0 (queue left down)", got)
			}
			if err := r.pd.Settled(); err != nil {
				t.Errorf("Settled after DRIVER_OK: %v", err)
			}
		})
	}
}
