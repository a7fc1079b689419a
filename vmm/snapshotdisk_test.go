package vmm_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/snapshot"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/vmm"
)

// snapshotVblk boots the vblk guest on a fresh image and snapshots it
// with its driver live, before it writes; it returns the image, its
// bytes and the snapshot.
func snapshotVblk(t *testing.T) (disk string, img []byte, path string) {
	t.Helper()
	needKVM(t)
	disk, img = diskImage(t)
	return disk, img, snapshotVblkOn(t, disk)
}

// snapshotVblkOn is snapshotVblk on the image disk, a fresh one
// (diskImage's); it returns the snapshot.
func snapshotVblkOn(t *testing.T, disk string) (path string) {
	t.Helper()
	path, _ = snapshotVblkAt(t, disk, false, true) // mtimeback_test.go
	return path
}

// copyImage writes a new file at dst with src's bytes and, if keepMtime,
// its modification time (cp -p).
func copyImage(t *testing.T, src, dst string, keepMtime bool) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if keepMtime {
		fi, err := os.Stat(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(dst, fi.ModTime(), fi.ModTime()); err != nil {
			t.Fatal(err)
		}
	}
}

// withoutDiskDigest rewrites the snapshot at path as one written before
// disk digests were recorded: its disks' Content removed.
func withoutDiskDigest(t *testing.T, path string) string {
	t.Helper()
	return editState(t, path, func(st map[string]any) {
		disks, _ := st["Disks"].([]any)
		if len(disks) == 0 {
			t.Fatalf("no disks in the state: %v", st["Disks"])
		}
		for _, d := range disks {
			if _, ok := d.(map[string]any)["Content"]; !ok {
				t.Fatalf("the snapshot records no disk content: %v", d)
			}
			delete(d.(map[string]any), "Content")
		}
	})
}

// TestRestoreDiskCopy: a restore accepts, besides the snapshot's image
// unchanged, a file of the same size with its content (a copy per clone,
// with or without its mtime, or the image touched), and the restored
// guest writes to that file alone; two clones restored at once from one
// snapshot each write their own copy. A file of the same size with other
// content, or the image changed in place, is refused, naming both files
// and both digests; a snapshot without the digest (written before it was
// recorded) accepts the unchanged image only.
func TestRestoreDiskCopy(t *testing.T) {
	edit := func(path string) {
		t.Helper()
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt([]byte{0xee}, 100<<10); err != nil {
			t.Fatal(err)
		}
	}
	touch := func(path string) {
		t.Helper()
		later := time.Now().Add(time.Hour)
		if err := os.Chtimes(path, later, later); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		// prepare returns the images the clones restore against (as
		// many clones), from the snapshot's image and the snapshot.
		prepare func(t *testing.T, disk, snap string) (images []string, snapPath string)
		refused string // the refusal's text; "" when accepted
	}{
		{"the image unchanged", func(t *testing.T, disk, snap string) ([]string, string) {
			return []string{disk}, snap
		}, ""},
		{"a copy, mtime kept", func(t *testing.T, disk, snap string) ([]string, string) {
			c := filepath.Join(t.TempDir(), "copy.img")
			copyImage(t, disk, c, true)
			return []string{c}, snap
		}, ""},
		{"a copy, new mtime", func(t *testing.T, disk, snap string) ([]string, string) {
			c := filepath.Join(t.TempDir(), "copy.img")
			copyImage(t, disk, c, false)
			return []string{c}, snap
		}, ""},
		{"the image touched", func(t *testing.T, disk, snap string) ([]string, string) {
			touch(disk)
			return []string{disk}, snap
		}, ""},
		{"two clones, a copy each", func(t *testing.T, disk, snap string) ([]string, string) {
			a, b := filepath.Join(t.TempDir(), "a.img"), filepath.Join(t.TempDir(), "b.img")
			copyImage(t, disk, a, true)
			copyImage(t, disk, b, false)
			return []string{a, b}, snap
		}, ""},
		{"a copy with other content", func(t *testing.T, disk, snap string) ([]string, string) {
			c := filepath.Join(t.TempDir(), "other.img")
			copyImage(t, disk, c, true)
			edit(c)
			return []string{c}, snap
		}, "other.img): disk image changed since the snapshot: content crc32c:"},
		{"the image changed in place", func(t *testing.T, disk, snap string) ([]string, string) {
			edit(disk)
			return []string{disk}, snap
		}, "disk image changed since the snapshot: modified after the snapshot: content crc32c:"},
		{"no digest, the image unchanged", func(t *testing.T, disk, snap string) ([]string, string) {
			return []string{disk}, withoutDiskDigest(t, snap)
		}, ""},
		{"no digest, a copy", func(t *testing.T, disk, snap string) ([]string, string) {
			c := filepath.Join(t.TempDir(), "copy.img")
			copyImage(t, disk, c, true)
			return []string{c}, withoutDiskDigest(t, snap)
		}, "records no digest of the content to accept a copy by"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			disk, img, snap := snapshotVblk(t)
			images, snapPath := tt.prepare(t, disk, snap)
			before := make([][]byte, len(images))
			for i, p := range images {
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				before[i] = b
			}
			if tt.refused != "" {
				m, err := vmm.Restore(vmm.Config{Disks: []blk.Spec{{Path: images[0], Options: blk.Options{Serial: "smolvmm-test"}}}}, snapPath)
				if err == nil {
					m.Close()
					t.Fatal("Restore succeeded")
				}
				// Both files named: the one given and the snapshot's.
				if !errors.Is(err, vmm.ErrDiskChanged) || !strings.Contains(err.Error(), tt.refused) ||
					!strings.Contains(err.Error(), images[0]) || (images[0] != disk && !strings.Contains(err.Error(), disk)) {
					t.Fatalf("Restore: %v\nwant ErrDiskChanged mentioning %q, %s and %s", err, tt.refused, images[0], disk)
				}
				return
			}
			outs := make([]string, len(images))
			errs := make([]error, len(images))
			var wg sync.WaitGroup
			for i, p := range images {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var e vmm.Exit
					outs[i], e, errs[i] = restoreRun(t, vmm.Config{Disks: []blk.Spec{{Path: p, Options: blk.Options{Serial: "smolvmm-test"}}}}, snapPath)
					if errs[i] == nil && (e.Reason != vmm.ExitDebug || e.Code != 0) {
						errs[i] = fmt.Errorf("exit %+v, want debug-exit 0", e)
					}
				}()
			}
			wg.Wait()
			for i, p := range images {
				if errs[i] != nil {
					t.Fatalf("clone %d on %s: %v\n%s", i, p, errs[i], outs[i])
				}
				wantLines(t, outs[i], "vblk: wrote sector 1 seq=5\r\n", "vblk: readback ok\r\n", "vblk: ok\r\n")
				want := append([]byte(nil), before[i]...)
				copy(want[512:], guests.VblkPattern(5))
				if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, want) {
					t.Errorf("clone %d's image %s after its write differs (%v)", i, p, err)
				}
			}
			if images[0] != disk {
				if b, err := os.ReadFile(disk); err != nil || !bytes.Equal(b, img) {
					t.Errorf("the snapshot's image changed, its clones had copies (%v)", err)
				}
			}
		})
	}
}

