package vmm_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/snapshot"
	"github.com/smolvmm/smolvmm/vmm"
)

// counterSnapshot writes a snapshot of the counter guest (16 MiB, counting
// long enough not to end by itself), taken once it printed, to a file in a
// temporary directory, and returns its path and memory section's offset.
func counterSnapshot(t *testing.T) (path string, memOff int64) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "counter.snap")
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
	memOff = int64(h.Header.MemOff)
	h.Close()

	return path, memOff
}

// TestRestoreMemoryFileTruncated: a restored guest whose snapshot file is
// truncated under it (its memory maps the file privately: the pages it has
// not copied vanish) ends Run with MemoryFileError naming the file, not
// with a guest crash and a register dump.
func TestRestoreMemoryFileTruncated(t *testing.T) {
	needKVM(t)
	path, memOff := counterSnapshot(t)

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

// TestSnapshotMemoryFileTruncated: a restored machine whose snapshot file
// was truncated refuses a snapshot with MemoryFileError and writes
// nothing (the target keeps its old content), instead of writing the
// pages cut from the file as zeros (their holes past the file's end
// looked like holes to the memory's end) with a digest that verifies.
func TestSnapshotMemoryFileTruncated(t *testing.T) {
	needKVM(t)
	src, memOff := counterSnapshot(t)
	orig, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	const mem = 16 << 20
	for _, tc := range []struct {
		name   string
		size   int64 // the file's size after the truncation
		during bool  // whole until the snapshot's first write (after the checks and the digest's read of memory), truncated then
	}{
		{"all memory", memOff, false},
		{"half the memory", memOff + mem/2, false},
		{"the last page", memOff + mem - 4096, false},
		{"all memory, during the write to a file", memOff, true},
		{"all memory, during the write to memory", memOff, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "restored.snap")
			if err := os.WriteFile(path, orig, 0o600); err != nil {
				t.Fatal(err)
			}
			r, err := vmm.Restore(vmm.Config{Console: &guests.Console{}}, path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if !tc.during {
				if err := os.Truncate(path, tc.size); err != nil {
					t.Fatal(err)
				}
			}
			out := filepath.Join(dir, "out.snap")
			if err := os.WriteFile(out, []byte("old"), 0o600); err != nil {
				t.Fatal(err)
			}
			tgt, err := snapshot.OpenTarget(out)
			if err != nil {
				t.Fatal(err)
			}
			var written int64
			err = tgt.Write(func(w io.Writer) error {
				switch {
				case strings.HasSuffix(tc.name, "to memory"):
					// Copied by Go, not the kernel: a fault, not EFAULT.
					w = &truncateOnWrite{w: &bytes.Buffer{}, path: path, size: tc.size}
				case tc.during:
					w = &truncateOnWrite{w: w, path: path, size: tc.size}
				}
				info, err := r.Snapshot(w)
				written = info.Bytes
				return err
			})
			tgt.Close()
			var mfe *vmm.MemoryFileError
			if !errors.As(err, &mfe) || !errors.Is(err, vmm.ErrMemoryFileTruncated) || mfe.Path != path || mfe.Size != tc.size || mfe.End != memOff+mem {
				t.Fatalf("Snapshot after truncating the memory file to %d bytes = %v (%#v); want a MemoryFileError for %s (size %d, memory to %d)", tc.size, err, mfe, path, tc.size, memOff+mem)
			}
			if written != 0 && !tc.during {
				t.Errorf("Snapshot wrote %d bytes", written)
			}
			if b, err := os.ReadFile(out); err != nil || string(b) != "old" {
				t.Errorf("the target after the refused snapshot: %q, %v; want its old content", b, err)
			}
		})
	}
}

// truncateOnWrite is a writer that truncates the file at path to size at
// its first Write, before passing it on.
type truncateOnWrite struct {
	w    io.Writer
	path string
	size int64
	done bool
}

func (t *truncateOnWrite) Write(p []byte) (int, error) {
	if !t.done {
		t.done = true
		if err := os.Truncate(t.path, t.size); err != nil {
			return 0, err
		}
	}
	return t.w.Write(p)
}
