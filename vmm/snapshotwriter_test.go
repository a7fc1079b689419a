package vmm_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/vmm"
)

// shortWriter reports fewer bytes than given, without an error, at the
// calls short says.
type shortWriter struct {
	short func(call int, p []byte) int
	calls int
}

func (w *shortWriter) Write(p []byte) (int, error) {
	w.calls++
	return w.short(w.calls, p), nil
}

// TestSnapshotWriterRefused: a snapshot into a file that holds one
// already (the same *os.File written twice) is refused before a byte is
// written, and the file restores to the first; a writer that reports a
// short write without an error fails the snapshot with io.ErrShortWrite
// (one that took half of each write held Snapshot, Run and Close
// forever; one that dropped a byte gave a snapshot reported whole that
// no restore took), and the machine closes.
func TestSnapshotWriterRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		short func(call int, p []byte) int // nil: the same file twice
	}{
		{"same file twice", nil},
		{"half of each write", func(_ int, p []byte) int { return len(p) / 2 }},
		{"one byte dropped once", func(call int, p []byte) int {
			if call == 4 {
				return len(p) - 1
			}
			return len(p)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, res := startRun(t, vmm.Config{Kernel: "chatty", KernelImage: chattyGuest(), MemoryMiB: 8})
			var err error
			path := filepath.Join(t.TempDir(), "vm.snap")
			done := make(chan struct{})
			go func() {
				defer close(done)
				if tc.short != nil {
					_, err = m.Snapshot(&shortWriter{short: tc.short})
					return
				}
				f, ferr := os.Create(path)
				if ferr != nil {
					err = ferr
					return
				}
				defer f.Close()
				if _, ferr := m.Snapshot(f); ferr != nil {
					err = ferr
					return
				}
				_, err = m.Snapshot(f)
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Snapshot has not returned in 10 s")
			}
			m.Close()
			<-res
			if tc.short != nil {
				if !errors.Is(err, io.ErrShortWrite) {
					t.Fatalf("Snapshot = %v, want io.ErrShortWrite", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "not at the start of its file") {
				t.Fatalf("second Snapshot into the file = %v, want a refusal", err)
			}
			r, err := vmm.Restore(vmm.Config{}, path)
			if err != nil {
				t.Fatalf("Restore of the first snapshot: %v", err)
			}
			r.Close()
		})
	}
}
