//go:build linux

package hostdir

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestTimes: on a 32-bit host, fstat and fstatat read a time past 2038
// cut to 32 bits (2120 as 1983), and os.Chtimes set one so. Every way
// this package reads a status gives the time Lutimes set, to the
// nanosecond, before 1970 and past 2038 and 2106 too.
func TestTimes(t *testing.T) {
	for _, ts := range []Timespec{
		{-100, 5},
		{1600000000, 123456789},
		{1<<31 - 1, 999999999},
		{1 << 31, 0},
		{1<<32 + 7, 1},
		{4733694245, 500}, // 2120-01-02 03:04:05
		{9300000000, 2},   // 2264, past Timespec.Nano
	} {
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "f"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("f", filepath.Join(dir, "l")); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"d", "f", "l"} {
			if err := Lutimes(filepath.Join(dir, name), ts, ts); err != nil {
				t.Fatal(err)
			}
		}
		// Asked of statx itself, not of what is tested.
		var x unix.Statx_t
		if err := unix.Statx(unix.AT_FDCWD, filepath.Join(dir, "f"), unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MTIME, &x); err != nil {
			t.Fatal(err)
		}
		if x.Mtime.Sec != ts.Sec || int64(x.Mtime.Nsec) != ts.Nsec {
			// ext4 with 128-byte inodes keeps 1901 to 2038 only.
			t.Logf("%+v: the file system keeps %+v: not its time", ts, x.Mtime)
			continue
		}
		got := map[string]Timespec{}
		read := func(how string, st Stat, err error) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s: %v", how, err)
			}
			got[how] = st.Mtim
		}
		root, _, err := OpenRoot(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"d", "f", "l"} {
			st, err := root.Lstat(name)
			read("Lstat "+name, st, err)
			st, err = LstatPath(filepath.Join(dir, name))
			read("LstatPath "+name, st, err)
		}
		st, err := StatPath(filepath.Join(dir, "l"))
		read("StatPath l (f)", st, err)
		sub, st, err := root.OpenDir("d")
		read("OpenDir d", st, err)
		sub.Close()
		f, st, err := root.OpenFile("f")
		read("OpenFile f", st, err)
		st, err = Fstat(int(f.Fd()), "f")
		read("Fstat f", st, err)
		f.Close()
		d, st, err := OpenRoot(filepath.Join(dir, "d"))
		read("OpenRoot d", st, err)
		d.Close()
		err = Walk(context.Background(), root, func(e Entry) error {
			got["Walk "+e.Rel] = e.St.Mtim
			return nil
		}, func(rel string, _ fs.FileMode, err error) error { return err }, nil)
		root.Close()
		if err != nil {
			t.Fatal(err)
		}
		for how, m := range got {
			if m != ts {
				t.Errorf("%s: mtime %+v, want %+v", how, m, ts)
			}
		}
		if len(got) != 14 {
			t.Errorf("%d reads, want 14: %v", len(got), got)
		}
	}
}

// TestStatFields: apart from its times' width, a Stat holds what the
// host's struct stat does, device numbers encoded alike.
func TestStatFields(t *testing.T) {
	dir := t.TempDir()
	for _, err := range []error{
		os.WriteFile(filepath.Join(dir, "f"), []byte("12345"), 0o4750),
		os.Link(filepath.Join(dir, "f"), filepath.Join(dir, "hard")),
		os.Mkdir(filepath.Join(dir, "d"), 0o1777),
		os.Symlink("f", filepath.Join(dir, "l")),
		syscall.Mkfifo(filepath.Join(dir, "p"), 0o600),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "f"), 0o4750); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, "f"), filepath.Join(dir, "d"), filepath.Join(dir, "l"), filepath.Join(dir, "p"), "/dev/null", "/"} {
		var want unix.Stat_t
		if err := unix.Lstat(p, &want); err != nil {
			t.Fatal(err)
		}
		st, err := LstatPath(p)
		if err != nil {
			t.Fatal(err)
		}
		w := Stat{
			Mode: want.Mode, Uid: want.Uid, Gid: want.Gid, Nlink: uint64(want.Nlink),
			Dev: uint64(want.Dev), Ino: want.Ino, Rdev: uint64(want.Rdev), Size: want.Size,
			Mtim: Timespec{int64(want.Mtim.Sec), int64(want.Mtim.Nsec)},
			Ctim: Timespec{int64(want.Ctim.Sec), int64(want.Ctim.Nsec)},
		}
		if st != w {
			t.Errorf("%s: %+v, want %+v", p, st, w)
		}
	}
}
