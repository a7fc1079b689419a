package blk

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpenReplacedBeforeLock: an image replaced under its name between
// Open's open and its lock (an image builder renaming a new image over
// one it saw unlocked) was served, its guest writing to a file no longer named:
// Open now serves the file the name holds once locked, and refuses a
// name that never holds still.
func TestOpenReplacedBeforeLock(t *testing.T) {
	tests := []struct {
		name    string
		replace func(t *testing.T, path string, call int) // run between open and lock
		size    int64                                     // the disk served: the new file's size
		wantErr string
		is      error
	}{
		{"replaced once", func(t *testing.T, path string, call int) {
			if call == 1 {
				renameOver(t, path, 8192)
			}
		}, 8192, "", nil},
		{"replaced every time", func(t *testing.T, path string, call int) {
			renameOver(t, path, int64(4096*(call+1)))
		}, 0, "replaced by another file each of the 5 times it was opened and locked", nil},
		{"removed", func(t *testing.T, path string, call int) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}, 0, "no such file or directory", fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "disk.img")
			if err := os.WriteFile(path, make([]byte, 4096), 0o644); err != nil {
				t.Fatal(err)
			}
			calls := 0
			afterOpen = func(p string) {
				calls++
				if p != path {
					t.Errorf("afterOpen(%q), want %q", p, path)
				}
				tt.replace(t, path, calls)
			}
			t.Cleanup(func() { afterOpen = nil })
			d, err := Open(path, Options{})
			if tt.wantErr != "" {
				if err == nil {
					d.Close()
					t.Fatalf("Open served a disk of %d bytes, want an error saying %q", d.Size(), tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) || tt.is != nil && !errors.Is(err, tt.is) {
					t.Fatalf("Open: %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if d.Size() != tt.size {
				t.Errorf("served a disk of %d bytes, want the new file's %d", d.Size(), tt.size)
			}
			afterOpen = nil
			// The file the name holds is the one locked.
			if _, err := Open(path, Options{}); !errors.Is(err, ErrInUse) {
				t.Errorf("a second Open of the name: %v, want ErrInUse", err)
			}
		})
	}
}

// renameOver puts a new file of size bytes in place of path, as an image
// builder does.
func renameOver(t *testing.T, path string, size int64) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
