package rebuild

import (
	"os"
	"path/filepath"
	"testing"
)

// TestStampMoved: a stamp is named after the image's path, so a rename
// of the image or of its directory left the stamp under the former path,
// and the image, no longer described, was taken for another release's
// and rebuilt, losing what the guest wrote to it. The stamp of that very
// file (its ImageID) is moved to the new path's; a copy, another file or
// a stamp already in place moves nothing.
func TestStampMoved(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir, cache string) (image string)
		moved bool
	}{
		{"image renamed", func(t *testing.T, dir, cache string) string {
			old := filepath.Join(dir, "rescue.img")
			recordRelease(t, DirStamp(cache, old), old, "i386")
			image := filepath.Join(dir, "renamed.img")
			if err := os.Rename(old, image); err != nil {
				t.Fatal(err)
			}
			return image
		}, true},
		{"directory moved", func(t *testing.T, dir, cache string) string {
			vm := filepath.Join(dir, "vm")
			os.Mkdir(vm, 0o755)
			old := filepath.Join(vm, "rescue.img")
			writeImage(t, old, "image")
			recordRelease(t, DirStamp(cache, old), old, "i386")
			if err := os.Rename(vm, vm+"-moved"); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(vm+"-moved", "rescue.img")
		}, true},
		{"image copied", func(t *testing.T, dir, cache string) string {
			old := filepath.Join(dir, "rescue.img")
			recordRelease(t, DirStamp(cache, old), old, "i386")
			image := filepath.Join(dir, "copy.img")
			writeImage(t, image, "image")
			return image
		}, false},
		{"stamp in place", func(t *testing.T, dir, cache string) string {
			image := filepath.Join(dir, "rescue.img")
			recordRelease(t, DirStamp(cache, image), image, "i386")
			return image
		}, false},
		{"no stamps", func(t *testing.T, dir, cache string) string {
			return filepath.Join(dir, "rescue.img")
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeImage(t, filepath.Join(dir, "rescue.img"), "image")
			cache := filepath.Join(dir, "cache")
			image := tt.setup(t, dir, cache)
			s := DirStamp(cache, image)
			if got := s.Moved(image); got != tt.moved {
				t.Errorf("Moved = %v, want %v", got, tt.moved)
			}
			wantDescribed := tt.moved || tt.name == "stamp in place"
			if got := s.Describes(image); got != wantDescribed {
				t.Errorf("after Moved, Describes = %v, want %v", got, wantDescribed)
			}
			// What the stamp recorded moves with it: the image is fresh
			// for the release it was built from.
			if tt.moved {
				v, err := (Image{Path: image, Release: "i386", Builder: 1, Stamp: s}).Check()
				if err != nil || v != Fresh {
					t.Errorf("Check after Moved = %v, %v, want fresh", v, err)
				}
				left, _ := filepath.Glob(filepath.Join(filepath.Dir(string(s)), "*.service"))
				if len(left) != 1 {
					t.Errorf("stamps after Moved: %q, want the moved one alone", left)
				}
			}
		})
	}
}
