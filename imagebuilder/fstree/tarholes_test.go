package fstree_test

import (
	"archive/tar"
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// sparseTar is a tar of GNU sparse members ('S', tar --sparse), each of
// the given size with 512 bytes of data at its end, the rest a hole;
// dense members of that size are written whole instead.
func sparseTar(t *testing.T, sizes []int64, dense bool) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for i, size := range sizes {
		name := fmt.Sprintf("./f%d", i+1)
		if dense {
			h := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0644, Size: size, Format: tar.FormatGNU}
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			tw.Write(make([]byte, size-512))
			tw.Write(bytes.Repeat([]byte("x"), 512))
			continue
		}
		if err := tw.Flush(); err != nil {
			t.Fatal(err)
		}
		// The writer writes no sparse header: a regular one of the
		// data's size, turned into one (the old GNU layout: the map at
		// 386, the file's size at 483).
		h := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0644, Size: 512, Format: tar.FormatGNU}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(bytes.Repeat([]byte("x"), 512))
		if err := tw.Flush(); err != nil {
			t.Fatal(err)
		}
		hdr := b.Bytes()[b.Len()-1024 : b.Len()-512]
		hdr[156] = tar.TypeGNUSparse
		copy(hdr[386:], fmt.Sprintf("%011o\x00%011o\x00", size-512, 512))
		copy(hdr[483:], fmt.Sprintf("%011o\x00", size))
		copy(hdr[148:156], "        ")
		sum := 0
		for _, c := range hdr {
			sum += int(c)
		}
		copy(hdr[148:156], fmt.Sprintf("%06o\x00 ", sum))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestSparseHoles: a few hundred bytes of GNU sparse members stalled a
// build for seconds each, every byte of their holes read as a zero. A
// set's holes may come to twice the largest file a set may hold; past
// that it is refused, saying so; dense zeros, which the archive holds,
// are not holes.
func TestSparseHoles(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name  string
		sizes []int64
		dense bool
		want  string // "" to read
	}{
		{"two sparse files", []int64{mib, mib}, false, ""},
		{"three sparse files", []int64{mib, mib, mib}, false,
			"set.tar: entry 3 (./f3): the set's sparse files hold more than 2097152 bytes of holes"},
		{"three dense files", []int64{mib, mib, mib}, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := fstree.New()
			tr.FileLimit = mib
			err := tr.AddArchive(bytes.NewReader(sparseTar(t, tc.sizes, tc.dense)), "set.tar")
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				n, err := tr.Get(fmt.Sprintf("f%d", len(tc.sizes)))
				if err != nil {
					t.Fatal(err)
				}
				if c := n.Content(); int64(len(c)) != mib || c[mib-1] != 'x' || c[0] != 0 {
					t.Errorf("content of %d bytes, want %d with x at the end", len(c), mib)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("AddArchive = %v, want %q", err, tc.want)
			}
		})
	}
}
