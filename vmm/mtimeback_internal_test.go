package vmm

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fsImmutableFL is <linux/fs.h>'s FS_IMMUTABLE_FL, which x/sys/unix
// does not name.
const fsImmutableFL = 0x10

// TestSetMtimeBack: a file open read-write with a recent modification
// time (now, a second ago, or ahead of the moment, the clocks skewed) has
// it set back to more than the margin before both the moment and its old
// time, which a restore then takes as proof, its access time untouched;
// the FileInfo returned is the file's. A file open read-only, or one
// whose time cannot be set (immutable: EPERM, even for root), keeps its
// time, and the FileInfo given comes back without an error.
func TestSetMtimeBack(t *testing.T) {
	taken := time.Now()
	atime := time.Unix(1_600_000_000, 123456789)
	tests := []struct {
		name      string
		mtime     time.Time
		readOnly  bool
		immutable bool
		back      bool // its time set back
	}{
		{"read-write, at the moment", taken, false, false, true},
		{"read-write, a second before", taken.Add(-time.Second), false, false, true},
		{"read-write, a minute ahead", taken.Add(time.Minute), false, false, true},
		{"read-only, at the moment", taken, true, false, false},
		{"read-write, immutable", taken, false, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "disk.img")
			if err := os.WriteFile(path, make([]byte, 4096), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(path, atime, tt.mtime); err != nil {
				t.Fatal(err)
			}
			flag := os.O_RDWR
			if tt.readOnly {
				flag = os.O_RDONLY
			}
			f, err := os.OpenFile(path, flag, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if tt.immutable {
				fd := int(f.Fd())
				fl, err := unix.IoctlGetInt(fd, unix.FS_IOC_GETFLAGS)
				if err == nil {
					err = unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, fl|fsImmutableFL)
				}
				if err != nil {
					t.Skipf("cannot make %s immutable (a file system without it, or no CAP_LINUX_IMMUTABLE): %v", path, err)
				}
				defer unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, fl)
			}
			fi, err := f.Stat()
			if err != nil {
				t.Fatal(err)
			}
			got, err := setMtimeBack(f, fi, taken)
			if err != nil {
				t.Fatalf("setMtimeBack: %v", err)
			}
			now, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if !now.ModTime().Equal(got.ModTime()) {
				t.Errorf("returned mtime %v, the file's %v", got.ModTime(), now.ModTime())
			}
			if !tt.back {
				if !now.ModTime().Equal(tt.mtime) || got != fi {
					t.Errorf("mtime %v (returned %v), want %v unchanged and the FileInfo given", now.ModTime(), got.ModTime(), tt.mtime)
				}
				return
			}
			base := taken
			if tt.mtime.Before(base) {
				base = tt.mtime
			}
			if d := base.Sub(now.ModTime()); d <= 3*time.Second {
				t.Errorf("mtime %v, %v before the earlier of the moment %v and the old mtime %v: want more than 3s", now.ModTime(), d, taken, tt.mtime)
			}
			if !mtimeProvesUnchanged(DiskIdentity{MtimeNs: now.ModTime().UnixNano(), TakenNs: taken.UnixNano()}) {
				t.Errorf("mtime %v set back does not prove the image unchanged at moment %v", now.ModTime(), taken)
			}
			st := now.Sys().(*syscall.Stat_t)
			if a := time.Unix(st.Atim.Unix()); !a.Equal(atime) {
				t.Errorf("atime %v, want %v untouched", a, atime)
			}
		})
	}
}

// TestSetMtimeBackAgain: an image whose time a snapshot set back, written
// just after it (within the same second, as a guest running on does) and
// snapshotted again later, is not given the time the first snapshot
// recorded: that snapshot's restore would take the image written since
// as unchanged and not read it. Both were set to the same whole second,
// 4 s before their base: 10:00:00.5 and 10:00:00.7 gave 09:59:56.
func TestSetMtimeBackAgain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(path, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sec := time.Now().Add(-time.Hour).Truncate(time.Second)
	setBack := func(mtime, taken time.Time) time.Time {
		t.Helper()
		if err := os.Chtimes(path, time.Time{}, mtime); err != nil {
			t.Fatal(err)
		}
		fi, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		got, err := setMtimeBack(f, fi, taken)
		if err != nil {
			t.Fatal(err)
		}
		if !got.ModTime().Before(mtime) {
			t.Skipf("this file system keeps %v: no time set back (it stores no nanoseconds)", got.ModTime())
		}
		return got.ModTime()
	}
	// Written at .5, snapshotted at .6; written again at .7 (the
	// guest running on), snapshotted a minute later.
	first := setBack(sec.Add(500*time.Millisecond), sec.Add(600*time.Millisecond))
	second := setBack(sec.Add(700*time.Millisecond), sec.Add(time.Minute))
	if first.Equal(second) {
		t.Errorf("both snapshots set the time back to %v: the first's restore would trust the image written since", first)
	}
}
