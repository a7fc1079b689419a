package vmm

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/smolvmm/smolvmm/pci"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/blk"
)

// TestNotifyFollowsIODecode: the queue notify register's ioeventfd goes
// when the guest turns its disk's I/O decode off (else KVM would take
// notifications for a BAR that decodes nothing) and comes back when it
// turns it on, as when a restored command register has it off.
func TestNotifyFollowsIODecode(t *testing.T) {
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err != nil {
		t.Skipf("KVM unusable here (%v)", err)
	} else {
		f.Close()
	}
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{Kernel: "spin", KernelImage: spinGuest(), Disks: []blk.Spec{{Path: img}}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s := m.virtio[0]
	bar, _ := s.dev.PCIConfig().BAR(0)
	command := func(v uint16) {
		var a, b [4]byte
		binary.LittleEndian.PutUint32(a[:], 0x80000000|1<<11|pci.RegCommand)
		m.pio.Write(0xCF8, a[:])
		binary.LittleEndian.PutUint16(b[:], v)
		m.pio.Write(0xCFC, b[:2])
	}
	check := func(step string, on bool) {
		t.Helper()
		var d [1]byte
		if s.listening != on || m.pio.Read(bar+virtio.RegStatus, d[:]) != on {
			t.Errorf("%s: ioeventfd assigned %v, BAR0 decoding %v; want both %v", step, s.listening, m.pio.Read(bar+virtio.RegStatus, d[:]), on)
		}
		if on && s.notify != bar+virtio.NotifyOffset {
			t.Errorf("%s: ioeventfd at %#x, want %#x", step, s.notify, bar+virtio.NotifyOffset)
		}
	}
	check("after New", true)
	command(pci.CommandBusMaster)
	check("I/O decode off", false)
	st := m.pci.State()
	command(pci.CommandIO | pci.CommandBusMaster)
	check("I/O decode on", true)
	if err := m.pci.Restore(st); err != nil {
		t.Fatal(err)
	}
	check("restored with I/O decode off", false)
	command(pci.CommandIO)
	check("I/O decode on after the restore", true)
}
