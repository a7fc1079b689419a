package blk_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/internal/nobodyfs"
	"github.com/smolvmm/smolvmm/virtio/blk"
)

// TestOpenNotReadable: an image this user may not read was called "not
// writable" and given the advice to attach it read-only, which then failed
// with no advice. It is now said not to be readable, read-write and
// read-only alike, with what to make it, or, a directory on its path
// refusing its search, which directory; an image only not writable keeps
// its advice.
func TestOpenNotReadable(t *testing.T) {
	dir, err := os.MkdirTemp("", "blkperm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	image := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, make([]byte, 4096), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	noRead, readOnly := image("noread.img", 0), image("ronly.img", 0o444)
	shut := filepath.Join(dir, "shut")
	if err := os.Mkdir(shut, 0o755); err != nil {
		t.Fatal(err)
	}
	inShut := filepath.Join(shut, "d.img")
	if err := os.WriteFile(inShut, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shut, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(shut, 0o755) })

	const (
		rwNotReadable = ": cannot open it read-write: the image may not be read by this user: permission denied (make it readable and writable by this user, or readable and attach it read-only)"
		roNotReadable = ": cannot open it read-only: the image may not be read by this user: permission denied (make it readable by this user)"
	)
	shutNotSearched := ": the image may not be read by this user: the directory " + shut + " may not be searched by this user: permission denied (let this user search the directory, or move the image to one it may search)"
	tests := []struct {
		name, path string
		ro         bool
		is         error // nil: it opens
		want       string
	}{
		{"unreadable read-write", noRead, false, blk.ErrNotReadable, "disk image " + noRead + rwNotReadable},
		{"unreadable read-only", noRead, true, blk.ErrNotReadable, "disk image " + noRead + roNotReadable},
		{"directory shut read-write", inShut, false, blk.ErrNotReadable, "disk image " + inShut + ": cannot open it read-write" + shutNotSearched},
		{"directory shut read-only", inShut, true, blk.ErrNotReadable, "disk image " + inShut + ": cannot open it read-only" + shutNotSearched},
		{"read-only file read-write", readOnly, false, blk.ErrNotWritable, "disk image " + readOnly + ": cannot open it read-write: the image is not writable: permission denied (attach it read-only, or make it writable)"},
		{"read-only file read-only", readOnly, true, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := nobodyfs.Do(t, func() error {
				d, err := blk.Open(tt.path, blk.Options{ReadOnly: tt.ro})
				if err == nil {
					d.Close()
				}
				return err
			})
			switch {
			case tt.is == nil && err != nil:
				t.Fatalf("Open: %v, want it open", err)
			case tt.is == nil:
			case !errors.Is(err, tt.is) || err.Error() != tt.want:
				t.Fatalf("Open: %v\nwant %q, wrapping %v", err, tt.want, tt.is)
			case tt.is == blk.ErrNotReadable && errors.Is(err, blk.ErrNotWritable):
				t.Fatalf("Open: %v says the image is not writable, and reading it is refused too", err)
			case strings.Count(err.Error(), "permission denied") != 1:
				t.Fatalf("Open: %v", err)
			}
			var ae *blk.AccessError
			if tt.is == blk.ErrNotReadable && (!errors.As(err, &ae) || ae.ReadOnly != tt.ro || (ae.Dir == shut) != (tt.path == inShut)) {
				t.Fatalf("Open: %#v, want a *blk.AccessError, read-only %v, naming the directory only when it refused", ae, tt.ro)
			}
		})
	}
}
