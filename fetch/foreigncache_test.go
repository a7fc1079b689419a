package fetch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/smolvmm/smolvmm/fetch/fetchtest"
	"github.com/smolvmm/smolvmm/internal/nobodyfs"
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

// TestDefaultCacheRefusedToRoot: root given another user's HOME (sudo -E)
// made that user's ~/.cache root's, mode 0700, and followed that user's
// symbolic links in the cache, writing as root where they led. Root's
// default cache is refused with a *ForeignCacheError naming the part of
// another user's, from HOME or XDG_CACHE_HOME down, before anything is
// made, written or downloaded. What the rule first took in too is used
// again: a cache given by its path (a container's volume of the host
// user's), and root's own HOME below another uid's directory (in a user
// namespace, / and the directories above a home mapped to root belong
// to the overflow uid).
func TestDefaultCacheRefusedToRoot(t *testing.T) {
	needRoot(t)
	srv := fetchtest.NewServer(fetchtest.Release{Version: "9.3", Arch: "i386", Kernel: []byte("kernel"),
		Sets: map[string][]byte{"rescue.tgz": []byte("rescue")}})
	defer srv.Close()
	tests := []struct {
		name string
		// setup makes the tree under base, sets HOME and
		// XDG_CACHE_HOME, and returns the Fetcher's Cache ("" for the
		// default).
		setup func(t *testing.T, base string) string
		// during, when set, runs once the release's directory is made,
		// as another user's process could.
		during  func(t *testing.T, dir string)
		foreign string // the part refused, under base; "" for none
		link    bool   // which is a symbolic link
		env     string // where the cache came from
	}{
		{"another user's HOME (sudo -E)", func(t *testing.T, base string) string {
			mkdir(t, base, "home")
			giveAway(t, filepath.Join(base, "home"))
			t.Setenv("HOME", filepath.Join(base, "home"))
			return ""
		}, nil, "home", false, "HOME"},
		{"another user's link as HOME", func(t *testing.T, base string) string {
			symlink(t, filepath.Join(base, "victim"), filepath.Join(base, "home"))
			giveAway(t, filepath.Join(base, "home"))
			t.Setenv("HOME", filepath.Join(base, "home"))
			return ""
		}, nil, "home", true, "HOME"},
		{"another user's ~/.cache", func(t *testing.T, base string) string {
			mkdir(t, base, "home/.cache")
			giveAway(t, filepath.Join(base, "home/.cache"))
			t.Setenv("HOME", filepath.Join(base, "home"))
			return ""
		}, nil, "home/.cache", false, "HOME"},
		{"another user's smolvmm in root's ~/.cache", func(t *testing.T, base string) string {
			mkdir(t, base, "home/.cache/smolvmm")
			giveAway(t, filepath.Join(base, "home/.cache/smolvmm"))
			t.Setenv("HOME", filepath.Join(base, "home"))
			return ""
		}, nil, "home/.cache/smolvmm", false, "HOME"},
		{"another user's XDG_CACHE_HOME", func(t *testing.T, base string) string {
			mkdir(t, base, "xdg")
			giveAway(t, filepath.Join(base, "xdg"))
			t.Setenv("XDG_CACHE_HOME", filepath.Join(base, "xdg"))
			return ""
		}, nil, "xdg", false, "XDG_CACHE_HOME"},
		{"another user's link as smolvmm", func(t *testing.T, base string) string {
			mkdir(t, base, "xdg")
			symlink(t, filepath.Join(base, "victim"), filepath.Join(base, "xdg/smolvmm"))
			giveAway(t, filepath.Join(base, "xdg/smolvmm"))
			t.Setenv("XDG_CACHE_HOME", filepath.Join(base, "xdg"))
			return ""
		}, nil, "xdg/smolvmm", true, "XDG_CACHE_HOME"},
		{"root's link to another user's directory", func(t *testing.T, base string) string {
			mkdir(t, base, "xdg")
			mkdir(t, base, "theirs")
			giveAway(t, filepath.Join(base, "theirs"))
			symlink(t, filepath.Join(base, "theirs"), filepath.Join(base, "xdg/smolvmm"))
			t.Setenv("XDG_CACHE_HOME", filepath.Join(base, "xdg"))
			return ""
		}, nil, "theirs", false, "XDG_CACHE_HOME"},
		{"root's link to another user's link", func(t *testing.T, base string) string {
			mkdir(t, base, "xdg")
			symlink(t, "../hop", filepath.Join(base, "xdg/smolvmm"))
			symlink(t, filepath.Join(base, "victim"), filepath.Join(base, "hop"))
			giveAway(t, filepath.Join(base, "hop"))
			t.Setenv("XDG_CACHE_HOME", filepath.Join(base, "xdg"))
			return ""
		}, nil, "hop", true, "XDG_CACHE_HOME"},
		{"another user's release directory", func(t *testing.T, base string) string {
			mkdir(t, base, "home/.cache/smolvmm/9.3/i386")
			giveAway(t, filepath.Join(base, "home/.cache/smolvmm/9.3"))
			t.Setenv("HOME", filepath.Join(base, "home"))
			return ""
		}, nil, "home/.cache/smolvmm/9.3", false, "HOME"},
		{"another user's link for sets", func(t *testing.T, base string) string {
			mkdir(t, base, "home/.cache/smolvmm/9.3/i386")
			symlink(t, filepath.Join(base, "victim"), filepath.Join(base, "home/.cache/smolvmm/9.3/i386/sets"))
			giveAway(t, filepath.Join(base, "home/.cache/smolvmm/9.3/i386/sets"))
			t.Setenv("HOME", filepath.Join(base, "home"))
			return ""
		}, nil, "home/.cache/smolvmm/9.3/i386/sets", true, "HOME"},
		// The release's directory made, then replaced by another user's
		// link before the lock file is opened (an XDG_CACHE_HOME
		// anybody may write, /tmp).
		{"another user's link made meanwhile", func(t *testing.T, base string) string {
			t.Setenv("XDG_CACHE_HOME", filepath.Join(base, "xdg"))
			return ""
		}, func(t *testing.T, dir string) {
			if err := os.Remove(dir); err != nil {
				t.Fatal(err)
			}
			symlink(t, filepath.Join(filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(dir)))), "victim"), dir)
			giveAway(t, dir)
		}, "xdg/smolvmm/9.3/i386", true, "XDG_CACHE_HOME"},
		{"root's own HOME", func(t *testing.T, base string) string {
			t.Setenv("HOME", filepath.Join(base, "home"))
			return ""
		}, nil, "", false, ""},
		{"root's own link to root's directory", func(t *testing.T, base string) string {
			mkdir(t, base, "xdg")
			symlink(t, filepath.Join(base, "victim"), filepath.Join(base, "xdg/smolvmm"))
			t.Setenv("XDG_CACHE_HOME", filepath.Join(base, "xdg"))
			return ""
		}, nil, "", false, ""},
		// As in a user namespace: HOME is root's, the directories
		// above it another uid's.
		{"root's HOME below another user's directory", func(t *testing.T, base string) string {
			mkdir(t, base, "up/home")
			giveAway(t, filepath.Join(base, "up"))
			t.Setenv("HOME", filepath.Join(base, "up/home"))
			return ""
		}, nil, "", false, ""},
		{"root's XDG_CACHE_HOME below another user's directory", func(t *testing.T, base string) string {
			mkdir(t, base, "up/xdg")
			giveAway(t, filepath.Join(base, "up"))
			t.Setenv("XDG_CACHE_HOME", filepath.Join(base, "up/xdg"))
			return ""
		}, nil, "", false, ""},
		// As docker run -v $PWD/cache:/cache: the user's choice.
		{"another user's cache given", func(t *testing.T, base string) string {
			mkdir(t, base, "vol")
			giveAway(t, filepath.Join(base, "vol"))
			mkdir(t, base, "home")
			giveAway(t, filepath.Join(base, "home"))
			t.Setenv("HOME", filepath.Join(base, "home"))
			return filepath.Join(base, "vol")
		}, nil, "", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := traversableTempDir(t)
			mkdir(t, base, "victim")
			t.Setenv("HOME", "")
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
			before := treeState(t, base)
			srv.ResetLog()
			rel, err := f.Fetch(context.Background(), "9.3", "i386", "rescue")
			if tt.foreign == "" {
				if err != nil {
					t.Fatal(err)
				}
				if rel.Kernel.Action != Downloaded {
					t.Errorf("kernel %s, want downloaded", rel.Kernel.Action)
				}
				return
			}
			var fe *ForeignCacheError
			if !errors.As(err, &fe) || !errors.Is(err, ErrForeignCache) {
				t.Fatalf("err = %v, want a *ForeignCacheError", err)
			}
			if want := filepath.Join(base, tt.foreign); fe.Path != want || fe.Link != tt.link || fe.UID != otherUID || fe.Env != tt.env {
				t.Errorf("refused %s (link %v) of uid %d from %s, want %s (link %v) of uid %d from %s", fe.Path, fe.Link, fe.UID, fe.Env, want, tt.link, otherUID, tt.env)
			}
			if n := len(srv.Requests()); n != 0 {
				t.Errorf("%d requests made, want none", n)
			}
			if got := entries(t, filepath.Join(base, "victim")); len(got) != 0 {
				t.Errorf("written where another user's link led: %q", got)
			}
			if tt.during == nil {
				if diff := diffStates(before, treeState(t, base)); len(diff) > 0 {
					t.Errorf("the tree changed: %q", diff)
				}
			}
		})
	}
}