// stateMap is a snapshot's state as StateJSON gives it, its numbers as
// json.Number: a float64 would round the nanoseconds of the disks' mtimes.
func stateMap(t *testing.T, state []byte) map[string]any {
	t.Helper()
	j, err := vmm.StateJSON(state)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	if err := dec.Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// editState rewrites the snapshot at path with its state edited by edit
// (the state as StateJSON gives it, numbers as json.Number), and returns
// the new file.
func editState(t *testing.T, path string, edit func(st map[string]any)) string {
	t.Helper()
	f, err := snapshot.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st := stateMap(t, f.State)
	edit(st)
	j, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	mem, err := f.MapMemory()
	if err != nil {
		t.Fatal(err)
	}
	return writeSnapshotCopy(t, f, j, mem)
}

// TestRestoreSnapshotDiskPaths: a restore given no disks opens the
// snapshot's own only while each path names the very file it recorded,
// unchanged; anything else at the path, or a snapshot that names
// another file (edited to, with the image's content), is refused with
// ErrDiskNotRecorded before the file is opened (a directory, which an
// open for writing would refuse otherwise), and the file is left as it
// was. The same file given in Disks is accepted by its content.
func TestRestoreSnapshotDiskPaths(t *testing.T) {
	tests := []struct {
		name string
		// prepare returns the snapshot to restore and the file its disk
		// path names, from the snapshot's image and the snapshot.
		prepare func(t *testing.T, disk, snap string) (snapPath, named string)
		refused string // the refusal's text; "" when accepted
	}{
		{"the image unchanged", func(t *testing.T, disk, snap string) (string, string) {
			return snap, disk
		}, ""},
		{"the image touched", func(t *testing.T, disk, snap string) (string, string) {
			later := time.Now().Add(time.Hour)
			if err := os.Chtimes(disk, later, later); err != nil {
				t.Fatal(err)
			}
			return snap, disk
		}, "modified at "},
		{"a copy in the image's place", func(t *testing.T, disk, snap string) (string, string) {
			c := filepath.Join(filepath.Dir(disk), "copy.img")
			copyImage(t, disk, c, true)
			if err := os.Rename(c, disk); err != nil {
				t.Fatal(err)
			}
			return snap, disk
		}, "the snapshot recorded inode"},
		{"the snapshot names a copy", func(t *testing.T, disk, snap string) (string, string) {
			c := filepath.Join(t.TempDir(), "other.img")
			copyImage(t, disk, c, true)
			return editState(t, snap, func(st map[string]any) {
				st["Disks"].([]any)[0].(map[string]any)["Path"] = c
			}), c
		}, "the snapshot recorded inode"},
		{"the snapshot names a directory", func(t *testing.T, disk, snap string) (string, string) {
			d := t.TempDir()
			return editState(t, snap, func(st map[string]any) {
				st["Disks"].([]any)[0].(map[string]any)["Path"] = d
			}), d
		}, "the snapshot recorded inode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			disk, _, snap := snapshotVblk(t)
			snapPath, named := tt.prepare(t, disk, snap)
			before, _ := os.ReadFile(named)
			fi, err := os.Stat(named)
			if err != nil {
				t.Fatal(err)
			}
			m, err := vmm.Restore(vmm.Config{}, snapPath)
			if err == nil {
				m.Close()
			}
			if tt.refused == "" {
				if err != nil {
					t.Fatalf("Restore: %v", err)
				}
				return
			}
			if !errors.Is(err, vmm.ErrDiskNotRecorded) || !strings.Contains(err.Error(), tt.refused) || !strings.Contains(err.Error(), named) {
				t.Fatalf("Restore: %v\nwant ErrDiskNotRecorded mentioning %q and %s", err, tt.refused, named)
			}
			after, _ := os.ReadFile(named)
			if fi2, err := os.Stat(named); err != nil || !bytes.Equal(before, after) || !fi2.ModTime().Equal(fi.ModTime()) {
				t.Errorf("%s changed by the refused restore (%v)", named, err)
			}
			if fi.IsDir() {
				return
			}
			// Given, the same file is restored against by its content.
			m, err = vmm.Restore(vmm.Config{Disks: []blk.Spec{{Path: named}}}, snapPath)
			if err != nil {
				t.Fatalf("Restore with the disk given: %v", err)
			}
			m.Close()
		})
	}
}

