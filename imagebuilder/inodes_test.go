package imagebuilder_test

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder"
	"github.com/smolvmm/smolvmm/imagebuilder/testsets"
)

// TestBuildAutoSpareInodes builds auto-sized images and reads their
// superblocks: a quarter of the inodes the content takes are free, as a
// quarter of its size is, also when the content is many empty files (it
// had a tenth: 30,000 empty files left 3,022 inodes and 86% of the
// blocks free).
func TestBuildAutoSpareInodes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files int
	}{
		{"many empty files", 20000},
		{"few files", 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := testsets.Bytes(testsets.Many(tc.files, 0), "tar")
			if err != nil {
				t.Fatal(err)
			}
			many := filepath.Join(t.TempDir(), "many.tar")
			if err := os.WriteFile(many, b, 0o644); err != nil {
				t.Fatal(err)
			}
			cfg := imagebuilder.Config{Sets: []string{rescueSet(t, "tar"), many}, Service: loadService(t, "rescue", ""), Timestamp: ts}
			img := filepath.Join(t.TempDir(), "root.img")
			if err := imagebuilder.Build(context.Background(), cfg, img); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			sb := make([]byte, 32)
			if _, err := f.ReadAt(sb, 1024); err != nil {
				t.Fatal(err)
			}
			// s_inodes_count and s_free_inodes_count.
			count, free := binary.LittleEndian.Uint32(sb[0:]), binary.LittleEndian.Uint32(sb[16:])
			used := count - free
			if used < uint32(tc.files) {
				t.Fatalf("%d inodes used of %d for %d files: not the image built", used, count, tc.files)
			}
			if free < used/4 {
				t.Errorf("%d of %d inodes free, %d used: want at least a quarter of those used (%d) free", free, count, used, used/4)
			}
		})
	}
}
