package vmm_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/smolvmm/smolvmm/vmm"
)

// TestSnapshotAfterRunReturned: once Run has returned, whether the guest
// ran or not (its context was done already, BeforeRun failed), Snapshot
// fails with ErrNotRunning: the machine will not run again, and a
// snapshot of it as New left it would restore a guest that never ran.
func TestSnapshotAfterRunReturned(t *testing.T) {
	needKVM(t)
	done, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name      string
		ctx       context.Context
		beforeRun func() error
	}{
		{"the guest ran and left", context.Background(), nil},
		{"context done before Run", done, nil},
		{"BeforeRun failed", context.Background(), func() error { return errors.New("no sandbox") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := vmm.New(vmm.Config{Kernel: "exit", KernelImage: exitGuest(), MemoryMiB: 8, Console: io.Discard, BeforeRun: tt.beforeRun})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			e, err := m.Run(tt.ctx)
			t.Logf("Run: %+v, %v", e, err)
			if _, err := m.Snapshot(io.Discard); !errors.Is(err, vmm.ErrNotRunning) {
				t.Fatalf("Snapshot after Run returned: %v; want ErrNotRunning", err)
			}
		})
	}
}
