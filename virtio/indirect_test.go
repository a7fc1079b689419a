package virtio_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

var indirectBit = virtio.Bit(virtio.FeatureIndirectDesc)

// TestQueueIndirectNeedsFeature: a queue follows an indirect descriptor
// only while FeatureIndirectDesc is in force; otherwise the chain is a ring
// violation. Placing the rings anew keeps the features.
func TestQueueIndirectNeedsFeature(t *testing.T) {
	for _, tc := range []struct {
		name     string
		features []uint32 // SetFeatures calls, in order
		replace  bool     // SetPFN again after them
		ok       bool
	}{
		{"never set", nil, false, false},
		{"other features only", []uint32{0x5}, false, false},
		{"agreed", []uint32{indirectBit}, false, true},
		{"agreed among others", []uint32{indirectBit | 0x5}, false, true},
		{"agreed, then withdrawn", []uint32{indirectBit, 0}, false, false},
		{"agreed, rings placed again", []uint32{indirectBit}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := guestmem.New(make([]byte, memSize))
			q, err := virtio.NewQueue(mem, 8)
			if err != nil {
				t.Fatal(err)
			}
			if err := q.SetPFN(1); err != nil {
				t.Fatal(err)
			}
			for _, f := range tc.features {
				q.SetFeatures(f)
			}
			if tc.replace {
				if err := q.SetPFN(1); err != nil {
					t.Fatal(err)
				}
			}
			r, err := virtiotest.NewRing(mem, 1, 8)
			if err != nil {
				t.Fatal(err)
			}
			r.Publish(r.AddIndirect(0x10000, []virtiotest.Buf{{Addr: 0x20000, Len: 16}, {Addr: 0x21000, Len: 1, Write: true}}))
			c, ok, err := q.Pop()
			if tc.ok {
				if err != nil || !ok || len(c.Descs) != 2 {
					t.Fatalf("Pop = %+v, ok %v, err %v; want the two buffers of the table", c, ok, err)
				}
				return
			}
			if !errors.Is(err, virtio.ErrRing) || ok {
				t.Fatalf("Pop = %+v, ok %v, err %v; want an ErrRing error", c, ok, err)
			}
			if want := "indirect descriptor 0, but VIRTIO_F_INDIRECT_DESC was not agreed"; !strings.Contains(err.Error(), want) {
				t.Errorf("Pop refused with %q; want %q", err, want)
			}
		})
	}
}

// TestTransportIndirectNeedsAgreement: through the transport, an indirect
// chain is served only when the device offered FeatureIndirectDesc and the
// driver accepted it (in either legacy attach order, and as restored);
// otherwise the device is broken, as by any corrupt ring. A reset forgets
// what was agreed.
func TestTransportIndirectNeedsAgreement(t *testing.T) {
	for _, tc := range []struct {
		name    string
		offered uint32
		// up brings the device up and returns the driver whose ring is
		// used (a restored device's, for the restore case).
		up     func(t *testing.T, r *rig) (virtiotest.Driver, error)
		served bool
	}{
		{"offered and accepted", indirectBit, func(_ *testing.T, r *rig) (virtiotest.Driver, error) {
			_, err := r.drv.Attach(indirectBit, r.pfns)
			return r.drv, err
		}, true},
		{"accepted after the PFNs (vioif's re-init)", indirectBit, func(_ *testing.T, r *rig) (virtiotest.Driver, error) {
			_, err := r.drv.Reinit(indirectBit, r.pfns)
			return r.drv, err
		}, true},
		{"offered, not accepted", indirectBit, func(_ *testing.T, r *rig) (virtiotest.Driver, error) {
			_, err := r.drv.Attach(0x1, r.pfns)
			return r.drv, err
		}, false},
		{"not offered, written anyway", 0x1, func(_ *testing.T, r *rig) (virtiotest.Driver, error) {
			_, err := r.drv.Attach(0xFFFFFFFF, r.pfns)
			return r.drv, err
		}, false},
		{"accepted, then reset and not accepted", indirectBit, func(t *testing.T, r *rig) (virtiotest.Driver, error) {
			if _, err := r.drv.Attach(indirectBit, r.pfns); err != nil {
				return r.drv, err
			}
			r.drv.SetStatus(0)
			r.drv.SetStatus(virtio.StatusAcknowledge | virtio.StatusDriver)
			for i, pfn := range r.pfns {
				r.drv.SetQueue(uint16(i), pfn)
			}
			r.drv.SetStatus(virtio.StatusDriverOK)
			return r.drv, nil
		}, false},
		{"accepted, restored", indirectBit, func(t *testing.T, r *rig) (virtiotest.Driver, error) {
			if _, err := r.drv.Attach(indirectBit, r.pfns); err != nil {
				return r.drv, err
			}
			s := r.pd.State()
			// Gone, as the machine a snapshot was taken of: its worker
			// would otherwise serve the ring beside the restored one.
			if err := r.pd.Close(); err != nil {
				return r.drv, err
			}
			dev := newFakeDev()
			dev.features = indirectBit
			pd, drv := stateRig(t, r.mem, dev)
			r.pd = pd
			err := pd.Restore(s)
			pd.Start()
			return drv, err
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev := newFakeDev()
			dev.features = tc.offered
			r := newRig(t, dev)
			drv, err := tc.up(t, r)
			if err != nil {
				t.Fatal(err)
			}
			ring := r.rings[0]
			ring.Publish(ring.AddIndirect(r.alloc.Take(32, 16), []virtiotest.Buf{{Addr: 0x80000, Len: 16}, {Addr: 0x81000, Len: 8, Write: true}}))
			drv.Notify(0)
			if tc.served {
				if _, n, err := ring.WaitUsed(virtiotest.Patience); err != nil || n != 8 {
					t.Fatalf("used %d bytes, %v; want the indirect chain served", n, err)
				}
				if r.pd.Broken() {
					t.Fatal("device broken")
				}
				return
			}
			deadline := time.Now().Add(virtiotest.Patience)
			for !r.pd.Broken() {
				if time.Now().After(deadline) {
					t.Fatalf("status %#x, used idx %d: an indirect chain without the feature did not break the device", drv.Status(), ring.UsedIdx())
				}
				time.Sleep(100 * time.Microsecond)
			}
			if ring.UsedIdx() != 0 {
				t.Error("the chain was served")
			}
		})
	}
}
