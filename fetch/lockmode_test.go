package fetch

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestLockFileMode: the cache's lock file was made 0644, and any user who
// could read it held its lock through a read-only descriptor (flock -x),
// keeping its owner's fetch waiting for as long as he liked. It is made
// 0600, one left 0644 by an earlier version is narrowed, and directories
// made above the default cache root (~/.cache) are private as XDG says; the
// cache's own stay readable, for a cache that serves other users.
func TestLockFileMode(t *testing.T) {
	tests := []struct {
		name     string
		existing os.FileMode // the lock file's mode before, 0 for none
	}{
		{"new lock file", 0},
		{"one made 0644 before", 0o644},
		{"one made 0640 before", 0o640},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := t.TempDir()
			t.Setenv("HOME", home)
			dir := filepath.Join(home, ".cache", "smolvmm", "9.3", "i386")
			lock := filepath.Join(dir, ".lock")
			if tt.existing != 0 {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(lock, nil, tt.existing); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(lock, tt.existing); err != nil {
					t.Fatal(err)
				}
			}
			unlock, readOnly, err := lockDir(context.Background(), dir, home, nil, nil)
			if err != nil || readOnly != nil {
				t.Fatalf("lockDir: %v, read-only %v", err, readOnly)
			}
			defer unlock()
			for _, c := range []struct {
				path string
				want os.FileMode
			}{
				{lock, 0o600},
				{filepath.Join(home, ".cache"), 0o700},
				{filepath.Join(home, ".cache", "smolvmm"), 0o755 &^ umask(t)},
			} {
				if tt.existing != 0 && c.path != lock {
					continue // made by the test
				}
				st, err := os.Stat(c.path)
				if err != nil {
					t.Fatal(err)
				}
				if got := st.Mode().Perm(); got != c.want {
					t.Errorf("%s: mode %#o, want %#o", c.path, got, c.want)
				}
			}
		})
	}
}

// umask is the process's umask, which os.MkdirAll applies, read from a
// directory made 0777.
func umask(t *testing.T) os.FileMode {
	t.Helper()
	d := filepath.Join(t.TempDir(), "probe")
	if err := os.Mkdir(d, 0o777); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(d)
	if err != nil {
		t.Fatal(err)
	}
	return 0o777 &^ st.Mode().Perm()
}
