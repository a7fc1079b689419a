package fstree

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/internal/testcaps"
)

// TestAddDirUnreadable: an entry of a directory set that the reading user
// may not open (a mode-0 file, a directory of another user's without
// permission for others) was reported as "changed while it was read",
// which it was not. It is an *UnreadableError naming the entry.
func TestAddDirUnreadable(t *testing.T) {
	for _, tc := range []struct {
		name, entry string
		make        func(hp string) error
		want        string
	}{
		{"mode 0 file", "etc/zeromode", func(hp string) error {
			return os.WriteFile(hp, []byte("x"), 0)
		}, "file %s cannot be read: permission denied"},
		{"0700 directory of another user", "etc/private", func(hp string) error {
			if err := os.Mkdir(hp, 0o700); err != nil {
				return err
			}
			if os.Geteuid() == 0 {
				return os.Chown(hp, 65534, 65534)
			}
			return os.Chmod(hp, 0)
		}, "directory %s cannot be read: permission denied"},
		// The set's own directory was "reading D: open D: permission
		// denied", which no advice matched.
		{"the set's own directory, mode 0", ".", func(hp string) error {
			return os.Chmod(hp, 0)
		}, "directory %s cannot be read: permission denied"},
		{"the set's own directory, search only", ".", func(hp string) error {
			return os.Chmod(hp, 0o111)
		}, "directory %s cannot be read: permission denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
				t.Fatal(err)
			}
			hp := filepath.Join(dir, tc.entry)
			if err := tc.make(hp); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(hp, 0o700) })
			var err error
			testcaps.WithoutDAC(t, func() { err = New().AddDir(dir) })
			var ue *UnreadableError
			want := strings.Replace(tc.want, "%s", hp, 1)
			if !errors.As(err, &ue) || !errors.Is(err, fs.ErrPermission) || err.Error() != want {
				t.Errorf("AddDir = %v, want an *UnreadableError %q", err, want)
			}
		})
	}
}
