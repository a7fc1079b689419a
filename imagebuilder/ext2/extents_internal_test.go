package ext2

import (
	"bytes"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// TestBlockDataManyExtents: each block of a file was looked for in all its
// extents, so writing a sparse file took time in the square of its runs of
// data: 2^16 of them, 256 MiB with a byte every 4 KiB, took some 15 s, and
// a 4 GiB file half an hour. A block's extents are found by binary search now.
func TestBlockDataManyExtents(t *testing.T) {
	const bs, runs, every = 1024, 1 << 16, 4096
	n := &fstree.Node{Type: fstree.Regular, Size: runs * every}
	for i := range runs {
		// Some runs cross a block's end, so a block has two.
		n.Extents = append(n.Extents, fstree.Extent{Off: int64(i*every + bs - 1 - i%2), Data: []byte{byte(i), byte(i >> 8)}})
	}
	p := &plan{bs: bs}
	buf, got, want := make([]byte, bs), make([]byte, 2*bs), make([]byte, 2*bs)
	start := time.Now()
	for i, e := range n.Extents {
		b := uint32(e.Off / bs)
		clear(want)
		copy(want[e.Off-int64(b)*bs:], e.Data)
		copy(got, p.blockData(n, b, buf))
		copy(got[bs:], p.blockData(n, b+1, buf))
		if !bytes.Equal(got, want) {
			t.Fatalf("run %d at byte %d: blocks %d and %d hold %x, want %x", i, e.Off, b, b+1, bytes.TrimRight(got, "\x00"), bytes.TrimRight(want, "\x00"))
		}
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("reading the blocks of %d runs took %v, want well under 2 s", runs, took)
	}
}
