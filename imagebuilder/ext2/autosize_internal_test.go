package ext2

import (
	"encoding/binary"
	"fmt"
	"os"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"github.com/smolvmm/smolvmm/imagebuilder/internal/imagecheck"
	"github.com/smolvmm/smolvmm/imagebuilder/testsets"
)

// TestAutoSizeKeepsFree sizes images to their content plus a quarter
// across the size from which 4 KiB blocks are picked (lowered here from
// 512 MiB, through largeImage, to just above the content's least size):
// the least size is found with 1 KiB blocks, and the size with the
// quarter added once got 4 KiB blocks, in which each small file takes 4
// times the space, so the image came out nearly full (512 MiB with 1.2%
// free, for content that needs 401 MiB). A tree of few files, and one
// whose least size already takes 4 KiB blocks, keep their quarter too.
func TestAutoSizeKeepsFree(t *testing.T) {
	big := testsets.Blob(5, 12<<20)
	for _, tc := range []struct {
		name  string
		small int   // 1-byte files beside a 12 MiB one
		limit int64 // largeImage in MiB above the least size; 0 leaves it
	}{
		{"crossing the 4 KiB size", 800, 1},
		{"below it", 1500, 0},
		{"all 4 KiB", 1500, -8},
		{"few files crossing", 3, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := fstree.New()
			mustPut(t, tr, "big", fstree.NewFile(0o644, big))
			for i := range tc.small {
				mustPut(t, tr, fmt.Sprintf("d%d/f%d", i/500, i), fstree.NewFile(0o644, []byte{'x'}))
			}
			defer func(l int64) { largeImage = l }(largeImage)
			least, err := MinSize(tr, &Options{})
			if err != nil {
				t.Fatal(err)
			}
			if tc.limit != 0 {
				largeImage = least + tc.limit<<20
			}
			opts := Options{Timestamp: ts}
			size, err := AutoSize(tr, &opts, func(min int64) int64 { return min / 4 })
			if err != nil {
				t.Fatal(err)
			}
			opts.Size = size
			img := writeImage(t, tr, opts)
			imagecheck.Fsck(t, img)
			b, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			sb := b[superOffset:]
			blocks, free := binary.LittleEndian.Uint32(sb[4:]), binary.LittleEndian.Uint32(sb[12:])
			bs := uint64(1024) << binary.LittleEndian.Uint32(sb[24:])
			used := uint64(blocks-free) * bs
			t.Logf("least %d KiB, size %d MiB, bs %d, free %d KiB, used %d KiB", least>>10, size>>20, bs, uint64(free)*bs>>10, used>>10)
			// The inode tables grow with the image, by a 32nd of what is
			// added at 1 KiB blocks: what stays free is a little less.
			if want := used / 4 * 31 / 32; uint64(free)*bs < want {
				t.Errorf("image of %d MiB, %d-byte blocks: %d KiB free, %d KiB used; want at least %d KiB free (a quarter of what is used, less the inode tables)",
					size>>20, bs, uint64(free)*bs>>10, used>>10, want>>10)
			}
		})
	}
}
