package vmm

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/bobuhiro11/gokvm/kvm"

	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/blk"
	vnet "github.com/smolvmm/smolvmm/virtio/net"
)

// TestPCILinesLevelTriggered: New leaves the in-kernel 8259s' ELCR (edge/
// level control) with exactly the PCI devices' lines level-triggered, as
// a PC BIOS does: NetBSD never programs the ELCR and its PCI interrupt
// handlers expect level-triggered lines, while the ISA lines (timer 0,
// keyboard 1, cascade 2, COM1 4, RTC 8) must stay edge-triggered.
// PCI devices take 10, 11, 5 and 9 in order.
func TestPCILinesLevelTriggered(t *testing.T) {
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err != nil {
		t.Skipf("KVM unusable here (%v)", err)
	} else {
		f.Close()
	}
	tests := []struct {
		name  string
		disks int
		// ELCR of the master (lines 0-7) and the slave (8-15).
		master, slave uint8
	}{
		{"no device", 0, 0x00, 0x00},
		{"a card and a disk: lines 10 and 11", 1, 0x00, 1<<(10-8) | 1<<(11-8)},
		{"a card and three disks: lines 10, 11, 5 and 9", 3, 1 << 5, 1<<(9-8) | 1<<(10-8) | 1<<(11-8)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Kernel: "spin", KernelImage: spinGuest()}
			if tt.disks > 0 {
				be := newLinkBackend()
				nic, err := vnet.New(be, []byte{0x52, 0x54, 0x00, 0x12, 0x34, 0x56})
				if err != nil {
					t.Fatal(err)
				}
				cfg.Devices = []virtio.Device{nic}
			}
			for range tt.disks {
				img := filepath.Join(t.TempDir(), "disk.img")
				if err := os.WriteFile(img, make([]byte, 4096), 0o644); err != nil {
					t.Fatal(err)
				}
				cfg.Disks = append(cfg.Disks, blk.Spec{Path: img})
			}
			m, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			const elcrOff = 14 // in struct kvm_pic_state
			for chip, want := range []uint8{tt.master, tt.slave} {
				var c kvm.IRQChip
				c.ChipID = uint32(chip)
				if err := kvm.GetIRQChip(m.vmFD, &c); err != nil {
					t.Fatalf("KVM_GET_IRQCHIP %d: %v", chip, err)
				}
				if got := c.Chip[elcrOff]; got != want {
					t.Errorf("8259 %d: ELCR %#08b, want %#08b (lines %d-%d)", chip, got, want, 8*chip, 8*chip+7)
				}
			}
		})
	}
}
