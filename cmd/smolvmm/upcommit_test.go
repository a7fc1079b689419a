package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/internal/atomicfile"
)

// TestUpCommitsOnlyOverWhatItJudged: up checked the image (in use by a
// VM? built by up?) before its build, which takes seconds, and the
// build's rename then replaced whatever was at the path: a file that
// appeared meanwhile (another up's image, with its VM running on it), or
// an image a VM began to use. The rename is now made only over the file
// up judged, unused then (its lock held across the rename), and only
// where no file appeared; otherwise up fails, the file left as it is
// and nothing run.
func TestUpCommitsOnlyOverWhatItJudged(t *testing.T) {
	tests := []struct {
		name  string
		stale bool // an image up built, stale, is there; else none
		real  bool // the real builder (buildUpImage), else the fake
		// atCommit runs right before the rename, given the image's
		// path; it returns a file to close at the end (a VM's lock).
		atCommit func(t *testing.T, image string) *os.File
		want     string // in the error; "" for a run
	}{
		{"missing, nothing appears", false, false, nil, ""},
		{"missing, nothing appears, real builder", false, true, nil, ""},
		{"missing, a file appears", false, false, appear, "appeared while up built it (a file of 13 bytes)"},
		{"missing, a file appears, real builder", false, true, appear, "appeared while up built it (a file of 13 bytes)"},
		{"missing, a VM's disk appears", false, false, appearLocked, "appeared while up built it (a file of 13 bytes, in use by a running VM"},
		{"stale, unused", true, false, nil, ""},
		{"stale, a VM starts on it", true, false, lockVM, "is in use by a running VM: stop that VM before replacing the image"},
		{"stale, a QEMU starts on it", true, false, qemuLockVM, "is in use by another VM: "},
		{"missing, a QEMU's disk appears", false, false, appearQEMU, "appeared while up built it (a file of 13 bytes, in use by a running VM (disk image "},
		{"stale, replaced by another file", true, false, replace, "was replaced by another file while up built its new image"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f *fakeUp
			var opts upOptions
			if tt.stale {
				f, opts = staleUpImage(t)
			} else {
				f = newFakeUp(t)
				opts = upOptions{Service: "rescue", Image: filepath.Join(t.TempDir(), "rescue.img")}
			}
			f.load = tt.real
			d := f.deps()
			build := d.build
			if tt.real {
				build = func(ctx context.Context, b upBuild) (string, error) {
					f.calls = append(f.calls, "build")
					return buildUpImage(ctx, b)
				}
			}
			// The kstrip step renames its file through atomicfile too:
			// the hook acts in the build alone.
			building := false
			d.build = func(ctx context.Context, b upBuild) (string, error) {
				building = true
				defer func() { building = false }()
				return build(ctx, b)
			}
			var vm *os.File
			atomicfile.CommitHook = func(stage string) {
				if building && stage == atomicfile.CommitRename && tt.atCommit != nil {
					vm = tt.atCommit(t, opts.Image)
				}
			}
			defer func() { atomicfile.CommitHook = nil }()
			// What must be at the path after a refusal: the file put
			// there, or the stale image a VM took.
			want, _ := os.ReadFile(opts.Image)
			if tt.atCommit != nil && tt.name != "stale, a VM starts on it" && tt.name != "stale, a QEMU starts on it" {
				want = []byte("another file\n")
			}
			f.calls = nil
			_, err := up(context.Background(), io.Discard, d, opts)
			if vm != nil {
				defer vm.Close()
			}
			// A first run strips the kernel.
			calls := strings.Replace(strings.Join(f.calls, " "), " strip", "", 1)
			if tt.want == "" {
				if err != nil || calls != "service fetch build run" {
					t.Fatalf("err = %v, calls %q; want the image built and run", err, calls)
				}
				if b, _ := os.ReadFile(opts.Image); len(b) < 2048 || b[1080] != 0x53 || b[1081] != 0xEF {
					t.Error("no ext2 image in place")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), "it is left as it is") && !strings.Contains(err.Error(), "the image up built is discarded") {
				t.Errorf("err = %v, want it to say the file is left and the new image discarded", err)
			}
			if calls != "service fetch build" {
				t.Errorf("calls %q, want no run", calls)
			}
			if got, _ := os.ReadFile(opts.Image); !bytes.Equal(got, want) {
				t.Errorf("the file at the image's path was replaced: it holds %q, want %q", got[:min(len(got), 16)], want[:min(len(want), 16)])
			}
			if left, _ := filepath.Glob(filepath.Join(filepath.Dir(opts.Image), ".*.tmp-*")); len(left) != 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}

// appear puts a file where up's image goes, as another up would.
func appear(t *testing.T, image string) *os.File {
	if err := os.WriteFile(image, []byte("another file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return nil
}

// appearLocked puts a file there with a VM's lock on it.
func appearLocked(t *testing.T, image string) *os.File {
	appear(t, image)
	return lockVM(t, image)
}

// appearQEMU puts a file there with a running QEMU's locks on it.
func appearQEMU(t *testing.T, image string) *os.File {
	appear(t, image)
	return qemuLockVM(t, image)
}

// lockVM takes the lock a VM holds on its disk.
func lockVM(t *testing.T, image string) *os.File {
	vm, err := os.Open(image)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(vm.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	return vm
}

// replace renames another file over the image.
func replace(t *testing.T, image string) *os.File {
	tmp := image + ".other"
	if err := os.WriteFile(tmp, []byte("another file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, image); err != nil {
		t.Fatal(err)
	}
	return nil
}
