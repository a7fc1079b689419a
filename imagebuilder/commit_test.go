package imagebuilder_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder"
	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// TestWriteImageCommit: the image was renamed over whatever had appeared
// at its path while it was written, even without Force, which Build
// checked only before the build. A file appearing during the write is
// now left as it is without Force (ErrExists), and with Force only when
// Config.Replace accepts it; otherwise the image is put in place.
func TestWriteImageCommit(t *testing.T) {
	refused := errors.New("in use")
	tests := []struct {
		name    string
		force   bool
		replace func(*os.File) error
		appear  bool  // a file appears at the path while the image is written
		wantErr error // matched by errors.Is; nil: the image is written
	}{
		{"no force, none", false, nil, false, nil},
		{"no force, appeared", false, nil, true, imagebuilder.ErrExists},
		{"force, appeared", true, nil, true, nil},
		{"force, appeared, accepted", true, func(*os.File) error { return nil }, true, nil},
		{"force, appeared, refused", true, func(*os.File) error { return refused }, true, refused},
		{"force, none, refusing", true, func(*os.File) error { return refused }, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "root.img")
			appeared := false
			cfg := imagebuilder.Config{SizeMB: 8, Timestamp: ts, Force: tt.force, Replace: tt.replace,
				Progress: func(done, total uint64) {
					if tt.appear && !appeared {
						appeared = true
						if err := os.WriteFile(out, []byte("a VM's disk"), 0o644); err != nil {
							t.Error(err)
						}
					}
				}}
			err := imagebuilder.WriteImageContext(context.Background(), fstree.New(), cfg, out)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			b, _ := os.ReadFile(out)
			if kept := string(b) == "a VM's disk"; kept != (tt.wantErr != nil) {
				t.Errorf("the file that appeared kept: %v, want %v", kept, tt.wantErr != nil)
			}
			if tt.wantErr == nil && len(b) != 8<<20 {
				t.Errorf("image of %d bytes, want 8 MiB", len(b))
			}
			if es, _ := os.ReadDir(dir); len(es) != 1 {
				t.Errorf("left in the image's directory: %v", es)
			}
		})
	}
}
