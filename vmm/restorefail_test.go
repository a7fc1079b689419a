package vmm_test

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestRestoreFailedServesNothing snapshots the vblk guest with a write of
// sector 2 in its disk's available ring, never notified ("queued"), so
// that only a restore's kick of the queue serves it, and a network card
// beside the disk. Restores that fail after the devices are restored (the
// card's address, checked last) leave the image as it was, its bytes and
// its modification time, so the snapshot restores again; that restore
// serves the queued write.
func TestRestoreFailedServesNothing(t *testing.T) {
	needKVM(t)
	a := net.HardwareAddr{0x52, 0x54, 0x00, 0xaa, 0x00, 0x01}
	b := net.HardwareAddr{0x52, 0x54, 0x00, 0xbb, 0x00, 0x02}
	c := net.HardwareAddr{0x52, 0x54, 0x00, 0xcc, 0x00, 0x03}
	disk, img := diskImage(t)
	path := filepath.Join(t.TempDir(), "vblk.snap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	var snapErr error
	out, e, err := boot(t, vmm.Config{Kernel: guest(t, "vblk"), Append: "queued", MemoryMiB: 32,
		Disks: []blk.Spec{{Path: disk}}, Devices: []virtio.Device{userNIC(t, a)}, SnapshotOnReady: f, SnapshotExit: true,
		OnSnapshot: func(_ vmm.SnapshotInfo, err error) { snapErr = err }}, 30*time.Second)
	f.Close()
	if err != nil || snapErr != nil || e.Reason != vmm.ExitSnapshot {
		t.Fatalf("snapshot run: exit %v, %v, snapshot %v\n%s", e, err, snapErr, out)
	}
	before, err := os.Stat(disk)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(disk); err != nil || !bytes.Equal(b, img) {
		t.Fatalf("the snapshot run wrote the image (%v): the write was served before the snapshot", err)
	}

	for _, tt := range []struct {
		name string
		card net.HardwareAddr
		opts []vmm.RestoreOption
	}{
		{"another card without WithMAC", b, nil},
		{"WithMAC, the card has a third", c, []vmm.RestoreOption{vmm.WithMAC(b)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := vmm.Restore(vmm.Config{Devices: []virtio.Device{userNIC(t, tt.card)}}, path, tt.opts...)
			if err == nil {
				m.Close()
				t.Fatal("restore succeeded, want ErrMACChanged")
			}
			if !errors.Is(err, vmm.ErrMACChanged) {
				t.Fatalf("restore: %v, want ErrMACChanged", err)
			}
			fi, err := os.Stat(disk)
			if err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(disk); err != nil || !bytes.Equal(b, img) {
				t.Errorf("the failed restore wrote the image (%v)", err)
			}
			if !fi.ModTime().Equal(before.ModTime()) {
				t.Errorf("the failed restore moved the image's modification time from %v to %v", before.ModTime(), fi.ModTime())
			}
		})
	}

	got, e, err := restoreRun(t, vmm.Config{Devices: []virtio.Device{userNIC(t, a)}}, path)
	wantDebugExit(t, e, err, 0)
	wantLines(t, got, "vblk: queued write status 0\r\n", "vblk: ok\r\n")
	b2, err := os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b2[2*512:3*512], bytes.Repeat([]byte{'Q'}, 512)) {
		t.Error("the restored guest's queued write is not in sector 2")
	}
}
