package vmm_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestOnEventPanicInNewReleases: OnEvent panicking in New or Restore
// (on the caller's goroutine, where it panics on as a *PanicError)
// leaves nothing open, as an error does: no descriptor, and the disk
// image's lock is gone, so a next machine takes the disk. The machine
// was released only on error: the panic left the VM, its memory and the
// disk's lock behind.
func TestOnEventPanicInNewReleases(t *testing.T) {
	needKVM(t)
	disk, _ := diskImage(t)
	snap := filepath.Join(t.TempDir(), "m.snap")
	cfg := vmm.Config{Kernel: "demo", KernelImage: guests.Demo, Console: io.Discard, MemoryMiB: 16, Disks: []blk.Spec{{Path: disk}}}
	m, err := vmm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(snap)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Snapshot(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	m.Close()

	newM := func(cfg vmm.Config) (*vmm.Machine, error) { return vmm.New(cfg) }
	restore := func(cfg vmm.Config) (*vmm.Machine, error) { return vmm.Restore(cfg, snap) }
	tests := []struct {
		name  string
		make  func(vmm.Config) (*vmm.Machine, error)
		phase vmm.Phase
	}{
		{"New at vm-created", newM, vmm.PhaseVMCreated},
		{"New at kernel-loaded", newM, vmm.PhaseKernelLoaded},
		{"Restore at devices-created", restore, vmm.PhaseDevicesCreated},
		{"Restore at state-restored", restore, vmm.PhaseStateRestored},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := openFDs(t)
			c := cfg
			c.OnEvent = func(e vmm.Event) {
				if e.Phase == tc.phase {
					panic("user bug")
				}
			}
			func() {
				defer func() {
					var pe *vmm.PanicError
					if r := recover(); r == nil {
						t.Error("the panic did not go on")
					} else if err, ok := r.(error); !ok || !errors.As(err, &pe) {
						t.Errorf("panicked with %v, want a *vmm.PanicError", r)
					}
				}()
				m, err := tc.make(c)
				t.Errorf("returned %v, %v; want OnEvent's panic", m, err)
			}()
			if leaked := leakedFDs(t, before); len(leaked) > 0 {
				t.Errorf("descriptors left open: %v", leaked)
			}
			m, err := tc.make(cfg)
			if err != nil {
				t.Fatalf("the next machine with the disk: %v", err)
			}
			m.Close()
		})
	}
}
