package rebuild

import (
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/fetch"
	"github.com/smolvmm/smolvmm/internal/nobodyfs"
	"github.com/smolvmm/smolvmm/kstrip"
)

// unmarkedTestName is, written out here rather than taken from the code,
// the name StripCached gave a copy before the revision was named:
// netbsd-GENERIC.kstrip- and the first 16 hex digits of the key of the
// kernel's digest, the keep list and the revision.
func unmarkedTestName(sum string, keep []string, revision int) string {
	key := sha512.Sum512(fmt.Appendf(nil, "%s\x00%s\x00%d", sum, strings.Join(keep, ","), revision))
	return "netbsd-GENERIC.kstrip-" + hex.EncodeToString(key[:])[:16]
}

// skipUnlessUnmarkedRevision skips t once kstrip's revision is past the
// last one whose copies were unmarked: no copy of this revision has an
// unmarked name.
func skipUnlessUnmarkedRevision(t *testing.T) {
	t.Helper()
	if kstrip.Revision != lastUnmarkedRevision {
		t.Skipf("kstrip revision %d: only revision %d's copies were ever unmarked", kstrip.Revision, lastUnmarkedRevision)
	}
}

// TestStripCachedAdoptsUnmarkedCopy: the copy a smolvmm of this kstrip
// revision stripped before names said the revision
// (netbsd-GENERIC.kstrip-<16 hex digits>) is this revision's copy for
// this keep list, and was stripped again after the upgrade, a kernel's
// work for each keep list. It is used as it is, verified against its
// sidecar: given the new name too (a hard link, the unmarked name kept
// for an older smolvmm using the cache and a path copied from up's
// output), and strip not called. One that does not match its sidecar,
// or lacks one, is stripped anew and left as it is, and so is another
// keep list's or another revision's unmarked copy.
func TestStripCachedAdoptsUnmarkedCopy(t *testing.T) {
	skipUnlessUnmarkedRevision(t)
	const sum = "abc"
	keep := []string{"mainbus", "com"}
	current := strippedName(sum, keep, kstrip.Revision)
	mine := unmarkedTestName(sum, keep, kstrip.Revision)
	for _, tt := range []struct {
		name string
		// setup writes the unmarked copies into dir.
		setup func(t *testing.T, dir string)
		// adopted: mine is used, under the new name as well.
		adopted bool
	}{
		{"good", func(t *testing.T, dir string) { stripped(t, filepath.Join(dir, mine), "stripped before") }, true},
		{"edited since", func(t *testing.T, dir string) {
			stripped(t, filepath.Join(dir, mine), "stripped before")
			write(t, filepath.Join(dir, mine), "edited")
		}, false},
		{"no sidecar", func(t *testing.T, dir string) { write(t, filepath.Join(dir, mine), "stripped before") }, false},
		{"another keep list's", func(t *testing.T, dir string) {
			stripped(t, filepath.Join(dir, unmarkedTestName(sum, []string{"mainbus"}, kstrip.Revision)), "other")
		}, false},
		{"an older revision's", func(t *testing.T, dir string) {
			stripped(t, filepath.Join(dir, unmarkedTestName(sum, keep, kstrip.Revision-1)), "older")
		}, false},
		// A new-named copy left without its sidecar (a strip cut
		// short) is replaced by the good unmarked one.
		{"good, a new copy without sidecar", func(t *testing.T, dir string) {
			stripped(t, filepath.Join(dir, mine), "stripped before")
			write(t, filepath.Join(dir, current), "cut short")
		}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			k := fetch.File{Path: filepath.Join(dir, fetch.KernelName), SHA512: sum}
			write(t, k.Path, "kernel")
			tt.setup(t, dir)
			before := dirFiles(t, dir)
			strips := 0
			s, err := StripCached(k, keep, countingStrip(&strips))
			if err != nil {
				t.Fatalf("StripCached: %v", err)
			}
			wantStrips := 1
			if tt.adopted {
				wantStrips = 0
			}
			if filepath.Base(s.Path) != current || s.Cached != tt.adopted || s.Changed || strips != wantStrips {
				t.Errorf("StripCached = %+v after %d strips; want %s, cached %v, %d strips", s, strips, current, tt.adopted, wantStrips)
			}
			// What was there is there still, byte for byte.
			after := dirFiles(t, dir)
			for name, data := range before {
				if name == current && tt.adopted {
					continue
				}
				if after[name] != data {
					t.Errorf("%s holds %q, was %q", name, after[name], data)
				}
			}
			for name := range after {
				if _, ok := before[name]; !ok && name != current && name != current+".sha512" {
					t.Errorf("%s left in the cache", name)
				}
			}
			sidecar, err := fetch.HashFile(s.Path)
			if err != nil || after[current+".sha512"] != sidecar+"\n" {
				t.Errorf("%s.sha512 holds %q, want %q (%v)", current, after[current+".sha512"], sidecar+"\n", err)
			}
			if tt.adopted {
				a, errA := os.Stat(filepath.Join(dir, mine))
				b, errB := os.Stat(s.Path)
				if errA != nil || errB != nil || !os.SameFile(a, b) {
					t.Errorf("%s is not %s (%v, %v)", current, mine, errA, errB)
				}
			}
			// A second call uses the new name's copy.
			again, err := StripCached(k, keep, countingStrip(&strips))
			if err != nil || again.Path != s.Path || !again.Cached || strips != wantStrips {
				t.Errorf("again: StripCached = %+v, %v after %d strips; want %s, cached", again, err, strips, s.Path)
			}
		})
	}
}