// TestDefaultCacheDirRefusedToRoot: DefaultCacheDir, which mkimg reads
// cached sets through, and ReleaseDir, which up's checks and rebuild's
// stamps take their directory from, refuse root another user's HOME as
// Fetch does; anybody else is given it.
func TestDefaultCacheDirRefusedToRoot(t *testing.T) {
	needRoot(t)
	base := traversableTempDir(t)
	home := filepath.Join(base, "home")
	mkdir(t, base, "home")
	giveAway(t, home)
	t.Setenv("HOME", home)
	t.Setenv("XDG_CACHE_HOME", "")
	want := filepath.Join(home, ".cache", "smolvmm")
	dir, err := DefaultCacheDir()
	var fe *ForeignCacheError
	if !errors.As(err, &fe) || fe.Path != home || fe.Dir != want || fe.Env != "HOME" {
		t.Errorf("DefaultCacheDir() = %q, %v; want a *ForeignCacheError for %s", dir, err, home)
	}
	if dir, err := new(Fetcher).ReleaseDir("9.3", "i386"); !errors.Is(err, ErrForeignCache) {
		t.Errorf("ReleaseDir = %q, %v; want ErrForeignCache", dir, err)
	}
	geteuid = func() int { return 4242 }
	t.Cleanup(func() { geteuid = os.Geteuid })
	if dir, err := DefaultCacheDir(); err != nil || dir != want {
		t.Errorf("not root: DefaultCacheDir() = %q, %v; want %s", dir, err, want)
	}
}

