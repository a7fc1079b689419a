package vmm_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestRestoreEveryNICMAC snapshots a machine with a disk and two network
// cards, A and B (virtio devices 1 and 2), and restores it with each pair
// of cards: every card must have its slot's address from the snapshot,
// the first WithMAC's instead when it is given, which changes that card's
// alone.
func TestRestoreEveryNICMAC(t *testing.T) {
	needKVM(t)
	a := net.HardwareAddr{0x52, 0x54, 0x00, 0xaa, 0x00, 0x01}
	b := net.HardwareAddr{0x52, 0x54, 0x00, 0xbb, 0x00, 0x02}
	c := net.HardwareAddr{0x52, 0x54, 0x00, 0xcc, 0x00, 0x03}
	img := filepath.Join(t.TempDir(), "d.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	disks := []blk.Spec{{Path: img}}
	m, err := vmm.New(vmm.Config{Kernel: "spin", KernelImage: spinner(), MemoryMiB: 16, Disks: disks,
		Devices: []virtio.Device{userNIC(t, a), userNIC(t, b)}})
	if err != nil {
		t.Fatal(err)
	}
	path := snapshotFile(t, m) // memhole_test.go
	m.Close()

	tests := []struct {
		name          string
		first, second net.HardwareAddr
		withMAC       net.HardwareAddr
		field         string // of the refusal; "" for none
		errText       string
	}{
		{name: "the snapshot's addresses", first: a, second: b},
		{name: "the second changed", first: a, second: c, field: "Devices",
			errText: "restore: network card (virtio device 2): " + vmm.ErrMACChanged.Error() + ": the card has 52:54:00:cc:00:03, the snapshot's guest 52:54:00:bb:00:02"},
		{name: "the first changed", first: c, second: b, field: "WithMAC",
			errText: "restore: network card (virtio device 1): " + vmm.ErrMACChanged.Error() + ": the card has 52:54:00:cc:00:03, the snapshot's guest 52:54:00:aa:00:01"},
		{name: "both changed", first: c, second: a, field: "WithMAC",
			errText: "(virtio device 1): " + vmm.ErrMACChanged.Error() + ": the card has 52:54:00:cc:00:03, the snapshot's guest 52:54:00:aa:00:01"},
		{name: "a clone", first: c, second: b, withMAC: c},
		{name: "a clone whose second card changed", first: c, second: a, withMAC: c, field: "Devices",
			errText: "(virtio device 2): " + vmm.ErrMACChanged.Error() + ": the card has 52:54:00:aa:00:01, the snapshot's guest 52:54:00:bb:00:02"},
		{name: "a clone whose second card has the clone's address", first: c, second: c, withMAC: c, field: "Devices",
			errText: "(virtio device 2): " + vmm.ErrMACChanged.Error() + ": the card has 52:54:00:cc:00:03, the snapshot's guest 52:54:00:bb:00:02"},
		{name: "a clone whose first card kept the snapshot's", first: a, second: b, withMAC: c, field: "WithMAC",
			errText: "(virtio device 1): " + vmm.ErrMACChanged.Error() + ": the card has 52:54:00:aa:00:01, the clone's address is 52:54:00:cc:00:03"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []vmm.RestoreOption
			if tt.withMAC != nil {
				opts = append(opts, vmm.WithMAC(tt.withMAC))
			}
			r, err := vmm.Restore(vmm.Config{Disks: disks, Devices: []virtio.Device{userNIC(t, tt.first), userNIC(t, tt.second)}}, path, opts...)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Restore = %v, want it restored", err)
				}
				r.Close()
				return
			}
			if err == nil {
				r.Close()
				t.Fatalf("restored, want %v on field %s", vmm.ErrMACChanged, tt.field)
			}
			var ve *vmm.Error
			if !errors.Is(err, vmm.ErrMACChanged) || !errors.As(err, &ve) || ve.Field != tt.field || !strings.Contains(err.Error(), tt.errText) {
				t.Fatalf("Restore = %v (%#v), want %v on field %s with %q", err, ve, vmm.ErrMACChanged, tt.field, tt.errText)
			}
		})
	}
}
