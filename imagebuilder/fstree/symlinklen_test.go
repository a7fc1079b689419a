package fstree_test

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// TestSymlinkTargetLimit: a symlink target longer than MaxPathLen is
// refused, from a set or a directory, naming the entry, the target's
// length and the limit. NetBSD's namei_follow reads a target with at
// least the NUL of the rest of the path into PATH_MAX bytes and fails
// with ENAMETOOLONG past that, so such a link could never be followed;
// only an empty target was refused, and ext2 wrote one of up to a block
// less a byte (4095 bytes in an image of 512 MiB or more).
func TestSymlinkTargetLimit(t *testing.T) {
	for _, tc := range []struct {
		size int
		ok   bool
	}{
		{1, true},
		{fstree.MaxPathLen, true},
		{fstree.MaxPathLen + 1, false},
		{1500, false},
		{4095, false},
	} {
		target := strings.Repeat("a/", tc.size/2) + strings.Repeat("b", tc.size%2)
		want := fmt.Sprintf("its target is %d bytes, more than the %d NetBSD can follow", tc.size, fstree.MaxPathLen)
		check := func(t *testing.T, err error, prefix string) {
			t.Helper()
			switch {
			case tc.ok && err != nil:
				t.Errorf("refused: %v", err)
			case !tc.ok && err == nil:
				t.Errorf("accepted")
			case !tc.ok && !strings.HasPrefix(err.Error(), prefix) || !tc.ok && !strings.Contains(err.Error(), want):
				t.Errorf("got %q, want %q and %q", err, prefix, want)
			}
		}
		t.Run(fmt.Sprint(tc.size), func(t *testing.T) {
			t.Run("CheckSymlink", func(t *testing.T) {
				check(t, fstree.CheckSymlink("usr/l", target), "symlink usr/l: ")
			})
			t.Run("set", func(t *testing.T) {
				// PAX: a ustar header holds a target of 100 bytes.
				var raw bytes.Buffer
				tw := tar.NewWriter(&raw)
				if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "./usr/l", Linkname: target, Mode: 0o777, Format: tar.FormatPAX}); err != nil {
					t.Fatal(err)
				}
				if err := tw.Close(); err != nil {
					t.Fatal(err)
				}
				tr := fstree.New()
				err := tr.AddTar(&raw, "base.tar")
				check(t, err, "base.tar: entry 1 (./usr/l): symlink usr/l: ")
				if err == nil {
					n, err := tr.Get("usr/l")
					if err != nil || n.Target != target {
						t.Errorf("usr/l: %v, target of %d bytes", err, len(n.Target))
					}
				}
			})
			t.Run("directory", func(t *testing.T) {
				dir := t.TempDir()
				if err := os.Symlink(target, filepath.Join(dir, "l")); err != nil {
					t.Fatal(err)
				}
				tr := fstree.New()
				check(t, tr.AddDir(dir), filepath.Join(dir, "l")+": symlink l: ")
			})
		})
	}
}
