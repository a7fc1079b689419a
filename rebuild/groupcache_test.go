package rebuild

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/smolvmm/smolvmm/fetch"
	"github.com/smolvmm/smolvmm/internal/nobodyfs"
)

// groupUID owns the other user's cache of TestGroupCacheWritable:
// a user who is neither root nor nobodyfs.Nobody, whose directories
// anybody may write (a cache shared through a group, made mode 0777).
const groupUID = 61242

// TestGroupCacheWritable: a cache of another user's that this one may
// write (a group's, mode 0777: an OpenShift home of uid 1001, mode 0775,
// for an arbitrary uid of group 0) was made read-only to it, StripCached
// refusing to store a stripped kernel and the stamps to be written,
// probed or moved, so that up stripped the kernel again and kept no
// record on every run. Only root is refused a cache of another user's
// (fetch.DefaultCacheDir, where the cache is found): here the copy is
// stored and used, and the stamps are written, probed and moved.
func TestGroupCacheWritable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files to another user (chown) and to act as nobody")
	}
	keep := []string{"mainbus", "com"}
	const sum = "abc"
	tests := []struct {
		name string
		// setup adds to the release's directory dir, as root, before
		// it is given away; image is the image's path.
		setup func(t *testing.T, dir, image string)
		// op runs as nobody, and says what it returned beside its
		// error.
		op   func(dir, image string, strips *int) (string, error)
		want string
		// made is what op leaves in dir, "" for nothing to look for.
		made string
	}{
		{"strip, no copy", func(*testing.T, string, string) {}, func(dir, image string, strips *int) (string, error) {
			s, err := StripCached(fetch.File{Path: filepath.Join(dir, "kernel", fetch.KernelName), SHA512: sum}, keep, countingStrip(strips))
			return fmt.Sprintf("cached %v, %d strips", s.Cached, *strips), err
		}, "cached false, 1 strips", filepath.Join("kernel", StrippedName(sum, keep)+".sha512")},
		{"record", func(*testing.T, string, string) {}, func(dir, image string, _ *int) (string, error) {
			err := DirStamp(dir, image).Record(image, FilesDigest, 1, "i386")
			return fmt.Sprintf("describes %v", DirStamp(dir, image).Describes(image)), err
		}, "describes true", ""},
		{"writable", func(*testing.T, string, string) {}, func(dir, image string, _ *int) (string, error) {
			return "", DirStamp(dir, image).Writable()
		}, "", ""},
		// The stamp of the image under the path it was renamed from.
		{"stamp moved", func(t *testing.T, dir, image string) {
			old := filepath.Join(filepath.Dir(image), "old.img")
			if err := DirStamp(dir, old).Record(image, FilesDigest, 1, "i386"); err != nil {
				t.Fatal(err)
			}
		}, func(dir, image string, _ *int) (string, error) {
			return fmt.Sprintf("moved %v", DirStamp(dir, image).Moved(image)), nil
		}, "moved true", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			for _, d := range []string{filepath.Dir(base), base} {
				if err := os.Chmod(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			image := filepath.Join(base, "rescue.img")
			writeImage(t, image, "image")
			cache := filepath.Join(base, "cache")
			dir := filepath.Join(cache, "9.3", "i386")
			mkdirTest(t, filepath.Join(dir, "kernel"))
			mkdirTest(t, filepath.Join(dir, "sets"))
			write(t, filepath.Join(dir, "kernel", fetch.KernelName), "kernel")
			tt.setup(t, dir, image)
			err := filepath.WalkDir(cache, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if d.IsDir() {
					if err := os.Chmod(p, 0o777); err != nil {
						return err
					}
				}
				return os.Lchown(p, groupUID, groupUID)
			})
			if err != nil {
				t.Fatal(err)
			}
			strips := 0
			var got string
			err = nobodyfs.Do(t, func() error {
				var err error
				got, err = tt.op(dir, image, &strips)
				return err
			})
			if err != nil {
				t.Errorf("err = %v, want none", err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if tt.made != "" {
				if _, err := os.Stat(filepath.Join(dir, tt.made)); err != nil {
					t.Errorf("not stored: %v", err)
				}
			}
		})
	}
}

// countingStrip is a StripFunc that counts its calls in n and writes
// the kernel's bytes, stripped of nothing.
func countingStrip(n *int) StripFunc {
	return func(in, out string, keep []string) (string, error) {
		*n++
		b, err := os.ReadFile(in)
		if err != nil {
			return "", err
		}
		return "stripped", os.WriteFile(out, b, 0o644)
	}
}

// mkdirTest makes dir and its parents.
func mkdirTest(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}
