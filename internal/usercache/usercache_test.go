package usercache

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// owner is path's owner, not following a symbolic link.
func owner(t *testing.T, path string) int {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return int(st.Sys().(*syscall.Stat_t).Uid)
}

// TestTempDirMade: a missing directory is made mode 0700, this user's,
// and used again on the next call.
func TestTempDirMade(t *testing.T) {
	base := t.TempDir()
	euid := os.Geteuid()
	want := filepath.Join(base, "smolvmm-cache-"+strconv.Itoa(euid))
	for i := 0; i < 2; i++ {
		got, err := tempDir(base, euid)
		if err != nil || got != want {
			t.Fatalf("call %d: tempDir = %q, %v, want %q", i, got, err, want)
		}
		st, err := os.Lstat(got)
		if err != nil {
			t.Fatal(err)
		}
		if !st.IsDir() || st.Mode().Perm() != 0o700 || owner(t, got) != euid {
			t.Errorf("call %d: %s is %v of uid %d, want a directory, mode 0700, of uid %d", i, got, st.Mode(), owner(t, got), euid)
		}
	}
}

// TestTempDirRefused: with HOME unset the test caches and guests.Build
// fell back to fixed names under /tmp and trusted what another user had
// put there. A directory of that name that is not this user's, a
// symbolic link (anybody's: it leads anywhere), or one group or others
// may write is now refused, and left as it is.
func TestTempDirRefused(t *testing.T) {
	const other = 65534
	tests := []struct {
		name  string
		root  bool // needs root, to give the directory away
		plant func(t *testing.T, path string)
		want  NotPrivateError // but Path and Self
	}{
		{"another user's directory", true, func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(path, other, other); err != nil {
				t.Fatal(err)
			}
		}, NotPrivateError{UID: other, Mode: 0o700}},
		{"another user's symbolic link", true, func(t *testing.T, path string) {
			if err := os.Symlink(t.TempDir(), path); err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(path, other, other); err != nil {
				t.Fatal(err)
			}
		}, NotPrivateError{Kind: "a symlink", UID: other, Mode: 0o777}},
		{"this user's symbolic link", false, func(t *testing.T, path string) {
			if err := os.Symlink(t.TempDir(), path); err != nil {
				t.Fatal(err)
			}
		}, NotPrivateError{Kind: "a symlink", UID: os.Geteuid(), Mode: 0o777}},
		{"this user's, others may write", false, func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, 0o777); err != nil {
				t.Fatal(err)
			}
		}, NotPrivateError{UID: os.Geteuid(), Mode: 0o777}},
		{"this user's, the group may write", false, func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, 0o770); err != nil {
				t.Fatal(err)
			}
		}, NotPrivateError{UID: os.Geteuid(), Mode: 0o770}},
		{"a file of this user's", false, func(t *testing.T, path string) {
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, NotPrivateError{Kind: "a regular file", UID: os.Geteuid(), Mode: 0o600}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && os.Geteuid() != 0 {
				t.Skip("needs root to give a directory to another user (chown)")
			}
			base := t.TempDir()
			if err := os.Chmod(base, 0o755); err != nil {
				t.Fatal(err)
			}
			euid := os.Geteuid()
			path := filepath.Join(base, "smolvmm-cache-"+strconv.Itoa(euid))
			tt.plant(t, path)
			before, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tempDir(base, euid)
			var npe *NotPrivateError
			if !errors.As(err, &npe) || !errors.Is(err, ErrNotPrivate) {
				t.Fatalf("tempDir = %q, %v, want a *NotPrivateError", got, err)
			}
			want := tt.want
			want.Path, want.Self = path, euid
			if *npe != want {
				t.Errorf("refused %+v, want %+v", *npe, want)
			}
			after, err := os.Lstat(path)
			if err != nil || after.Mode() != before.Mode() || owner(t, path) != int(before.Sys().(*syscall.Stat_t).Uid) {
				t.Errorf("%s changed: %v, was %v", path, after.Mode(), before.Mode())
			}
		})
	}
}

// TestRootPrivate: where the directory is refused, Root gives one of
// this process's own, private, the same each time, and says why.
func TestRootPrivate(t *testing.T) {
	base := t.TempDir()
	t.Setenv("TMPDIR", base)
	t.Setenv("HOME", "")
	t.Setenv("XDG_CACHE_HOME", "")
	planted := filepath.Join(base, "smolvmm-cache-"+strconv.Itoa(os.Geteuid()))
	if err := os.Mkdir(planted, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(planted, 0o777); err != nil {
		t.Fatal(err)
	}
	dir, refused := Root()
	if !errors.Is(refused, ErrNotPrivate) {
		t.Errorf("refused = %v, want one matching ErrNotPrivate", refused)
	}
	if again, _ := Root(); again != dir {
		t.Errorf("Root gave %q, then %q", dir, again)
	}
	if filepath.Dir(dir) != base || dir == planted {
		t.Fatalf("Root = %q, want a new directory in %s", dir, base)
	}
	st, err := os.Lstat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !st.IsDir() || st.Mode().Perm() != 0o700 || owner(t, dir) != os.Geteuid() {
		t.Errorf("%s is %v of uid %d, want a directory, mode 0700, of this user's", dir, st.Mode(), owner(t, dir))
	}
}
