package net

import (
	"testing"

	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

// linkBackend is a fakeBackend whose link the test takes down and up, as
// a shared network's goes down when its daemon is lost.
type linkBackend struct {
	*fakeBackend
	virtiotest.Link
}

// A backend's link going down and up shows in the status the driver reads
// (LINK_UP cleared, then set) with a configuration-change interrupt each
// time it changes, as NetBSD's vioif_config_change reads the status then
// and tells the interface's carrier (a DHCP client asks for its lease
// again when it comes back). Before, the status said LINK_UP whatever the
// backend's network did. A driver that did not negotiate STATUS gets no
// interrupt: the field is not its to read.
func TestLinkStatusFollowsBackend(t *testing.T) {
	be := &linkBackend{fakeBackend: newFakeBackend()}
	r := newRigOn(t, be)
	status := func() uint16 { return r.drv.Read16(virtio.RegConfig + 6) }
	steps := []struct {
		name       string
		up         bool
		wantStatus uint16
		wantIRQ    bool
	}{
		{"link down", false, 0, true},
		{"down again: no change", false, 0, false},
		{"link up", true, StatusLinkUp, true},
		{"up again: no change", true, StatusLinkUp, false},
	}
	if got := status(); got != StatusLinkUp {
		t.Fatalf("status %#x at start, want LINK_UP", got)
	}
	r.drv.ISR() // clear
	for _, s := range steps {
		be.Set(s.up)
		if got := status(); got != s.wantStatus {
			t.Errorf("%s: status %#x, want %#x", s.name, got, s.wantStatus)
		}
		if got := r.drv.ISR()&virtio.ISRConfig != 0; got != s.wantIRQ {
			t.Errorf("%s: configuration-change interrupt %v, want %v", s.name, got, s.wantIRQ)
		}
	}
	// A driver without STATUS.
	if _, err := r.drv.Attach(wantFeatures&^(1<<FeatureStatus), []uint32{r.rx.PFN, r.tx.PFN}); err != nil {
		t.Fatal(err)
	}
	r.drv.ISR()
	be.Set(false)
	if r.drv.ISR()&virtio.ISRConfig != 0 {
		t.Error("configuration-change interrupt to a driver that did not negotiate STATUS")
	}
}

// WatchesLink is whether the driver negotiated STATUS, whatever the
// backend: a restore tells such a driver to read the status again (its
// guest may have last seen a shared network's link down, and be restored
// onto a network whose link never changes). It was false for any backend
// but a LinkBackend, and such a guest was never told.
func TestWatchesLink(t *testing.T) {
	for _, tc := range []struct {
		name     string
		backend  netback.Backend
		features uint32
		want     bool
	}{
		{"link backend, STATUS", &linkBackend{fakeBackend: newFakeBackend()}, wantFeatures, true},
		{"plain backend, STATUS", newFakeBackend(), wantFeatures, true},
		{"plain backend, no STATUS", newFakeBackend(), wantFeatures &^ (1 << FeatureStatus), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRigOn(t, tc.backend)
			if _, err := r.drv.Attach(tc.features, []uint32{r.rx.PFN, r.tx.PFN}); err != nil {
				t.Fatal(err)
			}
			if got := r.dev.WatchesLink(); got != tc.want {
				t.Errorf("WatchesLink = %v, want %v", got, tc.want)
			}
		})
	}
}