// TestDefaultCacheOfGroupHome: a user whose HOME is another uid's but
// its group's to write (OpenShift's arbitrary uid, gid 0, in a home of
// uid 1001 mode 0775) had its own default cache made read-only, nothing
// to be downloaded into it: nobody but root is refused anything, and the
// release is downloaded there.
func TestDefaultCacheOfGroupHome(t *testing.T) {
	needRoot(t)
	srv := fetchtest.NewServer(fetchtest.Release{Version: "9.3", Arch: "i386", Kernel: []byte("kernel"),
		Sets: map[string][]byte{"rescue.tgz": []byte("rescue")}})
	defer srv.Close()
	base := searchableTempDir(t)
	home := filepath.Join(base, "home")
	mkdir(t, base, "home")
	if err := os.Chown(home, groupUID, nobodyfs.Nobody); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(home, 0o775); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", home)
	t.Setenv("XDG_CACHE_HOME", "")
	geteuid = func() int { return nobodyfs.Nobody }
	t.Cleanup(func() { geteuid = os.Geteuid })
	f := &Fetcher{Mirror: srv.Mirror()}
	var rel *Release
	err := nobodyfs.Do(t, func() error {
		var err error
		rel, err = f.Fetch(context.Background(), "9.3", "i386", "rescue")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(home, ".cache/smolvmm/9.3/i386/sets/rescue.tgz"); rel.Sets[0].Path != want || rel.Sets[0].Action != Downloaded {
		t.Errorf("set %s %s, want %s downloaded", rel.Sets[0].Path, rel.Sets[0].Action, want)
	}
	if b, err := os.ReadFile(filepath.Join(home, ".cache/smolvmm/9.3/i386/sets/rescue.tgz")); err != nil || string(b) != "rescue" {
		t.Errorf("cached set: %q, %v", b, err)
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