// TestRestoreSnapshotOwner: a restore given no disks takes them from the
// snapshot only when the snapshot file is this user's (or root's) and
// neither its group nor others may write it. A snapshot of another uid
// naming the image (its device, inode and mtime right: stat(2) tells
// them to anyone), or one its group or others may write, is refused
// before any disk is opened with a SnapshotOwnerError naming the file,
// its owner or mode and the disk, begun by PrepareRestore or not, and
// the image is left as it was; given in Disks, the same image is
// restored against.
func TestRestoreSnapshotOwner(t *testing.T) {
	disk, img, snap := snapshotVblk(t)
	tests := []struct {
		name    string
		uid     int // the snapshot's owner; -1 for this process's user
		mode    os.FileMode
		refused string // the refusal's text (EUID this process's); "" when accepted
	}{
		{"yours", -1, 0o600, ""},
		{"yours, others may read", -1, 0o644, ""},
		{"yours, group-writable", -1, 0o620, "(owner uid EUID, mode 0620) is writable by its group"},
		{"yours, writable by others", -1, 0o602, "(owner uid EUID, mode 0602) is writable by others"},
		{"another user's", 65534, 0o600, "is owned by uid 65534, neither this process's user (uid EUID) nor root"},
		{"another user's, writable by all", 65534, 0o666, "is owned by uid 65534, neither"},
	}
	euid := os.Geteuid()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.uid >= 0 && euid != 0 {
				t.Skip("needs root to give the snapshot another owner")
			}
			path := filepath.Join(t.TempDir(), "vblk.snap")
			copyImage(t, snap, path, false)
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			if tt.uid >= 0 {
				if err := os.Chown(path, tt.uid, -1); err != nil {
					t.Fatal(err)
				}
			}
			for _, prepared := range []bool{false, true} {
				var opts []vmm.RestoreOption
				if prepared {
					p := vmm.PrepareRestore("", path)
					defer p.Close()
					opts = append(opts, vmm.WithPrepared(p))
				}
				m, err := vmm.Restore(vmm.Config{}, path, opts...)
				if err == nil {
					m.Close()
				}
				if tt.refused == "" {
					if err != nil {
						t.Fatalf("Restore (prepared %t): %v", prepared, err)
					}
					continue
				}
				var oe *vmm.SnapshotOwnerError
				text := "snapshot " + path + " " + strings.ReplaceAll(tt.refused, "EUID", fmt.Sprint(euid))
				if !errors.Is(err, vmm.ErrSnapshotNotTrusted) || !errors.As(err, &oe) || oe.Path != path ||
					len(oe.Disks) != 1 || oe.Disks[0] != disk || !strings.Contains(err.Error(), text) || !strings.Contains(err.Error(), "(it names "+disk+")") {
					t.Fatalf("Restore (prepared %t): %v\nwant a SnapshotOwnerError mentioning %q and %s", prepared, err, text, disk)
				}
			}
			if b, err := os.ReadFile(disk); err != nil || !bytes.Equal(b, img) {
				t.Fatalf("the image changed (%v)", err)
			}
			// Given, the image is restored against.
			m, err := vmm.Restore(vmm.Config{Disks: []blk.Spec{{Path: disk}}}, path)
			if err != nil {
				t.Fatalf("Restore with the disk given: %v", err)
			}
			m.Close()
		})
	}
}
