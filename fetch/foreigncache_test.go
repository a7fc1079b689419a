package fetch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/smolvmm/smolvmm/fetch/fetchtest"
)

// otherUID owns the other user's files of these tests: nobody's, to which
// no file here belongs.
const otherUID = 65534

// needRoot skips t unless it runs as root, who alone may give a file to
// another user.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files to another user (chown)")
	}
}

// giveAway makes path, a symbolic link itself when it is one, another
// user's.
func giveAway(t *testing.T, path string) {
	t.Helper()
	if err := os.Lchown(path, otherUID, otherUID); err != nil {
		t.Fatal(err)
	}
}

// traversableTempDir is t.TempDir that every user may search, as a home
// directory's parent is.
func traversableTempDir(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	return base
}

// entries lists dir's names, none when it is missing.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

// TestForeignCacheRefusedToRoot: root given another user's HOME (sudo -E)
// made that user's ~/.cache root's, mode 0700, so that the user's own
// fetch failed, and followed that user's symbolic links in the cache,
// writing its lock file, directories and downloads as root where they led
// (/root/victim). A cache whose path goes through another user's
// directory or symbolic link is now refused with a *ForeignCacheError
// naming it, before anything is made, written or downloaded; root's own
// cache, through root's own links, is used.
func TestForeignCacheRefusedToRoot(t *testing.T) {
	needRoot(t)
	srv := fetchtest.NewServer(fetchtest.Release{Version: "9.3", Arch: "i386", Kernel: []byte("kernel"),
		Sets: map[string][]byte{"rescue.tgz": []byte("rescue")}})
	defer srv.Close()
	tests := []struct {
		name string
		// setup makes the tree under base and returns the cache root
		// ("" for the default, under HOME=base/home).
		setup func(t *testing.T, base string) string
		// during, when set, runs after the release's directory is
		// made, as another user's process could.
		during  func(t *testing.T, dir string)
		foreign string // the part refused, under base; "" for none
		link    bool   // which is a symbolic link
	}{
		{"another user's home", func(t *testing.T, base string) string {
			mkdir(t, base, "home")
			giveAway(t, filepath.Join(base, "home"))
			return ""
		}, nil, "home", false},
		{"another user's ~/.cache", func(t *testing.T, base string) string {
			mkdir(t, base, "home/.cache")
			giveAway(t, filepath.Join(base, "home/.cache"))
			return ""
		}, nil, "home/.cache", false},
		{"another user's cache given", func(t *testing.T, base string) string {
			mkdir(t, base, "srv/cache")
			giveAway(t, filepath.Join(base, "srv/cache"))
			return filepath.Join(base, "srv/cache")
		}, nil, "srv/cache", false},
		{"another user's link in root's cache", func(t *testing.T, base string) string {
			mkdir(t, base, "cache/9.3")
			symlink(t, filepath.Join(base, "victim"), filepath.Join(base, "cache/9.3/i386"))
			giveAway(t, filepath.Join(base, "cache/9.3/i386"))
			return filepath.Join(base, "cache")
		}, nil, "cache/9.3/i386", true},
		{"root's link to another user's directory", func(t *testing.T, base string) string {
			mkdir(t, base, "cache/9.3")
			mkdir(t, base, "theirs")
			giveAway(t, filepath.Join(base, "theirs"))
			symlink(t, filepath.Join(base, "theirs"), filepath.Join(base, "cache/9.3/i386"))
			return filepath.Join(base, "cache")
		}, nil, "theirs", false},
		{"root's link to another user's link", func(t *testing.T, base string) string {
			mkdir(t, base, "cache/9.3")
			symlink(t, "../../hop", filepath.Join(base, "cache/9.3/i386"))
			symlink(t, filepath.Join(base, "victim"), filepath.Join(base, "hop"))
			giveAway(t, filepath.Join(base, "hop"))
			return filepath.Join(base, "cache")
		}, nil, "hop", true},
		{"another user's link for sets", func(t *testing.T, base string) string {
			mkdir(t, base, "cache/9.3/i386")
			symlink(t, filepath.Join(base, "victim"), filepath.Join(base, "cache/9.3/i386/sets"))
			giveAway(t, filepath.Join(base, "cache/9.3/i386/sets"))
			return filepath.Join(base, "cache")
		}, nil, "cache/9.3/i386/sets", true},
		// The directory made, then replaced by another user's link
		// before the lock file is opened.
		{"another user's link made meanwhile", func(t *testing.T, base string) string {
			return filepath.Join(base, "cache")
		}, func(t *testing.T, dir string) {
			if err := os.Remove(dir); err != nil {
				t.Fatal(err)
			}
			symlink(t, filepath.Join(filepath.Dir(filepath.Dir(filepath.Dir(dir))), "victim"), dir)
			giveAway(t, dir)
		}, "cache/9.3/i386", true},
		{"root's own cache", func(t *testing.T, base string) string {
			return filepath.Join(base, "cache")
		}, nil, "", false},
		{"root's own link to root's directory", func(t *testing.T, base string) string {
			mkdir(t, base, "cache/9.3")
			symlink(t, filepath.Join(base, "victim"), filepath.Join(base, "cache/9.3/i386"))
			return filepath.Join(base, "cache")
		}, nil, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := traversableTempDir(t)
			mkdir(t, base, "victim")
			t.Setenv("HOME", filepath.Join(base, "home"))
			t.Setenv("XDG_CACHE_HOME", "")
			f := &Fetcher{Mirror: srv.Mirror(), Cache: tt.setup(t, base)}
			if tt.during != nil {
				dir, err := f.ReleaseDir("9.3", "i386")
				if err != nil {
					t.Fatal(err)
				}
				mkdirAll = func(p string, perm os.FileMode) error {
					err := os.MkdirAll(p, perm)
					if err == nil && p == dir {
						tt.during(t, dir)
					}
					return err
				}
				t.Cleanup(func() { mkdirAll = os.MkdirAll })
			}
			srv.ResetLog()
			_, err := f.Fetch(context.Background(), "9.3", "i386", "rescue")
			if tt.foreign == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var fe *ForeignCacheError
			if !errors.As(err, &fe) || !errors.Is(err, ErrForeignCache) {
				t.Fatalf("err = %v, want a *ForeignCacheError", err)
			}
			if want := filepath.Join(base, tt.foreign); fe.Path != want || fe.Link != tt.link || fe.UID != otherUID || fe.Self != 0 {
				t.Errorf("refused %s (link %v) of uid %d for uid %d, want %s (link %v) of uid %d for uid 0", fe.Path, fe.Link, fe.UID, fe.Self, want, tt.link, otherUID)
			}
			if n := len(srv.Requests()); n != 0 {
				t.Errorf("%d requests made, want none", n)
			}
			if got := entries(t, filepath.Join(base, "victim")); len(got) != 0 {
				t.Errorf("written where another user's link led: %q", got)
			}
			// Nothing made in the other user's directories.
			for _, d := range []string{"home", "home/.cache", "srv/cache", "theirs"} {
				if got := entries(t, filepath.Join(base, d)); len(got) > 0 && !(d == "home" && tt.foreign == "home/.cache") {
					t.Errorf("%s: made %q", d, got)
				}
			}
		})
	}
}

