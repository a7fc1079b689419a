package imagebuilder_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder"
	"github.com/smolvmm/smolvmm/internal/atomicfile"
)

// TestBuildDataImageOptionsCommit: a data image was renamed over
// whatever was at its path, also a file that appeared while it was
// written, for which a root image without Force is refused. With
// BuildDataImageOptions, a file there without Force is left as it is
// (ErrExists), whether it was there before the build or appeared during
// it; with Force it is replaced only when Replace accepts it.
func TestBuildDataImageOptionsCommit(t *testing.T) {
	refused := errors.New("in use")
	accept := func(*os.File) error { return nil }
	refuse := func(*os.File) error { return refused }
	tests := []struct {
		name    string
		opts    imagebuilder.DataOptions
		before  bool  // a file is at the path when the build begins
		appear  bool  // a file appears there right before the rename
		wantErr error // matched by errors.Is; nil: the image is written
	}{
		{"no force, none", imagebuilder.DataOptions{}, false, false, nil},
		{"no force, there before", imagebuilder.DataOptions{}, true, false, imagebuilder.ErrExists},
		{"no force, appeared", imagebuilder.DataOptions{}, false, true, imagebuilder.ErrExists},
		{"force, there before", imagebuilder.DataOptions{Force: true}, true, false, nil},
		{"force, appeared", imagebuilder.DataOptions{Force: true}, false, true, nil},
		{"force, there before, accepted", imagebuilder.DataOptions{Force: true, Replace: accept}, true, false, nil},
		{"force, there before, refused", imagebuilder.DataOptions{Force: true, Replace: refuse}, true, false, refused},
		{"force, appeared, refused", imagebuilder.DataOptions{Force: true, Replace: refuse}, false, true, refused},
		{"force, none, refusing", imagebuilder.DataOptions{Force: true, Replace: refuse}, false, false, nil},
	}
	const other = "a VM's disk"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := t.TempDir()
			if err := os.WriteFile(filepath.Join(src, "f"), []byte("data"), 0o644); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			out := filepath.Join(dir, "data.img")
			if tt.before {
				if err := os.WriteFile(out, []byte(other), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			atomicfile.CommitHook = func(stage string) {
				if stage == atomicfile.CommitRename && tt.appear {
					if err := os.WriteFile(out, []byte(other), 0o644); err != nil {
						t.Error(err)
					}
				}
			}
			defer func() { atomicfile.CommitHook = nil }()
			err := imagebuilder.BuildDataImageOptions(context.Background(), src, out, imagebuilder.DataFAT32, 0, tt.opts)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			b, _ := os.ReadFile(out)
			if kept := string(b) == other; kept != (tt.wantErr != nil) {
				t.Errorf("the file at the path kept: %v, want %v", kept, tt.wantErr != nil)
			}
			if tt.wantErr == nil && len(b) != imagebuilder.MinFAT32MiB<<20 {
				t.Errorf("image of %d bytes, want %d MiB", len(b), imagebuilder.MinFAT32MiB)
			}
			if es, _ := os.ReadDir(dir); len(es) != 1 {
				t.Errorf("left in the image's directory: %v", es)
			}
		})
	}
}
