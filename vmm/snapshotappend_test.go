package vmm_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/smolvmm/smolvmm/vmm"
)

// TestSnapshotToAppendFile: a snapshot of a running machine written to
// a file opened O_APPEND (whose writes all land at its end) is one that
// Restore accepts, its memory digest checked.
func TestSnapshotToAppendFile(t *testing.T) {
	m, res := startRun(t, vmm.Config{Kernel: "chatty", KernelImage: chattyGuest(), MemoryMiB: 8})
	path := filepath.Join(t.TempDir(), "vm.snap")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Snapshot(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	m.Close()
	<-res
	if err != nil {
		t.Fatal(err)
	}
	r, err := vmm.Restore(vmm.Config{}, path)
	if err != nil {
		t.Fatalf("Restore of a snapshot written O_APPEND: %v", err)
	}
	r.Close()
}
