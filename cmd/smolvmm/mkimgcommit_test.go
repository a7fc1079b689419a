package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/internal/atomicfile"
)

// mkimgAtCommit runs mkimg in a set directory, for a root image or a
// data image (data) at r.img, calling atCommit right before the rename
// that puts the image in place. It returns what r.img holds after, and
// mkimg's error.
func mkimgAtCommit(t *testing.T, data bool, flags fakeFlags, atCommit func(t *testing.T)) ([]byte, error) {
	t.Helper()
	return mkimgAtCommitAfter(t, data, flags, nil, atCommit)
}

// mkimgAtCommitAfter is mkimgAtCommit calling setup, when not nil, in the
// set directory before mkimg runs.
func mkimgAtCommitAfter(t *testing.T, data bool, flags fakeFlags, setup func(), atCommit func(t *testing.T)) ([]byte, error) {
	t.Helper()
	dir := inSetDir(t)
	if setup != nil {
		setup()
	}
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

// TestMkimgForceChecksAtCommit: mkimg -f checked that no VM used the
// image (its flock) before the build only; a VM started on it during the
// build (seconds for a large --data directory) went on writing to the
// unlinked old file once mkimg, status 0, renamed the new one over it.
// The check is now made again right before the rename, its lock held
// across it, for root and data images alike; so is the check of a
// write-protected image.
func TestMkimgForceChecksAtCommit(t *testing.T) {
	const old = "the old image"
	tests := []struct {
		name   string
		before bool // an old image is at -i when mkimg begins
		// atCommit runs right before the rename; it returns a file to
		// close at the end (a VM's lock).
		atCommit func(t *testing.T) *os.File
		want     string // in the error; "" for the new image in place
	}{
		{"unused", true, nil, ""},
		{"a VM starts on it", true, func(t *testing.T) *os.File { return lockVM(t, "r.img") }, "image r.img is in use by a running VM: stop that VM before replacing the image"},
		{"a QEMU starts on it", true, func(t *testing.T) *os.File { return qemuLockVM(t, "r.img") }, "disk image r.img is in use by another VM: "},
		{"made write-protected", true, func(t *testing.T) *os.File {
			if err := os.Chmod("r.img", 0o444); err != nil {
				t.Fatal(err)
			}
			return nil
		}, "image r.img is write-protected (mode 0444): -f does not replace it"},
		{"none, a VM's disk appears", false, func(t *testing.T) *os.File {
			if err := os.WriteFile("r.img", []byte(old), 0o644); err != nil {
				t.Fatal(err)
			}
			return lockVM(t, "r.img")
		}, "image r.img is in use by a running VM: stop that VM before replacing the image"},
	}
	for _, data := range []bool{false, true} {
		for _, tt := range tests {
			name := map[bool]string{false: "root image, ", true: "data image, "}[data] + tt.name
			t.Run(name, func(t *testing.T) {
				var vm *os.File
				var atCommit func(t *testing.T)
				if tt.atCommit != nil {
					atCommit = func(t *testing.T) { vm = tt.atCommit(t) }
				}
				got, err := mkimgAtCommitAfter(t, data, fakeFlags{"force": true}, func() {
					if tt.before {
						if err := os.WriteFile("r.img", []byte(old), 0o644); err != nil {
							t.Fatal(err)
						}
					}
				}, atCommit)
				if vm != nil {
					vm.Close()
				}
				if tt.want == "" {
					if err != nil || string(got) == old || len(got) < 1<<20 {
						t.Fatalf("err = %v, r.img %d bytes %.20q; want the new image in place", err, len(got), got)
					}
					return
				}
				if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "it is left as it is and the image mkimg built discarded") {
					t.Errorf("err = %v, want %q, the image left and the new one discarded", err, tt.want)
				}
				if string(got) != old {
					t.Errorf("r.img holds %.20q, want the old image", got)
				}
			})
		}
	}
}
