package rebuild

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/smolvmm/smolvmm/fetch"
	"github.com/smolvmm/smolvmm/internal/nobodyfs"
)

// groupUID owns the other user's cache of TestForeignCacheWritesNothing:
// a user who is neither root nor nobodyfs.Nobody, whose directories
// anybody may write (a cache shared through a group, made mode 0777).
const groupUID = 61242

// treeState describes every entry under root, root too, as Lstat sees
// it: its mode, owner, size, modification time, and its bytes or link
// target. Two equal states are the same tree, entry for entry and byte
// for byte; a file made and removed in a directory changes its time.
func treeState(t *testing.T, root string) map[string]string {
	t.Helper()
	state := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		sys := st.Sys().(*syscall.Stat_t)
		what := fmt.Sprintf("%v uid %d gid %d size %d mtime %d", st.Mode(), sys.Uid, sys.Gid, st.Size(), st.ModTime().UnixNano())
		switch {
		case st.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			what += " -> " + target
		case st.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			what += fmt.Sprintf(" %q", b)
		}
		state[p] = what
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return state
}

// diffStates names what changed from before to after.
func diffStates(before, after map[string]string) []string {
	var diff []string
	for p, was := range before {
		if now, ok := after[p]; !ok {
			diff = append(diff, "removed "+p)
		} else if now != was {
			diff = append(diff, fmt.Sprintf("changed %s: %s, was %s", p, now, was))
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			diff = append(diff, "made "+p)
		}
	}
	slices.Sort(diff)
	return diff
}

// TestForeignCacheWritesNothing: fetch uses a cache reached through
// another user's directory read-only (root refuses it), but StripCached
// and the stamps wrote beside the release all the same where this user
// may write there (a group's cache, mode 0777): a stripped kernel and its
// sidecar, a stamp, a probe file, a stamp renamed. Each now leaves that
// user's tree entry for entry and byte for byte as it was, as in a cache
// it may not write: what is not cached is refused as not writable,
// naming the other user's part, and a good stripped copy is used.
func TestForeignCacheWritesNothing(t *testing.T) {
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
		op      func(dir, image string, strips *int) (string, error)
		want    string
		refused bool // op fails matching fetch.ErrForeignCache and fetch.ErrCacheNotWritable
	}{
		{"strip, no copy", func(*testing.T, string, string) {}, func(dir, image string, strips *int) (string, error) {
			s, err := StripCached(fetch.File{Path: filepath.Join(dir, "kernel", fetch.KernelName), SHA512: sum}, keep, countingStrip(strips))
			return fmt.Sprintf("cached %v, %d strips", s.Cached, *strips), err
		}, "cached false, 0 strips", true},
		{"strip, copy changed since", func(t *testing.T, dir, image string) {
			copy := filepath.Join(dir, "kernel", StrippedName(sum, keep))
			write(t, copy, "edited")
			write(t, copy+".sha512", "0123\n")
		}, func(dir, image string, strips *int) (string, error) {
			s, err := StripCached(fetch.File{Path: filepath.Join(dir, "kernel", fetch.KernelName), SHA512: sum}, keep, countingStrip(strips))
			return fmt.Sprintf("cached %v, %d strips", s.Cached, *strips), err
		}, "cached false, 0 strips", true},
		{"strip, good copy", func(t *testing.T, dir, image string) {
			copy := filepath.Join(dir, "kernel", StrippedName(sum, keep))
			write(t, copy, "stripped")
			h, err := fetch.HashFile(copy)
			if err != nil {
				t.Fatal(err)
			}
			write(t, copy+".sha512", h+"\n")
		}, func(dir, image string, strips *int) (string, error) {
			s, err := StripCached(fetch.File{Path: filepath.Join(dir, "kernel", fetch.KernelName), SHA512: sum}, keep, countingStrip(strips))
			return fmt.Sprintf("cached %v, %d strips", s.Cached, *strips), err
		}, "cached true, 0 strips", false},
		{"record", func(*testing.T, string, string) {}, func(dir, image string, _ *int) (string, error) {
			return "", DirStamp(dir, image).Record(image, FilesDigest, 1, "i386")
		}, "", true},
		{"record, images/ there", func(t *testing.T, dir, image string) {
			mkdirTest(t, filepath.Join(dir, "images"))
		}, func(dir, image string, _ *int) (string, error) {
			return "", DirStamp(dir, image).Record(image, FilesDigest, 1, "i386")
		}, "", true},
		{"writable", func(*testing.T, string, string) {}, func(dir, image string, _ *int) (string, error) {
			return "", DirStamp(dir, image).Writable()
		}, "", true},
		{"writable, images/ there", func(t *testing.T, dir, image string) {
			mkdirTest(t, filepath.Join(dir, "images"))
		}, func(dir, image string, _ *int) (string, error) {
			return "", DirStamp(dir, image).Writable()
		}, "", true},
		// The stamp of the image under the path it was renamed from.
		{"stamp moved", func(t *testing.T, dir, image string) {
			old := filepath.Join(filepath.Dir(image), "old.img")
			if err := DirStamp(dir, old).Record(image, FilesDigest, 1, "i386"); err != nil {
				t.Fatal(err)
			}
		}, func(dir, image string, _ *int) (string, error) {
			return fmt.Sprintf("moved %v", DirStamp(dir, image).Moved(image)), nil
		}, "moved false", false},
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
			before := treeState(t, cache)
			strips := 0
			var got string
			err = nobodyfs.Do(t, func() error {
				var err error
				got, err = tt.op(dir, image, &strips)
				return err
			})
			var fe *fetch.ForeignCacheError
			if refused := errors.Is(err, fetch.ErrCacheNotWritable) && errors.As(err, &fe) && fe.Path == cache && fe.UID == groupUID; refused != tt.refused {
				t.Errorf("err = %v; want one matching fetch.ErrCacheNotWritable with a *fetch.ForeignCacheError for %s of uid %d: %v", err, cache, groupUID, tt.refused)
			}
			if !tt.refused && err != nil {
				t.Errorf("err = %v, want none", err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if diff := diffStates(before, treeState(t, cache)); len(diff) > 0 {
				t.Errorf("the other user's cache changed: %q", diff)
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
