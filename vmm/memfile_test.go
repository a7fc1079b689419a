package vmm_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/snapshot"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestRestoreMemoryFileTruncated: a restored guest whose snapshot file is
// truncated under it (its memory maps the file privately: the pages it has
// not copied vanish) ends Run with MemoryFileError naming the file, not
// with a guest crash and a register dump.
func TestRestoreMemoryFileTruncated(t *testing.T) {
	needKVM(t)
	path := filepath.Join(t.TempDir(), "counter.snap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// A counter that counts long enough not to end by itself, snapshotted
	// once it printed.
	started := make(chan struct{})
	var out guests.Console
	m, err := vmm.New(vmm.Config{Kernel: guest(t, "counter"), Append: "n=1000000000 at=0", MemoryMiB: 16, Console: &out,
		OnEvent: func(e vmm.Event) {
			if e.Phase == vmm.PhaseFirstOutput {
				close(started)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := m.Run(ctx)
		done <- err
	}()
	<-started
	_, snapErr := m.Snapshot(f)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("the snapshotted run: %v", err)
	}
	if snapErr != nil {
		t.Fatalf("Snapshot: %v", snapErr)
	}
	h, err := snapshot.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	memOff := int64(h.Header.MemOff)
	h.Close()

	// The restored guest's first output truncates the file to its
	// memory section's start, on the vCPU thread: the code page the guest
	// runs from (read, not copied) goes with it.
	var rout guests.Console
	var truncErr error
	r, err := vmm.Restore(vmm.Config{Console: &rout, OnEvent: func(e vmm.Event) {
		if e.Phase == vmm.PhaseFirstOutput {
			truncErr = os.Truncate(path, memOff)
		}
	}}, path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rctx, rcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer rcancel()
	_, err = r.Run(rctx)
	if truncErr != nil {
		t.Fatalf("truncate: %v", truncErr)
	}
	var mfe *vmm.MemoryFileError
	want := "the snapshot file " + path + " backing guest memory was truncated (or replaced in place) while the VM ran"
	if !errors.As(err, &mfe) || !errors.Is(err, vmm.ErrMemoryFileTruncated) || errors.Is(err, vmm.ErrGuestCrash) ||
		!strings.Contains(err.Error(), want) || mfe.Path != path || mfe.Size != memOff || mfe.End != memOff+16<<20 {
		t.Fatalf("Run after the truncation = %v (%#v); want a MemoryFileError for %s (size %d, memory to %d) saying %q, not a crash", err, mfe, path, memOff, memOff+16<<20, want)
	}
}
