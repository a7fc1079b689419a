package vmm_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/snapshot"
	"github.com/smolvmm/smolvmm/vmm"
)

// A snapshot whose state and header disagree on the memory size is
// refused as corrupt, saying both sizes in one unit: it said "state says
// 32 MiB, header 16777216 bytes".
func TestRestoreMemorySizeMismatch(t *testing.T) {
	path, _, _ := snapshotCounter(t, vmm.Config{}, "")
	forge := forger(t, path)
	tests := []struct {
		name string
		mib  int
		want string
	}{
		{"more in the state", 32, "state says 32 MiB (33554432 bytes), header 16 MiB (16777216 bytes)"},
		{"less in the state", 8, "state says 8 MiB (8388608 bytes), header 16 MiB (16777216 bytes)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := forge(func(st map[string]any) { st["MemoryMiB"] = tt.mib }, nil)
			m, err := vmm.Restore(vmm.Config{KVMPath: "/nonexistent/kvm"}, p)
			if err == nil {
				m.Close()
				t.Fatal("Restore succeeded")
			}
			if !errors.Is(err, snapshot.ErrCorrupt) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Restore: %v\nwant %v saying %q", err, snapshot.ErrCorrupt, tt.want)
			}
		})
	}
}
