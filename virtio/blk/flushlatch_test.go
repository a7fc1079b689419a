package blk_test

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/virtio/blk"
)

// A flush that failed on the host stays failed: Linux reports a failed
// writeback once per open file, so the fdatasync after it succeeds though
// the data it covered never reached the disk. Every later FLUSH is
// answered IOERR (still syncing), reads and writes go on, a driver reset
// keeps the latch, and a disk opened again over the image starts clear.
func TestFlushFailureLatched(t *testing.T) {
	const reset = 99 // a driver reset instead of a request
	type step struct {
		op   uint32
		sync error // what this step's Sync returns
		want uint8
	}
	for _, tc := range []struct {
		name    string
		steps   []step
		wantErr error // FlushError after the steps
		syncs   int   // Sync calls that succeeded
	}{
		{"EIO once, then every flush fails", []step{
			{op: blk.TypeOut, want: blk.StatusOK},
			{op: blk.TypeFlush, sync: unix.EIO, want: blk.StatusIOErr},
			{op: blk.TypeFlush, want: blk.StatusIOErr},
			{op: blk.TypeFlush, want: blk.StatusIOErr},
		}, unix.EIO, 2},
		{"ENOSPC once; writes and reads still served", []step{
			{op: blk.TypeOut, want: blk.StatusOK},
			{op: blk.TypeFlush, sync: unix.ENOSPC, want: blk.StatusIOErr},
			{op: blk.TypeOut, want: blk.StatusOK},
			{op: blk.TypeIn, want: blk.StatusOK},
			{op: blk.TypeFlush, want: blk.StatusIOErr},
		}, unix.ENOSPC, 1},
		{"a driver reset keeps it", []step{
			{op: blk.TypeFlush, sync: unix.EIO, want: blk.StatusIOErr},
			{op: reset},
			{op: blk.TypeFlush, want: blk.StatusIOErr},
		}, unix.EIO, 1},
		{"the first error is kept", []step{
			{op: blk.TypeFlush, sync: unix.ENOSPC, want: blk.StatusIOErr},
			{op: blk.TypeFlush, sync: unix.EIO, want: blk.StatusIOErr},
		}, unix.ENOSPC, 0},
		{"no failure", []step{
			{op: blk.TypeOut, want: blk.StatusOK},
			{op: blk.TypeFlush, want: blk.StatusOK},
			{op: blk.TypeFlush, want: blk.StatusOK},
		}, nil, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := &failingBackend{memBackend: newMemBackend(diskSize)}
			d, err := blk.New(be, diskSize, blk.Options{})
			if err != nil {
				t.Fatal(err)
			}
			r, log := newLoggedRig(t, d)
			for i, s := range tc.steps {
				be.mu.Lock()
				be.syncer = s.sync
				be.mu.Unlock()
				if s.op == reset {
					d.Reset()
					continue
				}
				if st := r.request(t, s.op, uint64(i)); st != s.want {
					t.Errorf("step %d (type %d): status %d, want %d", i, s.op, st, s.want)
				}
			}
			if got := d.FlushError(); !errors.Is(got, tc.wantErr) || (got == nil) != (tc.wantErr == nil) {
				t.Errorf("FlushError() = %v, want %v", got, tc.wantErr)
			}
			be.memBackend.mu.Lock()
			syncs := be.memBackend.syncs
			be.memBackend.mu.Unlock()
			if syncs != tc.syncs {
				t.Errorf("%d successful syncs, want %d (a latched disk still syncs)", syncs, tc.syncs)
			}
			got := log.String()
			wantWarn := 0
			if tc.wantErr != nil {
				wantWarn = 1
			}
			if n := strings.Count(got, "level=WARN"); n != wantWarn {
				t.Errorf("%d warnings, want %d:\n%s", n, wantWarn, got)
			}
			if wantWarn == 1 && !strings.Contains(got, "every later one get an I/O error until the image is opened again") {
				t.Errorf("the warning does not say later flushes fail:\n%s", got)
			}

			// Opened again (a new disk over the image, as a restored
			// VM's): a fresh start.
			d2, err := blk.New(be, diskSize, blk.Options{})
			if err != nil {
				t.Fatal(err)
			}
			be.mu.Lock()
			be.syncer = nil
			be.mu.Unlock()
			if st := newBlkRig(t, d2).request(t, blk.TypeFlush, 0); st != blk.StatusOK || d2.FlushError() != nil {
				t.Errorf("reopened disk: flush status %d, FlushError %v; want OK, nil", st, d2.FlushError())
			}
		})
	}
}
