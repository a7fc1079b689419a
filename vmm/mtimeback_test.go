package vmm_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/vmm"
)

// snapshotVblkAt snapshots the vblk guest at ready on disk (attached
// read-only with ro), then, unless exit, lets it go on to write sector 1
// and end. It returns the snapshot's path and the guest's output.
func snapshotVblkAt(t *testing.T, disk string, ro, exit bool) (path, out string) {
	t.Helper()
	needKVM(t)
	path = filepath.Join(t.TempDir(), "vblk.snap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var snapErr error
	out, e, err := boot(t, vmm.Config{Kernel: guest(t, "vblk"), Append: "ready seq=5", MemoryMiB: 32,
		Disks:           []blk.Spec{{Path: disk, Options: blk.Options{ReadOnly: ro, Serial: "smolvmm-test"}}},
		SnapshotOnReady: f, SnapshotExit: exit, OnSnapshot: func(_ vmm.SnapshotInfo, err error) { snapErr = err }}, 30*time.Second)
	if err != nil || snapErr != nil || (exit && e.Reason != vmm.ExitSnapshot) {
		t.Fatalf("snapshot run: exit %v, %v, snapshot %v\n%s", e, err, snapErr, out)
	}
	return path, out
}

// restoreCounting restores snap, given disk (attached read-only with ro)
// or, without given, its own, and returns the restore's error and how
// many images it read for their content.
func restoreCounting(t *testing.T, snap, disk string, ro, given bool) (int, error) {
	t.Helper()
	var cfg vmm.Config
	if given {
		cfg.Disks = []blk.Spec{{Path: disk, Options: blk.Options{ReadOnly: ro, Serial: "smolvmm-test"}}}
	}
	read, restore := vmm.CountDiskDigests()
	defer restore()
	m, err := vmm.Restore(cfg, snap)
	if err == nil {
		m.Close()
	}
	return read(), err
}

// TestSnapshotSetsDiskMtimeBack: a snapshot of a guest whose read-write
// image was modified just before it (now, or ahead of the host's clock)
// recorded that time, too close to its moment to prove the image
// unchanged, and every restore of the image, unchanged, read it whole
// for its content. The snapshot now sets the image's time back to more
// than 3 s before its moment and records that, so such a restore reads
// nothing. An image whose time is old enough keeps it, and so does a
// read-only one, however recent (read at the restore instead).
func TestSnapshotSetsDiskMtimeBack(t *testing.T) {
	tests := []struct {
		name  string
		ro    bool
		mtime time.Duration // from now, before the snapshot
		back  bool          // its mtime set back
		reads int           // images a restore reads for their content
	}{
		{"read-write, modified now", false, 0, true, 0},
		{"read-write, a minute ahead", false, time.Minute, true, 0},
		{"read-write, an hour old", false, -time.Hour, false, 0},
		{"read-only, modified now", true, 0, false, 1},
		{"read-only, an hour old", true, -time.Hour, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			disk, img := diskImage(t)
			mtime := time.Now().Add(tt.mtime)
			if err := os.Chtimes(disk, mtime, mtime); err != nil {
				t.Fatal(err)
			}
			before := time.Now()
			snap, _ := snapshotVblkAt(t, disk, tt.ro, true)
			after := time.Now()
			ids, err := vmm.SnapshotDisks(snap)
			if err != nil || len(ids) != 1 {
				t.Fatalf("SnapshotDisks: %v, %v", ids, err)
			}
			rec := ids[0]
			if rec.TakenNs < before.UnixNano() || rec.TakenNs > after.UnixNano() {
				t.Fatalf("recorded moment %d, want within the snapshot run [%d, %d]", rec.TakenNs, before.UnixNano(), after.UnixNano())
			}
			fi, err := os.Stat(disk)
			if err != nil {
				t.Fatal(err)
			}
			if fi.ModTime().UnixNano() != rec.MtimeNs {
				t.Fatalf("the image's mtime %v, the snapshot recorded %v", fi.ModTime(), time.Unix(0, rec.MtimeNs))
			}
			if tt.back {
				if rec.MtimeNs >= rec.TakenNs-int64(3*time.Second) {
					t.Errorf("recorded mtime %v, not more than 3s before the moment %v", time.Unix(0, rec.MtimeNs), time.Unix(0, rec.TakenNs))
				}
			} else if !fi.ModTime().Equal(mtime) {
				t.Errorf("the image's mtime %v, want %v untouched", fi.ModTime(), mtime)
			}
			if b, err := os.ReadFile(disk); err != nil || !bytes.Equal(b, img) {
				t.Fatalf("the image changed by the snapshot (%v)", err)
			}
			for _, given := range []bool{true, false} {
				if n, err := restoreCounting(t, snap, disk, tt.ro, given); err != nil || n != tt.reads {
					t.Errorf("Restore (disk given %t): %v, %d images read for their content; want restored, %d", given, err, n, tt.reads)
				}
			}
		})
	}
}

// TestDiskWrittenAfterMtimeSetBack: an image whose time the snapshot set
// back and that is written afterwards, by another program or by the
// guest itself, which ran on after the snapshot, has its time moved off
// the one recorded: a restore given it reads it and refuses it for its
// content, one taking the snapshot's own path refuses it as no longer
// the file recorded.
func TestDiskWrittenAfterMtimeSetBack(t *testing.T) {
	tests := []struct {
		name string
		exit bool // the guest stopped at the snapshot
	}{
		{"written by another program", true},
		{"written by the guest running on", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			disk, img := diskImage(t)
			now := time.Now()
			if err := os.Chtimes(disk, now, now); err != nil {
				t.Fatal(err)
			}
			snap, out := snapshotVblkAt(t, disk, false, tt.exit)
			if tt.exit {
				flipImageByte(t, disk, img)
			} else if !strings.Contains(out, "vblk: wrote sector 1 seq=5") {
				t.Fatalf("the guest did not write after the snapshot:\n%s", out)
			}
			if b, err := os.ReadFile(disk); err != nil || bytes.Equal(b, img) {
				t.Fatalf("the image unchanged after the write (%v)", err)
			}
			ids, err := vmm.SnapshotDisks(snap)
			if err != nil || len(ids) != 1 {
				t.Fatalf("SnapshotDisks: %v, %v", ids, err)
			}
			fi, err := os.Stat(disk)
			if err != nil {
				t.Fatal(err)
			}
			if fi.ModTime().UnixNano() == ids[0].MtimeNs {
				t.Errorf("the write left the image's mtime %v, the one recorded", fi.ModTime())
			}
			n, err := restoreCounting(t, snap, disk, false, true)
			if !errors.Is(err, vmm.ErrDiskChanged) || !strings.Contains(err.Error(), "modified after the snapshot: content ") || n != 1 {
				t.Errorf("Restore given the image: %v, %d images read; want ErrDiskChanged for its content, 1 read", err, n)
			}
			_, err = restoreCounting(t, snap, disk, false, false)
			if !errors.Is(err, vmm.ErrDiskNotRecorded) || !strings.Contains(err.Error(), "modified at ") {
				t.Errorf("Restore of its own disk: %v; want ErrDiskNotRecorded, modified", err)
			}
		})
	}
}
