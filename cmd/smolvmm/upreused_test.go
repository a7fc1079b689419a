package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/rebuild"
)

// mountNoBirthTime mounts, for the test's time, an ext4 file system
// whose 128-byte inodes keep no birth time, where an ImageID is a device,
// an inode number and the inode's generation number. It skips the test where that cannot be done
// (not root, no mkfs.ext4, no loop device).
func mountNoBirthTime(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a file system without birth times needs root")
	}
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("no mkfs.ext4 to make a file system without birth times")
	}
	dir := t.TempDir()
	fsImage, mnt := filepath.Join(dir, "fs.img"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("truncate", "-s", "16M", fsImage).CombinedOutput(); err != nil {
		t.Fatalf("truncate: %v: %s", err, out)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-I", "128", fsImage).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", fsImage, mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot loop-mount a file system: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	return mnt
}

// TestUpInodeReusedWithoutBirthTime: where the file system keeps no
// birth time, a file's ID is its device and inode number, and the
// records of deleted images stay in the cache. A file written after up's
// image was deleted, taking its inode, was taken for that image renamed
// (Stamp.Moved): booted as up's own, or rebuilt when the service changed
// ("up built it from another service"), though up never built it. It is
// refused as an image no record describes.
func TestUpInodeReusedWithoutBirthTime(t *testing.T) {
	mnt := mountNoBirthTime(t)
	for _, digest := range []string{"web", "db"} {
		t.Run("service "+digest, func(t *testing.T) {
			f := newFakeUp(t)
			f.svc.Digest = "web"
			a := filepath.Join(mnt, "a.img")
			if _, err := up(context.Background(), &bytes.Buffer{}, f.deps(), upOptions{Service: "rescue", Image: a}); err != nil {
				t.Fatal(err)
			}
			idA, err := rebuild.ImageID(a)
			if err != nil {
				t.Fatal(err)
			}
			skipBirthTime(t, a)
			b, err := os.ReadFile(a)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(a); err != nil {
				t.Fatal(err)
			}
			opts := upOptions{Service: "rescue", Image: filepath.Join(mnt, "b.img")}
			t.Cleanup(func() { os.Remove(opts.Image) })
			takeInode(t, mnt, idA, opts.Image, b)
			f.svc.Digest = digest
			upRefused(t, f, opts, "service fetch", "NetBSD 9.3/i386")
		})
	}
}

// skipBirthTime skips the test where the file at path has a birth time:
// the file system was to keep none.
func skipBirthTime(t *testing.T, path string) {
	t.Helper()
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, 0, unix.STATX_BTIME, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mask&unix.STATX_BTIME != 0 {
		t.Skipf("this ext4 keeps birth times (%s)", path)
	}
}

// inode is the device and inode number of ImageID id, what a file
// written after the file was deleted may have again.
func inode(id string) string {
	f := strings.Split(id, ":")
	return f[0] + ":" + f[1]
}

// takeInode writes data to a new file at path that has the device and
// inode number of file ID id, freed by a deletion: files are made in dir
// until one takes it (the next is the likeliest), then renamed to path,
// which keeps it; the others are removed.
func takeInode(t *testing.T, dir, id, path string, data []byte) {
	t.Helper()
	var made []string
	defer func() {
		for _, f := range made {
			os.Remove(f)
		}
	}()
	for range 256 {
		f, err := os.CreateTemp(dir, "inode")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if got, err := rebuild.ImageID(f.Name()); err != nil || inode(got) != inode(id) {
			made = append(made, f.Name())
			continue
		}
		if err := os.WriteFile(f.Name(), data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(f.Name(), path); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("none of 256 new files in %s took the deleted file's inode %s", dir, inode(id))
}

// TestUpImageReplacedWithoutBirthTime: where the file system keeps no
// birth time, the record kept under the image's own path named it by its
// device and inode number alone, which the file put there after the
// image was removed takes again (rm app.img; cp other.img app.img): up
// booted that file as its own ("is up to date (built by up ...)"), or
// replaced it, losing what it held ("up built it from another service",
// "it was no longer an ext2 image"). The inode's generation number, which
// the new file does not share, now tells them apart: it is refused,
// unchanged, while the image up built is still booted or rebuilt.
func TestUpImageReplacedWithoutBirthTime(t *testing.T) {
	mnt := mountNoBirthTime(t)
	ext2 := func(text string) []byte {
		b := make([]byte, 2048)
		copy(b, text)
		b[1080], b[1081] = 0x53, 0xEF
		return b
	}
	tests := []struct {
		name string
		// then, given up's image and its record, readies the next up;
		// true: the image was replaced by another file.
		then    func(t *testing.T, f *fakeUp, opts upOptions) bool
		calls   string // of the next up
		message string // the next up's log says, or its error starts with
	}{
		{"another ext2 image in its place", func(t *testing.T, f *fakeUp, opts upOptions) bool {
			replaceKeepingInode(t, mnt, opts.Image, ext2("the user's own image"))
			return true
		}, "service fetch", ""},
		{"another ext2 image in its place, the service changed", func(t *testing.T, f *fakeUp, opts upOptions) bool {
			replaceKeepingInode(t, mnt, opts.Image, ext2("the user's own image"))
			f.svc.Digest = "db"
			return true
		}, "service fetch", ""},
		{"a copy of the image in its place", func(t *testing.T, f *fakeUp, opts upOptions) bool {
			b, err := os.ReadFile(opts.Image)
			if err != nil {
				t.Fatal(err)
			}
			replaceKeepingInode(t, mnt, opts.Image, b)
			return true
		}, "service fetch", ""},
		{"a file that is no ext2 image in its place", func(t *testing.T, f *fakeUp, opts upOptions) bool {
			replaceKeepingInode(t, mnt, opts.Image, []byte("\x7fELF the user's own kernel"))
			return true
		}, "service fetch", "image " + "%s is not an ext2 image, and up did not build it"},
		// up's own image, whose generation number its record holds.
		{"up's image", func(t *testing.T, f *fakeUp, opts upOptions) bool { return false },
			"service fetch run", "is up to date (built by up"},
		{"up's image, the service changed", func(t *testing.T, f *fakeUp, opts upOptions) bool {
			f.svc.Digest = "db"
			return false
		}, "service fetch build run", "rebuilt (up built it from another service"},
		{"up's image, written over", func(t *testing.T, f *fakeUp, opts upOptions) bool {
			if err := os.WriteFile(opts.Image, []byte("\x7fELF a kernel written over it"), 0o644); err != nil {
				t.Fatal(err)
			}
			return false
		}, "service fetch build run", "rebuilt (it was no longer an ext2 image)"},
		// Recorded by an up that read no generation numbers: nothing
		// tells its image from another file given its inode, and the
		// refusal advises --keep-image.
		{"up's image, recorded without its generation", func(t *testing.T, f *fakeUp, opts upOptions) bool {
			stamps, err := filepath.Glob(filepath.Join(f.cache, "9.3", "i386", "images", "*.service"))
			if err != nil || len(stamps) != 1 {
				t.Fatalf("records %q, %v, want one", stamps, err)
			}
			b, err := os.ReadFile(stamps[0])
			if err != nil {
				t.Fatal(err)
			}
			fields := strings.Fields(string(b))
			fields[1] = inode(fields[1])
			if err := os.WriteFile(stamps[0], []byte(strings.Join(fields, " ")+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			return true
		}, "service fetch", ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeUp(t)
			f.svc.Digest = "web"
			opts := upOptions{Service: "rescue", Image: filepath.Join(mnt, fmt.Sprintf("app%d.img", i))}
			t.Cleanup(func() { os.Remove(opts.Image) })
			if _, err := up(context.Background(), &bytes.Buffer{}, f.deps(), opts); err != nil {
				t.Fatal(err)
			}
			skipBirthTime(t, opts.Image)
			if !tt.then(t, f, opts) {
				upAgainSays(t, f, opts, tt.calls, tt.message)
				return
			}
			if tt.message == "" {
				upRefused(t, f, opts, tt.calls, "NetBSD 9.3/i386")
				return
			}
			before, err := os.ReadFile(opts.Image)
			if err != nil {
				t.Fatal(err)
			}
			f.calls = nil
			_, err = up(context.Background(), &bytes.Buffer{}, f.deps(), opts)
			if want := fmt.Sprintf(tt.message, opts.Image); err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Errorf("up: %v, want %q", err, want)
			}
			if after, _ := os.ReadFile(opts.Image); !bytes.Equal(before, after) {
				t.Errorf("the file changed: %q, was %q", after, before)
			}
		})
	}
}

// replaceKeepingInode removes the file at path and writes data to a new
// file there with the removed one's inode number.
func replaceKeepingInode(t *testing.T, dir, path string, data []byte) {
	t.Helper()
	id, err := rebuild.ImageID(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	takeInode(t, dir, id, path, data)
}

// upAgainSays runs up again, which must make calls and say says.
func upAgainSays(t *testing.T, f *fakeUp, opts upOptions, calls, says string) {
	t.Helper()
	f.calls = nil
	var log bytes.Buffer
	if _, err := up(context.Background(), &log, f.deps(), opts); err != nil {
		t.Fatalf("up: %v\n%s", err, log.String())
	}
	if got := strings.Join(f.calls, " "); got != calls {
		t.Errorf("calls %q, want %q\n%s", got, calls, log.String())
	}
	if !strings.Contains(log.String(), says) {
		t.Errorf("up does not say %q:\n%s", says, log.String())
	}
}

// mountRamfs mounts, for the test's time, a ramfs, which keeps neither
// birth times nor inode generation numbers. It skips the test where that
// cannot be done (not root).
func mountRamfs(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a ramfs needs root")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "ramfs", "ramfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a ramfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	return mnt
}

// TestUpImageWithoutFileIdentity: on a file system that keeps neither
// birth times nor inode generation numbers, an image's record names a
// device and an inode number, which a file written after the image was
// removed takes again: up booted such a file as its own, or replaced it.
// No record is kept there: up says so after the build, and the next up
// refuses the image, unchanged, saying why; --keep-image boots it.
func TestUpImageWithoutFileIdentity(t *testing.T) {
	mnt := mountRamfs(t)
	f := newFakeUp(t)
	opts := upOptions{Service: "rescue", Image: filepath.Join(mnt, "app.img")}
	t.Cleanup(func() { os.Remove(opts.Image) })
	var log bytes.Buffer
	if _, err := up(context.Background(), &log, f.deps(), opts); err != nil {
		t.Fatal(err)
	}
	id, err := rebuild.ImageID(opts.Image)
	if err != nil {
		t.Fatal(err)
	}
	if rebuild.Identifies(id) {
		t.Skipf("this ramfs keeps birth times or generation numbers (ImageID %s)", id)
	}
	for _, want := range []string{
		"smolvmm up: note: cannot record which release and service built " + opts.Image + " (",
		"keeps neither a birth time nor an inode generation number",
		"the next up will find no record of it and stop",
	} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("up does not say %q:\n%s", want, log.String())
		}
	}
	for _, service := range []string{"web", "db"} {
		f.svc.Digest = service
		before, err := os.ReadFile(opts.Image)
		if err != nil {
			t.Fatal(err)
		}
		f.calls = nil
		_, err = up(context.Background(), &bytes.Buffer{}, f.deps(), opts)
		want := "image " + opts.Image + ": its file system keeps neither birth times nor inode generation numbers"
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Fatalf("up: %v, want %q", err, want)
		}
		if !strings.Contains(err.Error(), "run up with --keep-image") {
			t.Errorf("up: %v, want the advice --keep-image", err)
		}
		if got := strings.Join(f.calls, " "); got != "service fetch" {
			t.Errorf("calls %q, want %q", got, "service fetch")
		}
		if after, _ := os.ReadFile(opts.Image); !bytes.Equal(before, after) {
			t.Errorf("the image changed")
		}
	}
	opts.KeepImage = true
	upAgainSays(t, f, opts, "service fetch run", "kept as it is (--keep-image)")
}
