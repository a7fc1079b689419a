package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/internal/nobodyfs"
	"github.com/smolvmm/smolvmm/virtio/blk"
)

// diskPermImages makes, in a directory every user may search, a
// 1000-byte image (a partial sector at its end) of each mode.
func diskPermImages(t *testing.T, modes map[string]os.FileMode) (dir string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "diskperm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, mode := range modes {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, make([]byte, 1000), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestDiskNotReadableAdvice: an image the user may not read was called
// not writable and given ,ro, which then failed with no advice. Both opens
// now say what to make it, or which directory to open, and the read-only
// file keeps its ,ro advice.
func TestDiskNotReadableAdvice(t *testing.T) {
	dir := diskPermImages(t, map[string]os.FileMode{"noread.img": 0, "ronly.img": 0o444})
	shut := filepath.Join(dir, "shut")
	if err := os.Mkdir(shut, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(shut, 0o755) })
	root := "; or start smolvmm as root: run --user USER opens the images as root, then runs as USER)"
	if os.Geteuid() == 0 {
		root = ")"
	}
	tests := []struct {
		name string
		spec blk.Spec
		want string
	}{
		{"unreadable read-write", blk.Spec{Path: "noread.img"},
			"disk image DIR/noread.img: cannot open it read-write: the image may not be read by this user: permission denied (with chmod or chown, make it readable and writable by the user smolvmm runs as, or readable and attach it read-only with ,ro after its -d path" + root},
		{"unreadable read-only", blk.Spec{Path: "noread.img", Options: blk.Options{ReadOnly: true}},
			"disk image DIR/noread.img: cannot open it read-only: the image may not be read by this user: permission denied (with chmod or chown, make it readable by the user smolvmm runs as" + root},
		{"directory shut", blk.Spec{Path: "shut/d.img", Options: blk.Options{ReadOnly: true}},
			"disk image DIR/shut/d.img: cannot open it read-only: the image may not be read by this user: the directory DIR/shut may not be searched by this user: permission denied (with chmod or chown, let the user smolvmm runs as search the directory DIR/shut, or move the image to one it may search" + root},
		{"not writable", blk.Spec{Path: "ronly.img"},
			"disk image DIR/ronly.img: cannot open it read-write: the image is not writable: permission denied (attach it read-only with ,ro after its -d path, or make it writable)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.Path = filepath.Join(dir, tt.spec.Path)
			err := nobodyfs.Do(t, func() error {
				d, err := blk.Open(tt.spec.Path, tt.spec.Options)
				if err == nil {
					d.Close()
				}
				return err
			})
			if err == nil {
				t.Fatalf("%s opened", tt.spec)
			}
			if got, want := advise(err), filepathReplace(tt.want, dir); got != want {
				t.Errorf("advice:\n got %s\nwant %s", got, want)
			}
		})
	}
}

// TestNotReadableAdviceOfRoot: root refused an image (NFS's root_squash,
// a container) was told to start smolvmm as root; only another user is.
func TestNotReadableAdviceOfRoot(t *testing.T) {
	const asRoot = "start smolvmm as root"
	for _, ae := range []*blk.AccessError{
		{Path: "d.img", Err: fs.ErrPermission},
		{Path: "d.img", ReadOnly: true, Err: fs.ErrPermission},
		{Path: "shut/d.img", Dir: "shut", Err: fs.ErrPermission},
	} {
		for _, euid := range []int{0, 1000} {
			got := notReadableAdvice(fmt.Errorf("attach: %w", ae), euid)
			if got == "" || strings.Contains(got, asRoot) != (euid != 0) {
				t.Errorf("%v, uid %d: advice %q", ae, euid, got)
			}
			if ae.Dir != "" && (!strings.Contains(got, "search the directory shut") || strings.Contains(got, "make it readable")) {
				t.Errorf("%v: advice %q does not name the directory alone", ae, got)
			}
		}
	}
}

// TestDiskTailWarnedOnceOpen: the partial sector's warning, with its
// advice to pad the file, came before the refusal of an image the user
// may not open (-d /etc/shadow,ro): it is given only for an image that
// opens as the machine will open it.
func TestDiskTailWarnedOnceOpen(t *testing.T) {
	dir := diskPermImages(t, map[string]os.FileMode{"rw.img": 0o666, "noread.img": 0, "ronly.img": 0o444, "locked.img": 0o666})
	f, err := os.Open(filepath.Join(dir, "locked.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		spec string
		warn bool
	}{
		{"rw.img", true},
		{"rw.img,ro", true},
		{"noread.img", false},
		{"noread.img,ro", false},
		{"ronly.img", false},
		{"ronly.img,ro", true},
		{"locked.img", false}, // in use by another VM
	}
	for _, tt := range tests {
		d, err := blk.ParseDiskSpec(filepath.Join(dir, tt.spec))
		if err != nil {
			t.Fatal(err)
		}
		var w bytes.Buffer
		if err := nobodyfs.Do(t, func() error { warnDiskTail(&w, "run", d); return nil }); err != nil {
			t.Fatal(err)
		}
		if got := w.Len() > 0; got != tt.warn {
			t.Errorf("-d %s: warned %v, want %v: %q", tt.spec, got, tt.warn, w.String())
		}
	}
}

// filepathReplace is s with DIR replaced by dir.
func filepathReplace(s, dir string) string {
	return string(bytes.ReplaceAll([]byte(s), []byte("DIR"), []byte(dir)))
}
