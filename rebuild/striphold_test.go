package rebuild

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/fetch"
	"github.com/smolvmm/smolvmm/kstrip"
)

// TestStripCachedKeepsHeldCopies: a newer smolvmm's strip removed the
// older revision's copy that an older up had just been given by
// StripCached and was about to load ("read kernel: ... no such file").
// StripCached now returns its copy with a shared lock held until Close,
// and the removal of older revisions' copies passes over one another
// process holds, with its sidecar, and removes the others.
func TestStripCachedKeepsHeldCopies(t *testing.T) {
	k, keep, held, user := holdOlderCopy(t)
	dir := filepath.Dir(k.Path)
	free := strippedName(k.SHA512, []string{"mainbus"}, kstrip.Revision-1)
	stripped(t, filepath.Join(dir, free), "stripped "+free)
	strips := 0
	s, err := StripCached(k, keep, countingStrip(&strips))
	if err != nil || strips != 1 {
		t.Fatalf("StripCached = %+v, %v after %d strips; want a strip", s, err, strips)
	}
	defer s.Close()
	for _, tt := range []struct {
		name string
		want bool
	}{
		{held, true}, {held + ".sha512", true}, {free, false}, {free + ".sha512", false},
	} {
		if _, err := os.Lstat(filepath.Join(dir, tt.name)); (err == nil) != tt.want {
			t.Errorf("%s: present %v, want %v", tt.name, err == nil, tt.want)
		}
	}
	// The copy StripCached returned is held the same way until Close,
	// whichever path it took (stripped, then cached).
	for _, cached := range []bool{false, true} {
		if cached {
			if s, err = StripCached(k, keep, countingStrip(&strips)); err != nil || !s.Cached {
				t.Fatalf("StripCached again = %+v, %v; want the cached copy", s, err)
			}
		}
		if _, ok := removeUnheld(s.Path); ok {
			t.Fatalf("cached %v: the copy StripCached returned was removed while held", cached)
		}
		s.Close()
		if cached {
			if _, ok := removeUnheld(s.Path); !ok {
				t.Errorf("the copy was not removed once Close released it")
			}
		}
	}
	// Released, the older one goes at the next strip.
	user.Close()
	os.Remove(s.Path + ".sha512")
	if s, err = StripCached(k, keep, countingStrip(&strips)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Lstat(filepath.Join(dir, held)); err == nil {
		t.Errorf("%s was kept once no one held it", held)
	}
}

// TestStripCachedSweepsOnceReleased: an older revision's copy held while
// this revision's was stripped (a VM an older smolvmm's up runs) is kept
// then, and removed at a later use of the cached copy once let go: it
// was kept for good, only a new strip removing older copies.
func TestStripCachedSweepsOnceReleased(t *testing.T) {
	k, keep, held, user := holdOlderCopy(t)
	dir := filepath.Dir(k.Path)
	strips := 0
	s, err := StripCached(k, keep, countingStrip(&strips))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Lstat(filepath.Join(dir, held)); err != nil {
		t.Fatalf("the held copy went while held: %v", err)
	}
	user.Close()
	if s, err = StripCached(k, keep, countingStrip(&strips)); err != nil || !s.Cached || strips != 1 {
		t.Fatalf("StripCached = %+v, %v after %d strips; want the cached copy, one strip in all", s, err, strips)
	}
	s.Close()
	for _, name := range []string{held, held + ".sha512"} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			t.Errorf("%s kept once no one held it", name)
		}
	}
}

// holdOlderCopy makes a kernel k in a new directory, with the copy held
// that the previous kstrip revision stripped of it for keep, and holds
// that copy as an older up does between its StripCached and the kernel's
// load: a shared flock through user, another open file description, as
// another process's is. user is closed at the test's end.
func holdOlderCopy(t *testing.T) (k fetch.File, keep []string, held string, user *os.File) {
	t.Helper()
	const sum = "abc"
	keep = []string{"mainbus", "com"}
	dir := t.TempDir()
	k = fetch.File{Path: filepath.Join(dir, fetch.KernelName), SHA512: sum}
	write(t, k.Path, "kernel")
	held = strippedName(sum, keep, kstrip.Revision-1)
	stripped(t, filepath.Join(dir, held), "stripped "+held)
	user, err := os.Open(filepath.Join(dir, held))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { user.Close() })
	if err := unix.Flock(int(user.Fd()), unix.LOCK_SH); err != nil {
		t.Fatal(err)
	}
	return k, keep, held, user
}
