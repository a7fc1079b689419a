package blk_test

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/virtio/blk"
)

// countingSync is a failingBackend that counts the Sync calls made on it,
// failed ones included.
type countingSync struct {
	*failingBackend
	calls atomic.Int32
}

func (c *countingSync) Sync() error {
	c.calls.Add(1)
	return c.failingBackend.Sync()
}

// A read-only disk's FLUSH is answered OK without a sync and never
// latches: nothing was written through it, and an image on squashfs or
// iso9660, whose fdatasync fails with EINVAL, would otherwise fail every
// flush and refuse every snapshot. A read-write disk over the same
// backend still syncs and latches.
func TestReadOnlyFlushNeverLatches(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ro        bool
		sync      error
		want      uint8 // status of each of three flushes
		wantSyncs int32
		wantErr   error
		wantWarn  int
	}{
		{"read-only, fdatasync EINVAL (squashfs)", true, unix.EINVAL, blk.StatusOK, 0, nil, 0},
		{"read-only, fdatasync EIO", true, unix.EIO, blk.StatusOK, 0, nil, 0},
		{"read-only, fdatasync works", true, nil, blk.StatusOK, 0, nil, 0},
		{"read-write, fdatasync EINVAL", false, unix.EINVAL, blk.StatusIOErr, 3, unix.EINVAL, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := &countingSync{failingBackend: &failingBackend{memBackend: newMemBackend(diskSize), syncer: tc.sync}}
			d, err := blk.New(be, diskSize, blk.Options{ReadOnly: tc.ro})
			if err != nil {
				t.Fatal(err)
			}
			r, log := newLoggedRig(t, d)
			for i := range 3 {
				if st := r.request(t, blk.TypeFlush, 0); st != tc.want {
					t.Errorf("flush %d: status %d, want %d", i, st, tc.want)
				}
			}
			if n := be.calls.Load(); n != tc.wantSyncs {
				t.Errorf("%d syncs, want %d", n, tc.wantSyncs)
			}
			if got := d.FlushError(); (got == nil) != (tc.wantErr == nil) || !errors.Is(got, tc.wantErr) {
				t.Errorf("FlushError() = %v, want %v", got, tc.wantErr)
			}
			if n := strings.Count(log.String(), "level=WARN"); n != tc.wantWarn {
				t.Errorf("%d warnings, want %d:\n%s", n, tc.wantWarn, log.String())
			}
		})
	}
}
