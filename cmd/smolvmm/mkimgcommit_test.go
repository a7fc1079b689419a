package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/smolvmm/smolvmm/internal/atomicfile"
)

// mkimgAtCommit runs mkimg in a set directory, for a root image or a
// data image (data) at r.img, calling atCommit right before the rename
// that puts the image in place. It returns what r.img holds after, and
// mkimg's error.
func mkimgAtCommit(t *testing.T, data bool, flags fakeFlags, atCommit func(t *testing.T)) ([]byte, error) {
	t.Helper()
	dir := inSetDir(t)
	if data {
		if err := os.Mkdir("d", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("d", "f"), []byte("data"), 0o644); err != nil {
			t.Fatal(err)
		}
		flags["data"] = "d"
	}
	flags["image"] = "r.img"
	done := false
	atomicfile.CommitHook = func(stage string) {
		if stage == atomicfile.CommitRename && !done && atCommit != nil {
			done = true
			atCommit(t)
		}
	}
	defer func() { atomicfile.CommitHook = nil }()
	err := mkimg(context.Background(), flags, &bytes.Buffer{})
	got, _ := os.ReadFile("r.img")
	if left, _ := filepath.Glob(filepath.Join(dir, ".r.img.tmp-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	return got, err
}

// TestMkimgKeepsAnImageThatAppeared: mkimg without -f refused an image
// path that existed before the build only. A root image was then put in
// place with the builder's own advice ("set Config.Force"), and a data
// image (--data) was renamed over whatever had appeared at -i meanwhile,
// status 0. Both now leave that file as it is, status 1, with mkimg's
// advice.
func TestMkimgKeepsAnImageThatAppeared(t *testing.T) {
	const other = "a VM's disk\n"
	for _, data := range []bool{false, true} {
		name := map[bool]string{false: "root image", true: "data image"}[data]
		t.Run(name, func(t *testing.T) {
			got, err := mkimgAtCommit(t, data, fakeFlags{}, func(t *testing.T) {
				if err := os.WriteFile("r.img", []byte(other), 0o644); err != nil {
					t.Fatal(err)
				}
			})
			const want = "image r.img appeared while mkimg wrote it: it is left as it is and the new image discarded; remove it and run mkimg again, or pass -f to overwrite it"
			if err == nil || err.Error() != want || exitCode(err) != 1 {
				t.Errorf("err = %v (status %d), want %q, status 1", err, exitCode(err), want)
			}
			if string(got) != other {
				t.Errorf("r.img holds %.20q, want the file that appeared", got)
			}
		})
	}
}
