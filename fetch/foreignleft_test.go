package fetch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/smolvmm/smolvmm/fetch/fetchtest"
	"github.com/smolvmm/smolvmm/internal/nobodyfs"
)

// groupUID owns the other user's tree of TestForeignCacheLeftAsItWas: a
// user who is neither root nor nobodyfs.Nobody, whose directories
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

// giveToGroup gives every entry under root to groupUID, each directory
// mode 0777: a tree that any user may write.
func giveToGroup(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
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
}

// searchableTempDir is traversableTempDir whose parent, t.TempDir's
// own directory for the test (mode 0700), every user may search too.
func searchableTempDir(t *testing.T) string {
	t.Helper()
	base := traversableTempDir(t)
	if err := os.Chmod(filepath.Dir(base), 0o755); err != nil {
		t.Fatal(err)
	}
	return base
}

// TestForeignCacheLeftAsItWas: a cache of another user's whose lock file
// this one may not write is read-only to it, even where the directories
// would let it write (a group's, mode 0777), yet a Fetch that failed
// there (a file not cached) ran removeEmpty, which removed the release's
// empty kernel/ and sets/, its .lock and its directories: the other
// user's tree is now left entry for entry and byte for byte as it was.
func TestForeignCacheLeftAsItWas(t *testing.T) {
	needRoot(t)
	srv := fetchtest.NewServer(fetchtest.Release{Version: "9.3", Arch: "i386", Kernel: []byte("kernel"),
		Sets: map[string][]byte{"rescue.tgz": []byte("rescue")}})
	defer srv.Close()
	tests := []struct {
		name string
		// setup makes the release's tree in dir (cache/9.3/i386).
		setup func(t *testing.T, dir string)
	}{
		{"empty release, private lock", func(t *testing.T, dir string) {
			mkdir(t, dir, "kernel")
			mkdir(t, dir, "sets")
			lockFile(t, dir, 0o600)
		}},
		// A lock file made before lockFileMode, which flock takes
		// through a read-only descriptor.
		{"empty release, lock anybody may read", func(t *testing.T, dir string) {
			mkdir(t, dir, "kernel")
			mkdir(t, dir, "sets")
			lockFile(t, dir, 0o644)
		}},
		{"kernel cached, no sets", func(t *testing.T, dir string) {
			mkdir(t, dir, "kernel")
			mkdir(t, dir, "sets")
			lockFile(t, dir, 0o600)
			write := func(name string, b []byte) {
				if err := os.WriteFile(filepath.Join(dir, "kernel", name), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			write(KernelName, []byte("kernel"))
			write("SHA512", []byte("SHA512 ("+KernelName+") = "+sha512hex([]byte("kernel"))+"\n"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := searchableTempDir(t)
			cache := filepath.Join(base, "cache")
			dir := filepath.Join(cache, "9.3", "i386")
			mkdir(t, dir, "")
			tt.setup(t, dir)
			giveToGroup(t, cache)
			before := treeState(t, cache)
			srv.ResetLog()
			f := &Fetcher{Mirror: srv.Mirror(), Cache: cache}
			err := nobodyfs.Do(t, func() error {
				_, err := f.Fetch(context.Background(), "9.3", "i386", "rescue")
				return err
			})
			if !errors.Is(err, ErrCacheNotWritable) {
				t.Errorf("err = %v, want one matching ErrCacheNotWritable", err)
			}
			if n := len(srv.Requests()); n != 0 {
				t.Errorf("%d requests made, want none", n)
			}
			if diff := diffStates(before, treeState(t, cache)); len(diff) > 0 {
				t.Errorf("the other user's cache changed: %q", diff)
			}
		})
	}
}

// lockFile makes the release's lock file in dir, of mode perm.
func lockFile(t *testing.T, dir string, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, ".lock"), nil, perm); err != nil {
		t.Fatal(err)
	}
}
