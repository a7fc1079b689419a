package vmm_test

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/vmm"
)

// reenterWriter is a snapshot's writer whose first Write calls fn.
type reenterWriter struct {
	once sync.Once
	fn   func()
}

func (w *reenterWriter) Write(p []byte) (int, error) {
	w.once.Do(w.fn)
	return len(p), nil
}

// TestBeforeRunSnapshotWriterReenters: the writer of a snapshot taken
// before Run runs on the goroutine that takes it, while the vCPU is held
// for it: Snapshot from it fails with ErrSnapshotFromCallback, as from
// the vCPU thread, and Close returns nil at once, the machine released
// once the snapshot is written. Both waited for that very snapshot to
// end, for ever.
func TestBeforeRunSnapshotWriterReenters(t *testing.T) {
	needKVM(t)
	tests := []struct {
		name string
		call func(m *vmm.Machine) error
		want error // the inner call's (nil: none)
	}{
		{"Snapshot", func(m *vmm.Machine) error { _, err := m.Snapshot(io.Discard); return err }, vmm.ErrSnapshotFromCallback},
		{"Close", func(m *vmm.Machine) error { return m.Close() }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := vmm.New(vmm.Config{Kernel: "demo", KernelImage: guests.Demo, MemoryMiB: 16, Console: io.Discard})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			var inner error
			done := make(chan error, 1)
			go func() {
				_, err := m.Snapshot(&reenterWriter{fn: func() { inner = tc.call(m) }})
				done <- err
			}()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("the outer Snapshot: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%s from the writer of a snapshot taken before Run did not return", tc.name)
			}
			if !errors.Is(inner, tc.want) || (tc.want == nil && inner != nil) {
				t.Errorf("%s from the writer: %v, want %v", tc.name, inner, tc.want)
			}
			if tc.name != "Close" {
				return
			}
			// Released: memory closed, Run refuses, and Close has
			// nothing left to do.
			if _, err := m.Memory().Read8(0x100000); !errors.Is(err, guestmem.ErrClosed) {
				t.Errorf("memory after Close from the writer: %v, want ErrClosed", err)
			}
			if _, err := m.Run(context.Background()); !errors.Is(err, vmm.ErrConfig) {
				t.Errorf("Run after Close: %v, want ErrConfig", err)
			}
			if err := m.Close(); err != nil {
				t.Errorf("Close again: %v", err)
			}
		})
	}
}
