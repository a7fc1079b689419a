package vmm_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/smolvmm/smolvmm/snapshot"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestRestoreConfigFields: a restore refuses a Config the snapshot does
// not fit naming the field at fault, so that a program can name its own
// setting of it: a memory size New would refuse (as New refuses it), or
// not the snapshot's, more or less (with the snapshot's size), and other
// devices.
func TestRestoreConfigFields(t *testing.T) {
	needKVM(t)
	m, err := vmm.New(vmm.Config{Kernel: "exit", KernelImage: exitGuest(), MemoryMiB: 8})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	_, err = m.Snapshot(&b)
	m.Close()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "s.snap")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		cfg   vmm.Config
		want  error
		field string
	}{
		{"negative memory", vmm.Config{MemoryMiB: -1}, vmm.ErrConfig, "MemoryMiB"},
		{"too little memory", vmm.Config{MemoryMiB: vmm.MinMemoryMiB - 1}, vmm.ErrConfig, "MemoryMiB"},
		{"too much memory", vmm.Config{MemoryMiB: vmm.MaxMemoryMiB + 1}, vmm.ErrConfig, "MemoryMiB"},
		{"more memory", vmm.Config{MemoryMiB: 16}, snapshot.ErrMemorySize, "MemoryMiB"},
		{"less memory", vmm.Config{MemoryMiB: 4}, snapshot.ErrMemorySize, "MemoryMiB"},
		{"other devices", vmm.Config{Devices: []virtio.Device{&closeRecorder{}}}, vmm.ErrSnapshotDevices, "Devices"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := vmm.Restore(tt.cfg, path)
			if err == nil {
				r.Close()
				t.Fatal("Restore succeeded")
			}
			var ve *vmm.Error
			if !errors.Is(err, tt.want) || !errors.As(err, &ve) || ve.Field != tt.field {
				t.Fatalf("Restore: %v (Field %q); want %v with Field %q", err, fieldOf(ve), tt.want, tt.field)
			}
			var ms *snapshot.MemorySizeError
			if asked := uint64(tt.cfg.MemoryMiB) << 20; errors.Is(tt.want, snapshot.ErrMemorySize) && (!errors.As(err, &ms) || ms.Snapshot != 8<<20 || ms.Asked != asked) {
				t.Fatalf("Restore: %v; want a MemorySizeError of 8 MiB in the snapshot, %d MiB asked", err, tt.cfg.MemoryMiB)
			}
		})
	}
}
