package imagebuilder_test

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder"
	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// TestBuildStops: a root image's build stops when its context ends while
// the sets are read, or while the image is written (between its blocks),
// with an error matching the context's and no image or temporary file
// left: the ext2 write did not look at ctx, so a signal could only kill
// mkimg, leaving its temporary file.
func TestBuildStops(t *testing.T) {
	big := make([]byte, 16<<20)
	rand.Read(big)
	for _, tc := range []struct {
		name string
		run  func(ctx context.Context, cancel func(), out string) error
	}{
		{"reading", func(ctx context.Context, cancel func(), out string) error {
			cfg := imagebuilder.Config{Sets: []string{rescueSet(t, "tgz")}, Service: loadService(t, "rescue", ""), Timestamp: ts,
				ReadProgress: func(done, total uint64) { cancel() }}
			return imagebuilder.Build(ctx, cfg, out)
		}},
		{"writing", func(ctx context.Context, cancel func(), out string) error {
			tr := fstree.New()
			tr.Put("big", fstree.NewFile(0o644, big))
			cfg := imagebuilder.Config{SizeMB: 64, Timestamp: ts, Progress: func(done, total uint64) {
				if done > 0 {
					cancel()
				}
			}}
			return imagebuilder.WriteImageContext(ctx, tr, cfg, out)
		}},
		{"writing, stopped before", func(ctx context.Context, cancel func(), out string) error {
			cancel()
			return imagebuilder.WriteImageContext(ctx, fstree.New(), imagebuilder.Config{SizeMB: 8, Timestamp: ts}, out)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			err := tc.run(ctx, cancel, filepath.Join(dir, "root.img"))
			if !errors.Is(err, context.Canceled) {
				t.Errorf("got %v, want an error matching context.Canceled", err)
			}
			if es, _ := os.ReadDir(dir); len(es) != 0 {
				t.Errorf("left in the image's directory: %v", es)
			}
		})
	}
}
