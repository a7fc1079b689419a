package imagebuilder_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder"
	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// TestTimestampRange: a Config.Timestamp ext2 cannot store (outside
// fstree.MinTime..MaxTime, as NetBSD reads an inode's times signed) is
// refused by Build before a set is read and by WriteImageContext before
// the image's temporary file is made, naming the field; an image in
// place is kept, with Force too, and nothing is left beside it. It went
// into the image truncated to 32 bits: 2^31+100 read back as 1901. The
// ends of the range are written.
func TestTimestampRange(t *testing.T) {
	tree := func(t *testing.T) *fstree.Tree {
		tr := fstree.New()
		if err := tr.Put("f", fstree.NewFile(0o644, []byte("x"))); err != nil {
			t.Fatal(err)
		}
		return tr
	}
	for _, ts := range []int64{fstree.MaxTime + 1, 1<<31 + 100, fstree.MinTime - 1} {
		want := fmt.Sprintf("Timestamp %d is outside the times ext2 stores", ts)
		for _, force := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d force=%v", ts, force), func(t *testing.T) {
				dir := t.TempDir()
				existing := filepath.Join(dir, "exists.img")
				if err := os.WriteFile(existing, []byte("keep me"), 0o644); err != nil {
					t.Fatal(err)
				}
				// A set that is not there: Build must refuse before it
				// looks for it.
				cfg := imagebuilder.Config{Sets: []string{filepath.Join(dir, "nope.tgz")}, Service: loadService(t, "rescue", ""), SizeMB: 4, Timestamp: ts, TimestampSet: true, Force: force}
				auto := cfg
				auto.SizeMB = 0
				for _, out := range []string{existing, filepath.Join(dir, "new.img")} {
					for _, w := range []struct {
						name  string
						write func() error
					}{
						{"Build", func() error { return imagebuilder.Build(context.Background(), cfg, out) }},
						{"WriteImageContext", func() error { return imagebuilder.WriteImageContext(context.Background(), tree(t), cfg, out) }},
						{"WriteImage sized to its content", func() error { return imagebuilder.WriteImage(tree(t), auto, out) }},
					} {
						if err := w.write(); err == nil || !strings.HasPrefix(err.Error(), want) {
							t.Errorf("%s to %s: got %v, want %q", w.name, filepath.Base(out), err, want)
						}
					}
				}
				if b, err := os.ReadFile(existing); err != nil || string(b) != "keep me" {
					t.Errorf("the existing image was changed: %.40q, %v", b, err)
				}
				es, _ := os.ReadDir(dir)
				var names []string
				for _, e := range es {
					names = append(names, e.Name())
				}
				if fmt.Sprint(names) != "[exists.img]" {
					t.Errorf("files in the image's directory: %v, want only exists.img", names)
				}
			})
		}
	}
	for _, ts := range []int64{fstree.MinTime, fstree.MaxTime} {
		out := filepath.Join(t.TempDir(), "ok.img")
		if err := imagebuilder.WriteImage(tree(t), imagebuilder.Config{SizeMB: 4, Timestamp: ts}, out); err != nil {
			t.Errorf("Timestamp %d: %v", ts, err)
		}
	}
}
