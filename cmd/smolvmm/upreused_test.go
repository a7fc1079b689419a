package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/rebuild"
)

// mountNoBirthTime mounts, for the test's time, an ext4 file system
// whose 128-byte inodes keep no birth time, where an ImageID is a device
// and an inode number alone. It skips the test where that cannot be done
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
			if strings.Count(idA, ":") != 1 {
				t.Skipf("this ext4 keeps birth times (ImageID %s)", idA)
			}
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

// takeInode writes data to a new file at path that has the file ID id,
// freed by a deletion: files are made in dir until one takes it (the
// next is the likeliest), then renamed to path, which keeps it; the
// others are removed.
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
		if got, err := rebuild.ImageID(f.Name()); err != nil || got != id {
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
	t.Fatalf("none of 256 new files in %s took the deleted file's ID %s", dir, id)
}
