package blk_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/virtio/blk"
)

// TestCheckQEMULocks: the probe a program that replaces an image uses to
// see a QEMU running on it, which takes byte-range locks and no flock.
// Each lock byte that says a program writes the image or keeps it from
// others is refused; a QEMU that only reads and shares everything is not,
// and neither is smolvmm's own flock.
func TestCheckQEMULocks(t *testing.T) {
	tests := []struct {
		name  string
		bytes []int64 // locked F_RDLCK on another open file description
		inUse bool
	}{
		{"free", nil, false},
		{"reads, shares all", []int64{100}, false},
		{"writes", []int64{100, 101}, true},
		{"read not shared", []int64{200}, true},
		{"write not shared", []int64{100, 201}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "d.img")
			if err := os.WriteFile(p, make([]byte, 4096), 0o644); err != nil {
				t.Fatal(err)
			}
			q, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			for _, off := range tt.bytes {
				lk := unix.Flock_t{Type: unix.F_RDLCK, Whence: io.SeekStart, Start: off, Len: 1}
				if err := unix.FcntlFlock(q.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
					t.Fatal(err)
				}
			}
			if err := unix.Flock(int(q.Fd()), unix.LOCK_SH); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			err = blk.CheckQEMULocks(f, p)
			if got := errors.Is(err, blk.ErrInUse); got != tt.inUse || (!tt.inUse && err != nil) {
				t.Errorf("CheckQEMULocks = %v, want in use %v", err, tt.inUse)
			}
		})
	}
}
