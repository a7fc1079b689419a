package fstree_test

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"golang.org/x/sys/unix"
)

// TestAddDirLinkedSymlinks: two hard links of one symlink in a directory
// set became two inodes, while the set's tar keeps one. Both readings
// give one node for both paths.
func TestAddDirLinkedSymlinks(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink("target", filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	// link(2) of a symlink links the symlink itself (Linux, NetBSD).
	if err := unix.Linkat(unix.AT_FDCWD, filepath.Join(dir, "a"), unix.AT_FDCWD, filepath.Join(dir, "b"), 0); err != nil {
		t.Skipf("cannot hard-link a symlink here: %v", err)
	}
	fromDir := fstree.New()
	if err := fromDir.AddDir(dir); err != nil {
		t.Fatal(err)
	}
	fromTar := fstree.New()
	raw := tarOf(t, tar.Header{Typeflag: tar.TypeSymlink, Name: "./a", Linkname: "target"},
		tar.Header{Typeflag: tar.TypeLink, Name: "./b", Linkname: "./a"})
	if err := fromTar.AddArchive(bytes.NewReader(raw), "l.tar"); err != nil {
		t.Fatal(err)
	}
	for name, tr := range map[string]*fstree.Tree{"directory": fromDir, "tar": fromTar} {
		a, _ := tr.Get("a")
		b, _ := tr.Get("b")
		if a == nil || a != b || a.Type != fstree.Symlink || a.Target != "target" {
			t.Errorf("from the %s: a=%+v b=%+v, want one symlink node to target", name, a, b)
		}
	}
}
