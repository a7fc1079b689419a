package imagebuilder

import (
	"bytes"
	"encoding/binary"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/diskfs/go-diskfs/backend"
	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
	"github.com/smolvmm/smolvmm/imagebuilder/testsets"
)

// writeLog is a data image's storage that records the offset of every
// write made through it.
type writeLog struct {
	backend.Storage
	offs *[]int64
}

func (s writeLog) Writable() (backend.WritableFile, error) {
	w, err := s.Storage.Writable()
	return loggedWriter{w, s.offs}, err
}

type loggedWriter struct {
	backend.WritableFile
	offs *[]int64
}

func (w loggedWriter) WriteAt(p []byte, off int64) (int, error) {
	*w.offs = append(*w.offs, off)
	return w.WritableFile.WriteAt(p, off)
}

// fatWrites builds a FAT32 data image of one file of size bytes and
// counts the writes that went to its FATs.
func fatWrites(t *testing.T, size int) int {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f.dat"), testsets.Blob(1, size), 0o644); err != nil {
		t.Fatal(err)
	}
	var offs []int64
	old := dataStorage
	dataStorage = func(f fs.File) backend.Storage { return writeLog{old(f), &offs} }
	defer func() { dataStorage = old }()
	img := filepath.Join(t.TempDir(), "data.img")
	if err := BuildDataImage(dir, img, DataFAT32); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bpb := make([]byte, 512)
	if _, err := f.ReadAt(bpb, 0); err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	bps, reserved, nfats, fatSectors := int64(le.Uint16(bpb[11:])), int64(le.Uint16(bpb[14:])), int64(bpb[16]), int64(le.Uint32(bpb[36:]))
	n := 0
	for _, off := range offs {
		if off >= reserved*bps && off < (reserved+nfats*fatSectors)*bps {
			n++
		}
	}
	return n
}

// TestDataFAT32FileWritesFATOnce checks that a file's copy into a FAT32
// data image writes the FATs as often whatever the file's size: go-diskfs
// grows the cluster chain, and writes both FATs whole, at each write it
// is given, which made the build quadratic in the file's size.
func TestDataFAT32FileWritesFATOnce(t *testing.T) {
	want := fatWrites(t, 2000) // a few clusters
	for _, size := range []int{64 << 10, 1 << 20, 3<<20 + 7} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			if got := fatWrites(t, size); got != want {
				t.Errorf("a file of %d bytes: %d writes to the FATs, want %d as for one of 2000 bytes", size, got, want)
			}
		})
	}
}

// TestCopyFAT32File copies readers of as many bytes as the file's size,
// and fewer (a file that shrank while it was copied), into a FAT32 file
// system: the count says how many were copied, and those read back.
func TestCopyFAT32File(t *testing.T) {
	tests := []struct {
		name       string
		size, have int
	}{
		{"empty", 0, 0},
		{"one byte", 1, 1},
		{"one cluster", 512, 512},
		{"a cluster and a byte", 513, 513},
		{"past the copy buffer", 1<<20 + 1000, 1<<20 + 1000},
		{"shrank to nothing", 5000, 0},
		{"shrank within a cluster", 5000, 4700},
		{"shrank past the copy buffer", 3 << 20, 1<<20 + 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "fat.img"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := f.Truncate(minFAT32); err != nil {
				t.Fatal(err)
			}
			b := file.New(f, false)
			fsys, err := fat32.Create(b, minFAT32, 0, 512, DataLabel, true)
			if err != nil {
				t.Fatal(err)
			}
			out, err := fsys.OpenFile("/f.dat", os.O_CREATE|os.O_RDWR)
			if err != nil {
				t.Fatal(err)
			}
			data := testsets.Blob(2, tt.have)
			w, err := b.Writable()
			if err != nil {
				t.Fatal(err)
			}
			n, err := copyFAT32File(out, bytes.NewReader(data), int64(tt.size), w, fsys.Start())
			if err != nil || n != int64(tt.have) {
				t.Fatalf("copied %d bytes (%v), want %d", n, err, tt.have)
			}
			out.Close()
			if tt.size == 0 {
				return
			}
			in, err := fsys.OpenFile("/f.dat", os.O_RDONLY)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(in)
			if err != nil || len(got) != tt.size || !bytes.Equal(got[:tt.have], data) {
				t.Errorf("read back %d bytes (%v), want %d starting with the %d copied", len(got), err, tt.size, tt.have)
			}
		})
	}
}
