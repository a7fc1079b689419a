package imagebuilder

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// TestPostinstSparse: a sparse set file was written out whole to stage it
// and read back whole (a 1 GiB file with one byte of data cost 2 GiB of
// memory and 1 GiB of disk). It is staged as a sparse file and read back
// by its data regions; a script still sees, and changes, its bytes.
func TestPostinstSparse(t *testing.T) {
	const size = 256 << 20
	for _, tc := range []struct {
		name, script string
		want         map[int64]byte // bytes of var/sparse after the step
		same         bool           // the original node is kept
	}{
		{"left alone", "du -k var/sparse | cut -f1 > etc/du\n", map[int64]byte{size / 2: 'x', 0: 0, size - 1: 0}, true},
		{"changed", "du -k var/sparse | cut -f1 > etc/du\nprintf y | dd of=var/sparse bs=1 seek=100 conv=notrunc 2>/dev/null\n",
			map[int64]byte{size / 2: 'x', 100: 'y', 0: 0, size - 1: 0}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := scriptService(t, tc.script)
			tr := fstree.New()
			sp := &fstree.Node{Type: fstree.Regular, Perm: 0o644, Size: size, Extents: []fstree.Extent{{Off: size / 2, Data: []byte("x")}}}
			tr.Put("var/sparse", sp)
			tr.Put("etc", fstree.NewDir(0o755))
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			if err := RunPostinst(context.Background(), tr, svc, nil); err != nil {
				t.Fatal(err)
			}
			runtime.ReadMemStats(&after)
			if got := after.TotalAlloc - before.TotalAlloc; got > 32<<20 {
				t.Errorf("the step allocated %d MiB for a %d MiB file with one byte of data", got>>20, size>>20)
			}
			du, err := tr.Get("etc/du")
			if err != nil {
				t.Fatal(err)
			}
			if k, err := strconv.Atoi(strings.TrimSpace(string(du.Content()))); err != nil || k > 1024 {
				t.Errorf("staged copy uses %q KiB of disk (%v), want a sparse file", du.Content(), err)
			}
			n, err := tr.Get("var/sparse")
			if err != nil {
				t.Fatal(err)
			}
			if (n == sp) != tc.same {
				t.Errorf("original node kept: %v, want %v", n == sp, tc.same)
			}
			var data int
			for _, e := range n.Extents {
				data += len(e.Data)
			}
			if n.Size != size || data > 2*stageChunk {
				t.Errorf("var/sparse: size %d with %d bytes of extents, want %d with at most %d", n.Size, data, size, 2*stageChunk)
			}
			for off, b := range tc.want {
				if got := fillChunk(make([]byte, 1), n.Extents, off)[0]; got != b {
					t.Errorf("byte %d = %q, want %q", off, got, b)
				}
			}
		})
	}
}

// TestSameContent compares files chunk by chunk whatever their extents.
func TestSameContent(t *testing.T) {
	big := bytes.Repeat([]byte("ab"), stageChunk)
	file := func(size int64, es ...fstree.Extent) *fstree.Node {
		return &fstree.Node{Type: fstree.Regular, Size: size, Extents: es}
	}
	ext := func(off int64, s []byte) fstree.Extent { return fstree.Extent{Off: off, Data: s} }
	for _, tc := range []struct {
		name string
		a, b *fstree.Node
		want bool
	}{
		{"equal", fstree.NewFile(0, []byte("abc")), fstree.NewFile(0, []byte("abc")), true},
		{"one byte differs", fstree.NewFile(0, []byte("abc")), fstree.NewFile(0, []byte("abd")), false},
		{"sizes differ", fstree.NewFile(0, []byte("abc")), fstree.NewFile(0, []byte("abc\x00")), false},
		{"zeros vs hole", fstree.NewFile(0, make([]byte, 3*stageChunk)), file(3 * stageChunk), true},
		{"split differently", file(4*stageChunk, ext(10, big)), file(4*stageChunk, ext(10, big[:100]), ext(110, big[100:])), true},
		{"far data differs", file(1<<40, ext(1<<39, []byte("x"))), file(1<<40, ext(1<<39, []byte("y"))), false},
		{"far data moved", file(1<<40, ext(1<<39, []byte("x"))), file(1<<40, ext(1<<39+1, []byte("x"))), false},
		{"far data equal", file(1<<40, ext(1<<39, []byte("x"))), file(1<<40, ext(1<<39-3, []byte("\x00\x00\x00x"))), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := sameContent(tc.a, tc.b); got != tc.want {
				t.Errorf("sameContent = %v, want %v", got, tc.want)
			}
			if got := sameContent(tc.b, tc.a); got != tc.want {
				t.Errorf("sameContent reversed = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestReadStagedShrank reads staged files that are now shorter than when
// they were opened (a process a postinst script left running truncated
// one between its stat and its read): each is an error saying both
// sizes, not a file of the old size padded with zeros. A file with a
// hole up to its end, of the size it had, reads as it is.
func TestReadStagedShrank(t *testing.T) {
	const mib = 1 << 20
	data := bytes.Repeat([]byte("data"), 16<<10) // 64 KiB
	tests := []struct {
		name  string
		write func(f *os.File) error // the file as it is now
		size  int64                  // its size when it was opened
		want  string                 // in the error; "" for none
	}{
		{"shrank to nothing", func(f *os.File) error { return nil }, 4096,
			"had 4096 bytes when it was opened and now has 0 bytes"},
		{"shrank to its data", func(f *os.File) error { _, err := f.Write(data[:100]); return err }, mib,
			"had 1048576 bytes when it was opened and now has 100 bytes"},
		{"shrank into a hole", func(f *os.File) error {
			if _, err := f.Write(data); err != nil {
				return err
			}
			return f.Truncate(mib / 2)
		}, mib, "had 1048576 bytes when it was opened and now has 524288 bytes"},
		{"a hole to its end", func(f *os.File) error {
			if _, err := f.Write(data); err != nil {
				return err
			}
			return f.Truncate(mib)
		}, mib, ""},
		{"all a hole", func(f *os.File) error { return f.Truncate(mib) }, mib, ""},
		{"all data", func(f *os.File) error { _, err := f.Write(data); return err }, int64(len(data)), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "staged"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := tt.write(f); err != nil {
				t.Fatal(err)
			}
			n, err := readStaged(f, tt.size)
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "changed after the postinst scripts ended") {
					t.Fatalf("readStaged: node %v, error %v; want an error saying it changed and %q", n != nil, err, tt.want)
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
			if n.Size != tt.size || !bytes.Equal(fillChunk(make([]byte, tt.size), n.Extents, 0), want) {
				t.Errorf("read %d bytes that differ from the file's %d", n.Size, tt.size)
			}
		})
	}
}
