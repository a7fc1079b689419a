package fstree_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// zeroMember is a member of the given size, zeros but for the data
// written at each offset of data.
type zeroMember struct {
	size int64
	data map[int64]string
}

func (m zeroMember) content() []byte {
	b := make([]byte, m.size)
	for off, d := range m.data {
		copy(b[off:], d)
	}
	return b
}

// heldBytes is what the extents of n hold: their length, and the
// capacity allocated for them.
func heldBytes(n *fstree.Node) (held, capacity int64) {
	for _, e := range n.Extents {
		held += int64(len(e.Data))
		capacity += int64(cap(e.Data))
	}
	return held, capacity
}

// TestTarZerosHeld: a member of 64 MiB or less was held whole, zeros and
// all, so 1.7 KB of .tgz holding 30 files of zeros took 2.7 GB of memory.
// Only the 4 KiB runs of a member holding a non-zero byte are kept now,
// the rest holes, and the content reads back the same.
func TestTarZerosHeld(t *testing.T) {
	const kib, mib = 1 << 10, 1 << 20
	x := func(n int) string { return string(bytes.Repeat([]byte("x"), n)) }
	for _, tc := range []struct {
		name    string
		members []zeroMember
		held    int64 // bytes the extents of all members hold
	}{
		{"twenty files of 8 MiB of zeros", func() []zeroMember {
			ms := make([]zeroMember, 20)
			for i := range ms {
				ms[i] = zeroMember{size: 8 * mib}
			}
			return ms
		}(), 0},
		{"data, zeros, data", []zeroMember{{3*mib + 100, map[int64]string{0: "head", 3*mib + 96: "tail"}}}, 4*kib + 100},
		{"data across a chunk's end", []zeroMember{{mib, map[int64]string{64*kib - 2: "data"}}}, 8 * kib},
		{"data in every other 4 KiB", []zeroMember{{64 * kib, map[int64]string{0: "a", 8 * kib: "b", 60 * kib: "c"}}}, 12 * kib},
		{"all data", []zeroMember{{mib + 1, map[int64]string{0: x(mib + 1)}}}, mib + 1},
		{"data with zeros short of 4 KiB", []zeroMember{{20 * kib, map[int64]string{0: x(8 * kib), 11 * kib: x(9 * kib)}}}, 20 * kib},
		{"small, zeros", []zeroMember{{100, nil}}, 0},
		{"small, data", []zeroMember{{100, map[int64]string{99: "x"}}}, 100},
		{"empty", []zeroMember{{0, nil}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			tw := tar.NewWriter(zw)
			for i, m := range tc.members {
				if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("f%d", i), Mode: 0644, Size: m.size}); err != nil {
					t.Fatal(err)
				}
				if _, err := tw.Write(m.content()); err != nil {
					t.Fatal(err)
				}
			}
			if err := tw.Close(); err != nil {
				t.Fatal(err)
			}
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			tr := fstree.New()
			if err := tr.AddArchive(&b, "set.tgz"); err != nil {
				t.Fatal(err)
			}
			var held, capacity int64
			for i, m := range tc.members {
				n, err := tr.Get(fmt.Sprintf("f%d", i))
				if err != nil {
					t.Fatal(err)
				}
				if n.Size != m.size || !bytes.Equal(n.Content(), m.content()) {
					t.Errorf("f%d: %d bytes, want %d, the same content %v", i, n.Size, m.size, bytes.Equal(n.Content(), m.content()))
				}
				h, c := heldBytes(n)
				held += h
				capacity += c
			}
			if held != tc.held || capacity > held+held/8 {
				t.Errorf("the files hold %d bytes in %d allocated, want %d", held, capacity, tc.held)
			}
		})
	}
}

// TestTarSparseHeld: a sparse member's holes are not held either, also
// below the 64 MiB a member was read whole up to.
func TestTarSparseHeld(t *testing.T) {
	const mib = 1 << 20
	sizes := make([]int64, 20)
	for i := range sizes {
		sizes[i] = 8 * mib
	}
	tr := fstree.New()
	if err := tr.AddArchive(bytes.NewReader(sparseTar(t, sizes, false)), "set.tar"); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 8*mib)
	copy(want[8*mib-512:], bytes.Repeat([]byte("x"), 512))
	for i := range sizes {
		n, err := tr.Get(fmt.Sprintf("f%d", i+1))
		if err != nil {
			t.Fatal(err)
		}
		// The data's 512 bytes, in the 4 KiB run they end.
		if held, _ := heldBytes(n); held != 4<<10 || !bytes.Equal(n.Content(), want) {
			t.Errorf("f%d holds %d bytes, want 4096, the content the same %v", i+1, held, bytes.Equal(n.Content(), want))
		}
	}
}
