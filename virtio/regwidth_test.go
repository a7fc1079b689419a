package virtio_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

// regEnd is the end of the legacy register holding offset off.
func regEnd(off int) int {
	for _, r := range [][2]int{{0, 4}, {4, 4}, {8, 4}, {12, 2}, {14, 2}, {16, 2}, {18, 1}, {19, 1}} {
		if off >= r[0] && off < r[0]+r[1] {
			return r[0] + r[1]
		}
	}
	return -1
}

// dependsOn reports whether byte i of the register block may change by a
// write to the register holding off alone: a status write resets
// everything, a PFN write of a live queue breaks the device (status
// NEEDS_RESET), and the PFN and size are the selected queue's.
func dependsOn(i, off int) bool {
	switch {
	case off == virtio.RegStatus:
		return true
	case off >= virtio.RegQueuePFN && off < virtio.RegQueueSize:
		return i == virtio.RegStatus
	case off >= virtio.RegQueueSelect && off < virtio.RegQueueNotify:
		return i >= virtio.RegQueuePFN && i < virtio.RegQueueSelect
	}
	return false
}

// regBytes reads the register block byte by byte, but for the ISR (which
// a read clears).
func regBytes(d virtiotest.Driver) []byte {
	b := make([]byte, virtio.RegISR)
	for i := range b {
		b[i] = d.Read8(uint64(i))
	}
	return b
}

// liveRig is a rig whose device is live with queue 0's interrupt pending.
func liveRig(t *testing.T) *rig {
	t.Helper()
	r := newRig(t, newFakeDev())
	if _, err := r.drv.Attach(0xFFFF_FFFF, r.pfns); err != nil {
		t.Fatal(err)
	}
	if _, err := r.request(t, 0); err != nil {
		t.Fatal(err)
	}
	waitLevel(t, r.irq, true)
	return r
}

// An access that starts on a legacy register reaches that register only,
// at its width, as QEMU's legacy port serves it: the bytes past it are
// ignored on write and read as 0. An `outl` at the notify register so
// never writes status (0: a reset), and an `inl` there never clears the
// ISR.
func TestAccessWidthByStartOffset(t *testing.T) {
	for _, w := range []int{1, 2, 4, 8} {
		for off := 0; off < virtio.RegConfig; off++ {
			t.Run(fmt.Sprintf("read%d@%d", 8*w, off), func(t *testing.T) {
				r := liveRig(t)
				want := append(regBytes(r.drv), virtio.ISRQueue)
				got := make([]byte, w)
				r.pd.BARDevice(0).Read(uint64(off), got)
				exp := make([]byte, w)
				copy(exp, want[off:regEnd(off)])
				if !bytes.Equal(got, exp) {
					t.Errorf("read % x, want % x", got, exp)
				}
				isr := r.drv.ISR()
				if cleared := isr == 0; cleared != (off == virtio.RegISR) {
					t.Errorf("ISR %#x after the read: it is cleared only by a read at %d", isr, virtio.RegISR)
				}
			})
			t.Run(fmt.Sprintf("write%d@%d", 8*w, off), func(t *testing.T) {
				r := liveRig(t)
				r.drv.ISR()
				before := regBytes(r.drv)
				r.pd.BARDevice(0).Write(uint64(off), make([]byte, w))
				after := regBytes(r.drv)
				for i := range before {
					if i >= off && i < regEnd(off) || i == virtio.RegQueueNotify || i == virtio.RegQueueNotify+1 {
						continue // the register written
					}
					if dependsOn(i, off) {
						continue
					}
					if before[i] != after[i] {
						t.Errorf("byte %d changed from %#x to %#x by a write of %d bytes at %d", i, before[i], after[i], w, off)
					}
				}
				r.dev.mu.Lock()
				resets := r.dev.resets
				r.dev.mu.Unlock()
				// Attach resets once.
				if reset := resets > 1; reset != (off == virtio.RegStatus) {
					t.Errorf("device reset %d times: only a write at %d resets it", resets-1, virtio.RegStatus)
				}
			})
		}
	}
}

// A 32-bit write of a queue index at the notify register kicks that queue
// and leaves the device live.
func TestNotifyWide(t *testing.T) {
	r := liveRig(t)
	r.drv.ISR()
	ring := r.rings[1]
	ring.Publish(ring.AddChain([]virtiotest.Buf{{Addr: 0x80000, Len: 32, Write: true}}))
	r.drv.Write32(virtio.RegQueueNotify, 1)
	if _, _, err := ring.WaitUsed(virtiotest.Patience); err != nil {
		t.Fatalf("queue 1 not served after a 32-bit notify: %v", err)
	}
	if st := r.drv.Status(); st&virtio.StatusDriverOK == 0 {
		t.Errorf("status %#x after a 32-bit notify: the device was reset", st)
	}
}
