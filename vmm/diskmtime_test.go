package vmm_test

import (
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestRestoreDiskMtimeTick: a disk image written after the snapshot
// within the tick of its file system's clock keeps the modification time
// the snapshot recorded (whole seconds on ext3 or a small-inode ext4),
// which is simulated here by setting it back with os.Chtimes. A restore
// took the same device, inode and time as proof the file was unchanged
// and ran the guest on content it had not seen. It now reads the image,
// and refuses it for its content, unless the recorded time is older than
// the moment the snapshot took it by more than 3 s; an image that old
// and unchanged is still not read. The moment's record is edited to one
// a second after the mtime (the image written just before the snapshot),
// to one before it (the clocks skewed), or removed (a snapshot written
// before it was recorded): each has the image read, by a restore given
// the disk or taking the snapshot's own.
func TestRestoreDiskMtimeTick(t *testing.T) {
	// Set back before the snapshot, so that the moment's record is what
	// decides, not how long the snapshot took.
	hourAgo := time.Now().Add(-time.Hour).Truncate(time.Second)
	tests := []struct {
		name string
		// taken edits the recorded moment, given the recorded mtime;
		// nil keeps the snapshot's own.
		taken func(mtimeNs int64) (takenNs int64, ok bool)
		write bool // written after the snapshot, its mtime set back
		// refused is the refusal's text ("" when accepted).
		refused string
		reads   int // images read for their content digest
	}{
		{"an hour old, unchanged", nil, false, "", 0},
		{"a second before the snapshot, unchanged", second(1), false, "", 1},
		{"a second before the snapshot, written in its tick", second(1), true,
			"its modification time " + hourAgo.UTC().Format(time.RFC3339Nano) + " unchanged (not older than the snapshot's moment by more than 3s", 1},
		{"after the snapshot's moment, unchanged", second(-1), false, "", 1},
		{"after the snapshot's moment, written in its tick", second(-1), true, "unchanged (not older than the snapshot's moment", 1},
		{"moment not recorded, unchanged", unrecorded, false, "", 1},
		{"moment not recorded, written in its tick", unrecorded, true, "unchanged (the snapshot does not record its moment)", 1},
	}
	for _, tt := range tests {
		for _, given := range []bool{true, false} {
			name := tt.name + "/own disks"
			if given {
				name = tt.name + "/disk given"
			}
			t.Run(name, func(t *testing.T) {
				disk, img := diskImage(t)
				if err := os.Chtimes(disk, hourAgo, hourAgo); err != nil {
					t.Fatal(err)
				}
				snap := snapshotVblkOn(t, disk)
				ids, err := vmm.SnapshotDisks(snap)
				if err != nil || len(ids) != 1 {
					t.Fatalf("SnapshotDisks: %v, %v", ids, err)
				}
				rec := ids[0]
				if rec.MtimeNs != hourAgo.UnixNano() || rec.TakenNs < time.Now().Add(-time.Minute).UnixNano() || rec.TakenNs > time.Now().UnixNano() {
					t.Fatalf("recorded mtime %d, moment %d; want %d and within the last minute", rec.MtimeNs, rec.TakenNs, hourAgo.UnixNano())
				}
				if tt.taken != nil {
					snap = editState(t, snap, func(st map[string]any) {
						d := st["Disks"].([]any)[0].(map[string]any)
						if ns, ok := tt.taken(rec.MtimeNs); ok {
							d["TakenNs"] = json.Number(strconv.FormatInt(ns, 10))
						} else {
							delete(d, "TakenNs")
						}
					})
				}
				if tt.write {
					flipImageByte(t, disk, img)
					mtime := time.Unix(0, rec.MtimeNs)
					if err := os.Chtimes(disk, mtime, mtime); err != nil {
						t.Fatal(err)
					}
				}
				var cfg vmm.Config
				if given {
					cfg.Disks = []blk.Spec{{Path: disk, Options: blk.Options{Serial: "smolvmm-test"}}}
				}
				read, restore := vmm.CountDiskDigests()
				defer restore()
				m, err := vmm.Restore(cfg, snap)
				if err == nil {
					m.Close()
				}
				if tt.refused == "" && err != nil {
					t.Fatalf("Restore: %v", err)
				}
				if tt.refused != "" && (!errors.Is(err, vmm.ErrDiskChanged) || !strings.Contains(err.Error(), tt.refused) || !strings.Contains(err.Error(), disk)) {
					t.Fatalf("Restore: %v\nwant ErrDiskChanged naming %s, with %q", err, disk, tt.refused)
				}
				if n := read(); n != tt.reads {
					t.Errorf("Restore read %d images for their content, want %d", n, tt.reads)
				}
			})
		}
	}
}

// second returns a TestRestoreDiskMtimeTick edit of the recorded moment:
// n seconds after the mtime.
func second(n int64) func(int64) (int64, bool) {
	return func(mtimeNs int64) (int64, bool) { return mtimeNs + n*int64(time.Second), true }
}

// unrecorded is a TestRestoreDiskMtimeTick edit that removes the moment.
func unrecorded(int64) (int64, bool) { return 0, false }

// flipImageByte writes over the byte at 100 KiB of disk, whose bytes were
// img, its complement: a change of content its guest never made.
func flipImageByte(t *testing.T, disk string, img []byte) {
	t.Helper()
	f, err := os.OpenFile(disk, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{^img[100<<10]}, 100<<10); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
