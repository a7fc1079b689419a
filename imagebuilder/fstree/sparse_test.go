package fstree_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// TestReadSparse: a file is read by its data regions, its zeros left as
// holes; one found shorter than the size it had when opened changed while
// it was read, and is a *ShrankError, not a file padded with zeros.
func TestReadSparse(t *testing.T) {
	const mib = 1 << 20
	data := bytes.Repeat([]byte("data"), 16<<10) // 64 KiB
	tests := []struct {
		name     string
		write    func(f *os.File) error // the file as it is now
		size     int64                  // its size when it was opened
		now      int64                  // its size in the *ShrankError; -1 for none
		extBytes int64                  // bytes the extents hold
	}{
		{"shrank to nothing", func(f *os.File) error { return nil }, 4096, 0, 0},
		{"shrank into a hole", func(f *os.File) error {
			if _, err := f.Write(data); err != nil {
				return err
			}
			return f.Truncate(mib / 2)
		}, mib, mib / 2, 0},
		{"a hole to its end", func(f *os.File) error {
			if _, err := f.Write(data); err != nil {
				return err
			}
			return f.Truncate(mib)
		}, mib, -1, int64(len(data))},
		{"all a hole", func(f *os.File) error { return f.Truncate(mib) }, mib, -1, 0},
		{"zeros written", func(f *os.File) error { _, err := f.Write(make([]byte, mib)); return err }, mib, -1, 0},
		{"all data", func(f *os.File) error { _, err := f.Write(data); return err }, int64(len(data)), -1, int64(len(data))},
		{"grew", func(f *os.File) error { _, err := f.Write(data); return err }, 100, -1, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "f"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := tt.write(f); err != nil {
				t.Fatal(err)
			}
			n, err := fstree.ReadSparse(f, tt.size)
			var se *fstree.ShrankError
			if tt.now >= 0 {
				if !errors.As(err, &se) || se.Was != tt.size || se.Now != tt.now {
					t.Fatalf("node %v, error %v; want a *ShrankError from %d to %d bytes", n != nil, err, tt.size, tt.now)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := make([]byte, tt.size)
			if _, err := f.ReadAt(want, 0); err != nil {
				t.Fatal(err)
			}
			var held int64
			for _, e := range n.Extents {
				held += int64(len(e.Data))
			}
			if n.Size != tt.size || held != tt.extBytes || !bytes.Equal(n.Content(), want) {
				t.Errorf("read %d bytes, %d in extents, equal %v; want the file's %d bytes, %d in extents", n.Size, held, bytes.Equal(n.Content(), want), tt.size, tt.extBytes)
			}
		})
	}
}
