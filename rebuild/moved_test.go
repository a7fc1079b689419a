package rebuild

import (
	"os"
	"path/filepath"
	"slices"
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

// TestStampMovedNeedsBirthTime: where the file system keeps no birth
// time, an ImageID is a device and an inode number alone, which a file
// made after an image was deleted takes again, and the deleted image's
// stamp stays: Moved took that stamp for the new file's, and up rebuilt
// (or booted as its own) a file it never built. Only an ID with a birth
// time, or an inode generation number, finds a stamp under another path.
func TestStampMovedNeedsBirthTime(t *testing.T) {
	tests := []struct {
		name    string
		stamped string // the ID the stamp under the former path records
		id      string // the ID of the file now at the image's path
		moved   bool
	}{
		{"birth time, the same file", "8.1:13:1700000000.000000001", "8.1:13:1700000000.000000001", true},
		{"birth time, the disk under another device number", "8.1:13:1700000000.000000001", "8.2:13:1700000000.000000001", true},
		{"birth time, the inode taken by another file", "8.1:13:1700000000.000000001", "8.1:13:1700000500.000000002", false},
		{"no birth time, the same inode", "7.0:13", "7.0:13", false},
		// An inode generation number stands for the birth time: a
		// rename keeps it, and a file given a deleted one's inode
		// number gets another.
		{"generation, the same file", "7.0:13:g3033903645", "7.0:13:g3033903645", true},
		{"generation, the inode taken by another file", "7.0:13:g3033903645", "7.0:13:g1347487576", false},
		{"recorded without a generation, the file has one", "7.0:13", "7.0:13:g3033903645", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache := t.TempDir()
			former := DirStamp(cache, "/vm/a.img")
			if err := os.MkdirAll(filepath.Dir(string(former)), 0o755); err != nil {
				t.Fatal(err)
			}
			write(t, string(former), "v1 "+tt.stamped+" 1 i386\n")
			s := DirStamp(cache, "/vm/b.img")
			if got := s.moved(tt.id); got != tt.moved {
				t.Errorf("moved(%s) of a stamp recording %s = %v, want %v", tt.id, tt.stamped, got, tt.moved)
			}
			_, errFormer := os.Stat(string(former))
			_, errNew := os.Stat(string(s))
			if tt.moved && (errFormer == nil || errNew != nil) {
				t.Errorf("the stamp was not moved: former %v, new %v", errFormer, errNew)
			}
			if !tt.moved && (errFormer != nil || errNew == nil) {
				t.Errorf("the stamp moved: former %v, new %v", errFormer, errNew)
			}
		})
	}
}

// TestStampOtherReleases: an image the release's stamp does not describe
// may be one the caller built for another release of the same cache
// (another port, another version), whose stamp says so: those releases'
// directories are found, and only stamps of this very file count.
func TestStampOtherReleases(t *testing.T) {
	tests := []struct {
		name   string
		stamps []string // releases (version/arch) whose stamp describes the image
		others []string // releases whose stamp names another file
		want   []string
	}{
		{"no other release", nil, nil, nil},
		{"the release's own stamp", []string{"9.3/i386"}, nil, nil},
		{"another port", []string{"9.3/amd64"}, nil, []string{"9.3/amd64"}},
		{"another version and port", []string{"9.2/i386", "10.0/amd64", "9.3/i386"}, nil, []string{"10.0/amd64", "9.2/i386"}},
		{"a stamp of another file", nil, []string{"9.3/amd64"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cache := filepath.Join(dir, "cache")
			image := filepath.Join(dir, "rescue.img")
			writeImage(t, image, "image")
			other := filepath.Join(dir, "other.img")
			writeImage(t, other, "another image")
			for _, r := range tt.stamps {
				recordRelease(t, DirStamp(filepath.Join(cache, r), image), image, r)
			}
			for _, r := range tt.others {
				// The stamp under the image's path, of a file since replaced.
				s := DirStamp(filepath.Join(cache, r), image)
				recordRelease(t, s, other, r)
			}
			// Not a release: a file in the cache's root and in a version's.
			os.MkdirAll(filepath.Join(cache, "9.3"), 0o755)
			write(t, filepath.Join(cache, "lock"), "")
			write(t, filepath.Join(cache, "9.3", "lock"), "")
			got := DirStamp(filepath.Join(cache, "9.3", "i386"), image).OtherReleases(image)
			var want []string
			for _, r := range tt.want {
				want = append(want, filepath.Join(cache, r))
			}
			if !slices.Equal(got, want) {
				t.Errorf("OtherReleases = %q, want %q", got, want)
			}
		})
	}
}
