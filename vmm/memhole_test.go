package vmm_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestMemoryVGAHole: the VGA window 0xA0000-0xBFFFF is no RAM to the guest
// (KVM gets the memory around it), so the memory the machine gives its
// devices refuses it too, on a new machine and on a restored one, while the
// RAM on either side, where the loaders and the firmware write, stays
// usable. Otherwise a virtio ring or disk buffer there would be served
// where the guest reads all ones.
func TestMemoryVGAHole(t *testing.T) {
	needKVM(t)
	m, err := vmm.New(vmm.Config{Kernel: "spin", KernelImage: spinner(), MemoryMiB: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	path := snapshotFile(t, m)
	r, err := vmm.Restore(vmm.Config{}, path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, tc := range []struct {
		name string
		mem  *guestmem.Memory
	}{{"new", m.Memory()}, {"restored", r.Memory()}} {
		t.Run(tc.name, func(t *testing.T) {
			for _, rg := range []struct {
				gpa, n uint64
				ok     bool
			}{
				{0x9F000, 0x1000, true},  // the top page of conventional memory
				{0xC0000, 0x40000, true}, // the BIOS area above the window
				{0xA0000, 0x1000, false}, // a ring at PFN 0xA0
				{0xBFFFF, 1, false},
				{0x9F000, 0x2000, false}, // a buffer running into the window
			} {
				err := tc.mem.Check(rg.gpa, rg.n)
				if (err == nil) != rg.ok {
					t.Errorf("[%#x, +%#x): err %v, want ok=%v", rg.gpa, rg.n, err, rg.ok)
				}
				if err != nil && !errors.Is(err, guestmem.ErrOutOfRange) {
					t.Errorf("[%#x, +%#x): %v does not wrap ErrOutOfRange", rg.gpa, rg.n, err)
				}
			}
		})
	}
}

// snapshotFile writes a snapshot of m, not running, to a new file and
// returns its path.
func snapshotFile(t *testing.T, m *vmm.Machine) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.snap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Snapshot(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	return path
}