// TestForeignCacheReadOnly: another user than root reaching a cache
// through a third user's directory uses what it holds, verified, as a
// cache it may not write, and writes nothing there: a file it lacks is
// refused as not writable, saying whose the directory is.
func TestForeignCacheReadOnly(t *testing.T) {
	needRoot(t)
	srv := fetchtest.NewServer(fetchtest.Release{Version: "9.3", Arch: "i386", Kernel: []byte("kernel"),
		Sets: map[string][]byte{"rescue.tgz": []byte("rescue"), "base.tgz": []byte("base")}})
	defer srv.Close()
	base := traversableTempDir(t)
	cache := filepath.Join(base, "cache")
	f := &Fetcher{Mirror: srv.Mirror(), Cache: cache}
	if _, err := f.Fetch(context.Background(), "9.3", "i386", "rescue"); err != nil {
		t.Fatal(err)
	}
	giveAway(t, cache)
	geteuid = func() int { return 4242 }
	t.Cleanup(func() { geteuid = os.Geteuid })
	srv.ResetLog()
	if _, err := f.Fetch(context.Background(), "9.3", "i386", "rescue"); err != nil {
		t.Fatalf("cached release: %v", err)
	}
	_, err := f.Fetch(context.Background(), "9.3", "i386", "rescue", "base")
	var fe *ForeignCacheError
	if !errors.Is(err, ErrCacheNotWritable) || !errors.As(err, &fe) || fe.Path != cache || fe.Self != 4242 {
		t.Errorf("set not cached: err = %v, want one matching ErrCacheNotWritable with a *ForeignCacheError for %s", err, cache)
	}
	_, err = f.Fetch(context.Background(), "10.1", "i386", "rescue")
	if !errors.Is(err, ErrCacheNotWritable) || !errors.Is(err, ErrForeignCache) {
		t.Errorf("release not cached: err = %v, want one matching ErrCacheNotWritable and ErrForeignCache", err)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("%d requests made, want none", n)
	}
	if got := entries(t, filepath.Join(cache, "9.3/i386/sets")); len(got) != 2 {
		t.Errorf("sets: %q, want SHA512 and rescue.tgz alone", got)
	}
	if got := entries(t, cache); len(got) != 1 {
		t.Errorf("cache: %q, want 9.3 alone", got)
	}
}

// mkdir makes base/rel and its parents.
func mkdir(t *testing.T, base, rel string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(base, rel), 0o755); err != nil {
		t.Fatal(err)
	}
}

// symlink makes link lead to target.
func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil && !errors.Is(err, syscall.EEXIST) {
		t.Fatal(err)
	}
}
