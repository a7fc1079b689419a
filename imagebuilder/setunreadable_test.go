package imagebuilder_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder"
	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"github.com/smolvmm/smolvmm/internal/testcaps"
)

// TestSetUnreadable: a set the builder may not read is an
// *fstree.UnreadableError naming what refused it once. The set's own
// directory was named twice ("set D: directory D cannot be read"), and a
// set below a directory the builder may not search was "set D: stat:
// permission denied", no UnreadableError, naming neither that directory
// nor what to do about it. One below a directory the builder may not
// search is a *imagebuilder.SetUnreachableError besides, whatever its
// kind, as an archive's is not read by AddDir.
func TestSetUnreadable(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  string // the set given, below the test's directory
		path string // made mode 0
		want string // %s the test's directory
		// unreachable: the set's path is at fault, not its content (a
		// *imagebuilder.SetUnreachableError).
		unreachable bool
	}{
		{"the set's directory", "sets/base", "sets/base", "set directory %s/sets/base cannot be read: permission denied", false},
		{"a file of the set", "sets/base", "sets/base/etc/secret", "set %s/sets/base: file %s/sets/base/etc/secret cannot be read: permission denied", false},
		{"a directory above the set", "sets/base", "sets", "set %s/sets/base: directory %s/sets cannot be read: permission denied", true},
		{"a directory above an archive", "sets/base.tar", "sets", "set %s/sets/base.tar: directory %s/sets cannot be read: permission denied", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "sets/base/etc"), 0o755); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"sets/base/etc/secret", "sets/base.tar"} {
				if err := os.WriteFile(filepath.Join(dir, f), []byte("x\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			p := filepath.Join(dir, tc.path)
			if err := os.Chmod(p, 0); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(p, 0o755) })
			cfg := imagebuilder.Config{Sets: []string{filepath.Join(dir, tc.set)}, Service: loadService(t, "rescue", ""), Timestamp: ts}
			var err error
			testcaps.WithoutDAC(t, func() { _, err = imagebuilder.BuildTree(context.Background(), &cfg) })
			want := strings.ReplaceAll(tc.want, "%s", dir)
			var ue *fstree.UnreadableError
			if !errors.As(err, &ue) || !errors.Is(err, fs.ErrPermission) || err == nil || err.Error() != want {
				t.Errorf("BuildTree = %v, want an *fstree.UnreadableError %q", err, want)
			}
			var se *imagebuilder.SetUnreachableError
			if got := errors.As(err, &se); got != tc.unreachable {
				t.Errorf("BuildTree = %v: a *imagebuilder.SetUnreachableError %v, want %v", err, got, tc.unreachable)
			} else if got && (se.Set != filepath.Join(dir, tc.set) || se.Err.Path != filepath.Join(dir, "sets")) {
				t.Errorf("SetUnreachableError names set %q and directory %q, want %q and %q", se.Set, se.Err.Path, filepath.Join(dir, tc.set), filepath.Join(dir, "sets"))
			}
		})
	}
}
