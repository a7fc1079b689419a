package imagebuilder_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/ext2"
	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"github.com/smolvmm/smolvmm/imagebuilder/testsets"
)

// benchImageMB is the image size every builder in BenchmarkBuild writes.
const benchImageMB = 48

// BenchmarkBuild builds an ext2 image from a 20 MiB set of 3000 files, side
// by side with e2fsprogs' mke2fs -d and genext2fs -d from the same tree
// unpacked on disk. Each iteration writes a fresh image file.
func BenchmarkBuild(b *testing.B) {
	raw, err := testsets.Bytes(testsets.Many(3000, 20<<20), "tar")
	if err != nil {
		b.Fatal(err)
	}
	work := b.TempDir()
	tree := filepath.Join(work, "tree")
	os.Mkdir(tree, 0755)
	untar := exec.Command("tar", "-xf", "-", "-C", tree)
	untar.Stdin = bytes.NewReader(raw)
	if out, err := untar.CombinedOutput(); err != nil {
		b.Skipf("tar cannot unpack the set here: %v %s", err, out)
	}
	img := filepath.Join(work, "img")
	fresh := func(b *testing.B) *os.File {
		os.Remove(img)
		f, err := os.Create(img)
		if err != nil {
			b.Fatal(err)
		}
		return f
	}
	write := func(b *testing.B, t *fstree.Tree) {
		f := fresh(b)
		defer f.Close()
		if err := ext2.Write(f, t, ext2.Options{Size: benchImageMB << 20, Timestamp: 1700000000}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("smolvmm-tar", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			t := fstree.New()
			if err := t.AddTar(bytes.NewReader(raw), "set.tar"); err != nil {
				b.Fatal(err)
			}
			write(b, t)
		}
	})
	b.Run("smolvmm-dir", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			t := fstree.New()
			if err := t.AddDir(tree); err != nil {
				b.Fatal(err)
			}
			write(b, t)
		}
	})
	b.Run("smolvmm-write-only", func(b *testing.B) {
		t := fstree.New()
		if err := t.AddTar(bytes.NewReader(raw), "set.tar"); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			write(b, t)
		}
	})
	tool := func(name string, args func() []string) {
		b.Run(name, func(b *testing.B) {
			if _, err := exec.LookPath(name); err != nil {
				b.Skipf("%s not installed", name)
			}
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				fresh(b).Close()
				if out, err := exec.Command(name, args()...).CombinedOutput(); err != nil {
					b.Fatalf("%s: %v\n%s", name, err, out)
				}
			}
		})
	}
	tool("mke2fs", func() []string {
		return []string{"-q", "-F", "-t", "ext2", "-b", "1024", "-d", tree, img, strconv.Itoa(benchImageMB) + "M"}
	})
	tool("genext2fs", func() []string {
		return []string{"-q", "-b", strconv.Itoa(benchImageMB * 1024), "-N", "12288", "-d", tree, img}
	})
}
