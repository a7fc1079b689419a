package vmm_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestNewDiskField: New's errors opening a disk name the Disks field,
// as Restore's do.
func TestNewDiskField(t *testing.T) {
	needKVM(t)
	missing := filepath.Join(t.TempDir(), "missing.img")
	m, err := vmm.New(vmm.Config{Kernel: "exit", KernelImage: exitGuest(), MemoryMiB: 8, Disks: []blk.Spec{{Path: missing}}})
	if err == nil {
		m.Close()
		t.Fatal("New succeeded with a missing disk image")
	}
	var ve *vmm.Error
	if !errors.As(err, &ve) || ve.Field != "Disks" || !strings.Contains(err.Error(), missing) {
		t.Fatalf("New = %v (Field %q); want Field Disks naming %s", err, fieldOf(ve), missing)
	}
}