// TestStripCachedReadOnlyUnmarkedCopy: a cache that may not be written
// (another user's, a read-only mount), filled by a smolvmm of this kstrip
// revision before names said the revision, failed up as not writable:
// the copy it holds, under the unmarked name, was not looked for. It is
// served as it is, verified, and nothing in the cache changes.
func TestStripCachedReadOnlyUnmarkedCopy(t *testing.T) {
	skipUnlessUnmarkedRevision(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to act as another user and to mount a read-only file system")
	}
	const sum = "abc"
	keep := []string{"mainbus", "com"}
	mine := unmarkedTestName(sum, keep, kstrip.Revision)
	for _, tt := range []struct {
		name string
		// as runs f on a cache dir it may not write.
		as func(t *testing.T, dir string, f func() error) error
	}{
		{"another user's", func(t *testing.T, dir string, f func() error) error {
			for _, d := range []string{filepath.Dir(dir), dir} {
				if err := os.Chmod(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			return nobodyfs.Do(t, f)
		}},
		{"read-only mount", readOnlyMount},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			k := fetch.File{Path: filepath.Join(dir, fetch.KernelName), SHA512: sum}
			write(t, k.Path, "kernel")
			stripped(t, filepath.Join(dir, mine), "stripped before")
			before := dirFiles(t, dir)
			strips := 0
			var s Stripped
			err := tt.as(t, dir, func() error {
				var err error
				s, err = StripCached(k, keep, func(in, out string, keep []string) (string, error) {
					strips++
					return "", &fs.PathError{Op: "open", Path: out, Err: unix.EROFS}
				})
				return err
			})
			if err != nil || s.Path != filepath.Join(dir, mine) || !s.Cached || strips != 0 {
				t.Errorf("StripCached = %+v, %v after %d strips; want %s, cached", s, err, strips, mine)
			}
			if after := dirFiles(t, dir); !maps.Equal(after, before) {
				t.Errorf("the cache holds %q, held %q", after, before)
			}
		})
	}
}

// readOnlyMount runs f on a thread of its own, in a mount namespace of
// its own where dir is bound read-only over itself.
func readOnlyMount(t *testing.T, dir string, f func() error) error {
	type result struct {
		err   error
		setup string
	}
	done := make(chan result)
	go func() {
		// Never unlocked: the thread, with its namespace, ends with
		// this goroutine.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			done <- result{setup: fmt.Sprintf("cannot make a mount namespace here: %v", err)}
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			done <- result{setup: fmt.Sprintf("cannot make / private here: %v", err)}
			return
		}
		if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
			done <- result{setup: fmt.Sprintf("cannot bind %s: %v", dir, err)}
			return
		}
		if err := unix.Mount("", dir, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			done <- result{setup: fmt.Sprintf("cannot make %s read-only: %v", dir, err)}
			return
		}
		done <- result{err: f()}
	}()
	r := <-done
	if r.setup != "" {
		t.Skip(r.setup)
	}
	return r.err
}

// dirFiles returns the content of each file of dir, by name.
func dirFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = string(b)
	}
	return files
}
