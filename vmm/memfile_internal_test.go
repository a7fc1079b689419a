package vmm

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/virtio"
)

// TestFaultCause: a virtio device's fault on guest memory ends Run with a
// MemoryFileError when the machine's memory maps a file now short (the
// fault was the truncation's, its Cause), else with the device's failure,
// naming it.
func TestFaultCause(t *testing.T) {
	const off, size = 4096, 64 << 10
	fault := &virtio.MemoryFaultError{Addr: 0x1000, Queue: 0}
	for _, tc := range []struct {
		name     string
		file     int64 // the memory file's size; -1: a booted machine, no file
		wantFile bool
	}{
		{"booted", -1, false},
		{"restored, file whole", off + size, false},
		{"restored, file short", off + size/2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &Machine{gmem: guestmem.New(make([]byte, size))}
			if tc.file >= 0 {
				f, err := os.Create(filepath.Join(t.TempDir(), "mem.snap"))
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if err := f.Truncate(tc.file); err != nil {
					t.Fatal(err)
				}
				m.memFile, m.memFileOff = f, off
			}
			err := m.faultCause(2, fault)
			var mfe *MemoryFileError
			var ve *Error
			// A MemoryFileError wraps ErrMemoryFileTruncated only: the
			// fault is its Cause.
			cause := err
			if errors.As(err, &mfe) {
				cause = mfe.Cause
			}
			if !errors.Is(cause, virtio.ErrMemoryFault) || !strings.Contains(err.Error(), "virtio device 2: queue 0: guest memory fault") {
				t.Fatalf("faultCause = %v; want the device's fault, naming device 2", err)
			}
			if got := errors.As(err, &mfe); got != tc.wantFile || got != errors.Is(err, ErrMemoryFileTruncated) {
				t.Fatalf("faultCause = %v (%T): a MemoryFileError %v, want %v", err, err, got, tc.wantFile)
			}
			if tc.wantFile && (mfe.Size != tc.file || mfe.End != off+size) {
				t.Errorf("MemoryFileError of size %d, end %d; want %d, %d", mfe.Size, mfe.End, tc.file, off+size)
			}
			if !tc.wantFile && (!errors.As(err, &ve) || ve.Op != "virtio device 2") {
				t.Errorf("faultCause = %v; want a vmm.Error of op %q", err, "virtio device 2")
			}
		})
	}
}
