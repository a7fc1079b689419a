package ext2

import (
	"fmt"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"github.com/smolvmm/smolvmm/imagebuilder/testsets"
)

// TestPlannedBlocks: the plan's block count, from which MinSize and
// AutoSize size an image, is the count the writer allocates, tree by
// tree, and an image of the least size is written. The plan and the
// writer each decide when a symlink needs a block (a target of 60 bytes
// or more, see TestSymlinkInlineBoundary): had the plan put the line at
// 61 bytes, 3000 symlinks of 60 bytes were sized at 1 MiB and Write
// failed "out of blocks (internal sizing error)".
func TestPlannedBlocks(t *testing.T) {
	symlinks := func(n, size int) func(t *testing.T, tr *fstree.Tree) {
		return func(t *testing.T, tr *fstree.Tree) {
			for i := range n {
				mustPut(t, tr, fmt.Sprintf("l/%04d", i), fstree.NewSymlink(fmt.Sprintf("/%04d", i)+strings.Repeat("x", size-5)))
			}
		}
	}
	for _, tc := range []struct {
		name  string
		bs    uint32 // 0: the block size MinSize picks
		build func(t *testing.T, tr *fstree.Tree)
	}{
		{"empty", 0, func(*testing.T, *fstree.Tree) {}},
		{"3000 symlinks of 59 bytes", 0, symlinks(3000, 59)},
		{"3000 symlinks of 60 bytes", 0, symlinks(3000, 60)},
		{"3000 symlinks of 61 bytes", 0, symlinks(3000, 61)},
		{"3000 symlinks of 60 bytes, 4 KiB blocks", 4096, symlinks(3000, 60)},
		{"longest symlink", 1024, symlinks(1, fstree.MaxPathLen)},
		{"files", 0, func(t *testing.T, tr *fstree.Tree) {
			for i := range 300 {
				mustPut(t, tr, fmt.Sprintf("d%d/f%d", i/50, i), fstree.NewFile(0o644, testsets.Blob(uint64(i), i*97)))
			}
		}},
		// A file past the direct and single indirect blocks takes
		// indirect blocks of both levels.
		{"double indirect", 1024, func(t *testing.T, tr *fstree.Tree) {
			mustPut(t, tr, "big", fstree.NewFile(0o644, testsets.Blob(3, (12+256+3)*1024)))
		}},
		// A sparse file takes blocks for its data alone, and the
		// indirect blocks that reach them.
		{"sparse", 1024, func(t *testing.T, tr *fstree.Tree) {
			n := &fstree.Node{Type: fstree.Regular, Perm: 0o644, Size: 8 << 20}
			for i := range 8 {
				n.Extents = append(n.Extents, fstree.Extent{Off: int64(i) << 20, Data: []byte{1}})
			}
			mustPut(t, tr, "sparse", n)
		}},
		{"a directory of many entries", 0, func(t *testing.T, tr *fstree.Tree) {
			for i := range 2000 {
				mustPut(t, tr, fmt.Sprintf("dir/%s%d", strings.Repeat("n", 40), i), fstree.NewDevice(fstree.CharDev, 0o600, 1, uint32(i)))
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := fstree.New()
			tc.build(t, tr)
			opts := Options{BlockSize: tc.bs, Timestamp: ts}
			size, err := MinSize(tr, &opts)
			if err != nil {
				t.Fatal(err)
			}
			opts.Size = size
			if err := Write(&memImage{}, tr, opts); err != nil {
				t.Fatalf("Write at MinSize %d: %v", size, err)
			}
			auto := opts
			if auto.Size, err = AutoSize(tr, &auto, func(int64) int64 { return 0 }); err != nil {
				t.Fatal(err)
			}
			if err := Write(&memImage{}, tr, auto); err != nil {
				t.Fatalf("Write at AutoSize %d: %v", auto.Size, err)
			}

			p, g, err := layout(tr, &opts)
			if err != nil {
				t.Fatal(err)
			}
			iw := newImageWriter(&memImage{}, p, g, &opts)
			free := append([]uint32(nil), iw.freeB...)
			if err := iw.writeAll(); err != nil {
				t.Fatal(err)
			}
			var used uint64
			for grp := range free {
				used += uint64(free[grp] - iw.freeB[grp])
			}
			if used != p.blocks {
				t.Errorf("%d-byte blocks: the plan counts %d blocks, the writer allocated %d", g.bs, p.blocks, used)
			}
		})
	}
}
