package imagebuilder_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder"
	"github.com/smolvmm/smolvmm/imagebuilder/testsets"
)

// BenchmarkDataImageOneFile builds a data image holding one file of
// random bytes, at sizes that show how the time grows with the file's
// size (each size is a sub-benchmark: -bench 'DataImageOneFile/fat32-25MiB').
func BenchmarkDataImageOneFile(b *testing.B) {
	for _, fsType := range []string{imagebuilder.DataFAT32, imagebuilder.DataISO9660} {
		for _, mib := range []int{25, 50, 100} {
			b.Run(fsType+"-"+strconv.Itoa(mib)+"MiB", func(b *testing.B) {
				dir := b.TempDir()
				if err := os.WriteFile(filepath.Join(dir, "big.dat"), testsets.Blob(uint64(mib), mib<<20), 0o644); err != nil {
					b.Fatal(err)
				}
				img := filepath.Join(b.TempDir(), "data.img")
				b.SetBytes(int64(mib) << 20)
				for b.Loop() {
					if err := imagebuilder.BuildDataImage(dir, img, fsType); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
