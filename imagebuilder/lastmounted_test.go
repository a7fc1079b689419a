package imagebuilder_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder"
	"github.com/smolvmm/smolvmm/imagebuilder/testsets"
)

// TestBuildLastMounted: the image is the VM's root, which NetBSD mounts
// on "/" and writes as its last mount point into the superblock alone;
// fsck_ext2fs refuses a superblock that differs there from its first
// backup. Build writes "/" into the superblock and every backup.
func TestBuildLastMounted(t *testing.T) {
	p := tarSet(t, testsets.Rescue(1000))
	out := filepath.Join(t.TempDir(), "root.img")
	// 32 MiB of 1 KiB blocks: four groups, backups in 1 and 3.
	cfg := imagebuilder.Config{Sets: []string{p}, Service: loadService(t, "rescue", ""), SizeMB: 32, Timestamp: ts}
	if err := imagebuilder.Build(context.Background(), cfg, out); err != nil {
		t.Fatal(err)
	}
	img, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, grp := range []int{0, 1, 3} {
		off := 1024 + grp*8192*1024
		if got := img[off+136 : off+200]; !bytes.Equal(got, append([]byte("/"), make([]byte, 63)...)) {
			t.Errorf("group %d's superblock: last mounted %q, want \"/\" and NULs", grp, got)
		}
	}
}
