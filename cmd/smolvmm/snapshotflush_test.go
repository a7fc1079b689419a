package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/snapshot"
	"github.com/smolvmm/smolvmm/vmm"
)

// A snapshot refused because a disk's flush failed on the host
// (vmm.DiskFlushError) is said with the disk, its image and what to do
// about that file system, whatever the flush's errno: before, an ENOSPC
// flush got the advice for a full snapshot directory ("free space on
// DIR or give --snapshot another file", which cannot help), and an EIO
// one no advice at all.
func TestSnapshotFlushFailedAdvice(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vm.snap")
	tg, err := snapshot.OpenTarget(path)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	image := "/srv/full/disk.img"
	for _, errno := range []unix.Errno{unix.ENOSPC, unix.EIO} {
		t.Run(errno.Error(), func(t *testing.T) {
			flush := fmt.Errorf("fdatasync %s: %w", image, errno)
			err := &vmm.Error{Op: "snapshot", Err: &vmm.DiskFlushError{Disk: "ld1", Path: image, Err: flush}}
			got := snapshotWriteAdvice(tg, err)
			msg := got.Error()
			for _, want := range []string{"--snapshot " + path + ": no snapshot is taken", "ld1 (disk image " + image + ")", errno.Error(),
				"Free space on (or repair) the file system that holds " + image, "snapshot a new run"} {
				if !strings.Contains(msg, want) {
					t.Errorf("%q; want it to say %q", msg, want)
				}
			}
			if strings.Contains(msg, "another file") {
				t.Errorf("%q: advises on the snapshot's file, which is not at fault", msg)
			}
			if !errors.Is(got, errno) {
				t.Errorf("%v: does not wrap %v", got, errno)
			}
		})
	}
}
