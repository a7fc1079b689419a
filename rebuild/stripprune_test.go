package rebuild

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/smolvmm/smolvmm/fetch"
	"github.com/smolvmm/smolvmm/kstrip"
)

// TestStripCachedRemovesOlderRevisions: the copies an older kstrip
// revision stripped stayed in the cache for good, a kernel's size each,
// one more at every revision and keep list. A new strip now removes the
// copies (and sidecars) of older revisions and the unmarked ones of
// before the revision was named, and keeps other keep lists' copies of
// this revision, a newer revision's (a downgraded binary's strip) and
// files it cannot tell for a stripped copy. An unmarked copy (from before
// the revision was named) goes only with the older revision's copy it is
// a hard link to: another may be this revision's for another keep list,
// which the name cannot tell. A copy found good strips nothing, and
// removes the same in a cache of this user's (older copies a VM held at
// the strip go once let go), nothing in another user's.
func TestStripCachedRemovesOlderRevisions(t *testing.T) {
	const sum = "abc"
	keep := []string{"mainbus", "com"}
	current := strippedName(sum, keep, kstrip.Revision)
	other := strippedName(sum, []string{"mainbus"}, kstrip.Revision)
	older := strippedName(sum, keep, kstrip.Revision-1)
	newer := strippedName(sum, keep, kstrip.Revision+1)
	const unmarked = "netbsd-GENERIC.kstrip-0123456789abcdef"
	// The unmarked name older had before, a hard link to it.
	const twin = "netbsd-GENERIC.kstrip-aaaaaaaaaaaaaaaa"
	// Names no revision of StripCached gave: never removed.
	unknown := []string{"netbsd-GENERIC.kstrip-0123", "netbsd-GENERIC.kstrip-0123456789abcdeg",
		"netbsd-GENERIC.kstrip-r1-notes", "netbsd-GENERIC.kstrip-r-0123456789abc", "netbsd-GENERIC.kstrip-0123456789abcdef.txt", "README"}
	for _, tt := range []struct {
		name string
		// cached: a good copy of this revision and keep list is there.
		cached bool
		want   []string
		owner  int // the directory's, when not this user's (-1)
	}{
		{"strip", false, append([]string{current, current + ".sha512", other, other + ".sha512", newer, newer + ".sha512",
			unmarked, unmarked + ".sha512"}, unknown...), -1},
		{"cached", true, append([]string{current, current + ".sha512", other, other + ".sha512", newer, newer + ".sha512",
			unmarked, unmarked + ".sha512"}, unknown...), -1},
		{"cached in another user's cache", true, append([]string{current, current + ".sha512", other, other + ".sha512", newer, newer + ".sha512",
			older, older + ".sha512", unmarked, unmarked + ".sha512", twin, twin + ".sha512"}, unknown...), 65534},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			k := fetch.File{Path: filepath.Join(dir, fetch.KernelName), SHA512: sum}
			write(t, k.Path, "kernel")
			copies := []string{other, older, newer, unmarked}
			if tt.cached {
				copies = append(copies, current)
			}
			for _, name := range copies {
				stripped(t, filepath.Join(dir, name), "stripped "+name)
			}
			if err := os.Link(filepath.Join(dir, older), filepath.Join(dir, twin)); err != nil {
				t.Fatal(err)
			}
			write(t, filepath.Join(dir, twin+".sha512"), "sidecar")
			for _, name := range unknown {
				write(t, filepath.Join(dir, name), "not a stripped copy")
			}
			// A directory under a stripped copy's name is not one.
			if err := os.Mkdir(filepath.Join(dir, "netbsd-GENERIC.kstrip-fedcba9876543210"), 0o755); err != nil {
				t.Fatal(err)
			}
			tt.want = append(tt.want, "netbsd-GENERIC.kstrip-fedcba9876543210")
			if tt.owner >= 0 {
				if os.Geteuid() != 0 {
					t.Skip("giving the cache to another user needs root")
				}
				if err := os.Chown(dir, tt.owner, tt.owner); err != nil {
					t.Fatal(err)
				}
			}
			strips := 0
			s, err := StripCached(k, keep, countingStrip(&strips))
			if err != nil || s.Cached != tt.cached || filepath.Base(s.Path) != current {
				t.Fatalf("StripCached = %+v, %v; want %s, cached %v", s, err, current, tt.cached)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range entries {
				if e.Name() != fetch.KernelName {
					got = append(got, e.Name())
				}
			}
			slices.Sort(got)
			slices.Sort(tt.want)
			if !slices.Equal(got, tt.want) {
				t.Errorf("the kernel's directory holds\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

// stripped writes a stripped copy at path, with its good sidecar.
func stripped(t *testing.T, path, data string) {
	t.Helper()
	write(t, path, data)
	sum, err := fetch.HashFile(path)
	if err != nil {
		t.Fatal(err)
	}
	write(t, path+".sha512", sum+"\n")
}
