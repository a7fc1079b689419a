package fetch

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestLockDirParentRemoved: a failed Fetch removes the empty directories
// it made (removeEmpty) while another, into the same new cache, makes
// them: that one's mkdir then fails with ENOENT ("mkdir .../c/new: no
// such file or directory"), which is tried again, as the lock file's
// open is. A directory that keeps vanishing is an error, not a loop
// without end.
func TestLockDirParentRemoved(t *testing.T) {
	tests := []struct {
		name    string
		vanish  int // mkdirs that fail with ENOENT before they succeed
		wantErr string
	}{
		{"once", 1, ""},
		{"a few times", 5, ""},
		{"for ever", 1 << 30, "no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			left := tt.vanish
			mkdirAll = func(p string, perm fs.FileMode) error {
				if left > 0 {
					left--
					return &fs.PathError{Op: "mkdir", Path: p, Err: syscall.ENOENT}
				}
				return os.MkdirAll(p, perm)
			}
			t.Cleanup(func() { mkdirAll = os.MkdirAll })
			dir := filepath.Join(t.TempDir(), "c", "new")
			unlock, _, err := lockDir(context.Background(), dir, filepath.Dir(dir), nil, nil)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				unlock()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one saying %q", err, tt.wantErr)
			}
		})
	}
}
