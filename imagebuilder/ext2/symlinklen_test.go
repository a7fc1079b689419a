package ext2

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"github.com/smolvmm/smolvmm/imagebuilder/internal/imagecheck"
)

// TestSymlinkTargetLimit: a symlink target of up to fstree.MaxPathLen
// bytes is written, whatever the block size; a longer one is refused
// with a ContentError naming the link, the target's length and the
// limit, with 1 KiB blocks as with 4 KiB ones (the block size an image of
// 512 MiB or more gets). NetBSD follows no target of 1023 bytes or more
// (ENAMETOOLONG), yet only a target longer than a block less a byte was
// refused: 1023 bytes went in with 1 KiB blocks, 4095 with 4 KiB.
func TestSymlinkTargetLimit(t *testing.T) {
	imagecheck.Need(t, "debugfs")
	for _, geo := range []struct {
		name string
		size int64
		bs   uint32
	}{
		{"1 KiB blocks", 4 << 20, 1024},
		{"2 KiB blocks", 8 << 20, 2048},
		{"4 KiB blocks", 8 << 20, 4096},
		{"512 MiB, blocks by default", 512 << 20, 0}, // 4 KiB
	} {
		for _, size := range []int{fstree.MaxPathLen, fstree.MaxPathLen + 1, 1500, 4095} {
			t.Run(fmt.Sprintf("%s, %d bytes", geo.name, size), func(t *testing.T) {
				target := "/" + strings.Repeat("x", size-1)
				tr := fstree.New()
				mustPut(t, tr, "usr/l", fstree.NewSymlink(target))
				img := filepath.Join(t.TempDir(), "root.img")
				f, err := os.Create(img)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				err = Write(f, tr, Options{Size: geo.size, BlockSize: geo.bs, Timestamp: ts})
				if size <= fstree.MaxPathLen {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					imagecheck.Fsck(t, img)
					if st := imagecheck.Debugfs(t, img, "stat /usr/l"); !strings.Contains(st, fmt.Sprintf("Size: %d\n", size)) {
						t.Errorf("stat /usr/l: want size %d in\n%s", size, st)
					}
					if got := imagecheck.Debugfs(t, img, "cat /usr/l"); !strings.HasPrefix(got, target) {
						t.Errorf("block of /usr/l holds %.40q..., want the target", got)
					}
					return
				}
				want := fmt.Sprintf("symlink /usr/l: its target is %d bytes, more than the %d NetBSD can follow", size, fstree.MaxPathLen)
				var ce *ContentError
				if !errors.As(err, &ce) || ce.Path != "/usr/l" || !strings.HasPrefix(err.Error(), want) {
					t.Fatalf("got %v, want a ContentError for /usr/l starting %q", err, want)
				}
				if st, err := f.Stat(); err != nil || st.Size() != 0 {
					t.Errorf("the refused image was written: %v, %d bytes", err, st.Size())
				}
			})
		}
	}
}
