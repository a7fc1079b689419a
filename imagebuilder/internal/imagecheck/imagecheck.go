// Package imagecheck verifies ext2 images in tests with e2fsprogs and, when
// the test runs as root, by loop-mounting them read-only and comparing every
// path against the tree they were built from.
package imagecheck

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"golang.org/x/sys/unix"
)

// Need skips the test when tool is not installed.
func Need(t testing.TB, tool string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Skipf("%s not installed (e2fsprogs): %v", tool, err)
	}
}

// Fsck runs e2fsck -fn on img and fails the test unless it finds nothing.
func Fsck(t testing.TB, img string) {
	t.Helper()
	Need(t, "e2fsck")
	out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput()
	if err != nil {
		t.Fatalf("e2fsck -fn %s: %v\n%s", img, err, out)
	}
}

// Debugfs runs one debugfs request on img and returns its output.
func Debugfs(t testing.TB, img, req string) string {
	t.Helper()
	Need(t, "debugfs")
	out, err := exec.Command("debugfs", "-R", req, img).Output()
	if err != nil {
		t.Fatalf("debugfs -R %q %s: %v", req, img, err)
	}
	return string(out)
}

// Describe renders each path of t (with "/" prefix) as a line of type,
// permissions, owner, link count and content digest, link target or device
// number, the way Mounted renders a mounted image. Link counts follow ext2:
// directories have 2 plus their subdirectories. lost+found is added if absent.
func Describe(t *fstree.Tree, timestamp int64) map[string]string {
	refs := map[*fstree.Node]int{}
	t.Walk(func(p string, n *fstree.Node) error { refs[n]++; return nil })
	out := map[string]string{}
	t.Walk(func(p string, n *fstree.Node) error {
		links := refs[n]
		if n.Type == fstree.Dir {
			links = 2
			for _, name := range n.Names() {
				if n.Child(name).Type == fstree.Dir {
					links++
				}
			}
			if p == "" && n.Child("lost+found") == nil {
				links++
			}
		}
		var extra string
		switch n.Type {
		case fstree.Regular:
			extra = fmt.Sprintf("%d %x", n.Size, sha256.Sum256(n.Content()))
		case fstree.Symlink:
			extra = n.Target
		case fstree.CharDev, fstree.BlockDev:
			extra = fmt.Sprintf("%d,%d", n.Major, n.Minor)
		}
		mt, _ := fstree.ClampTime(n.Mtime) // as the writer stores it
		if !n.HasMtime() {
			mt = timestamp
		}
		perm := n.Perm
		if n.Type == fstree.Symlink {
			perm = 0777 // Linux shows every symlink as 0777
		}
		out["/"+p] = fmt.Sprintf("%s %04o %d:%d n=%d t=%d %s", n.Type, perm, n.UID, n.GID, links, mt, extra)
		return nil
	})
	if t.Root.Child("lost+found") == nil {
		out["/lost+found"] = fmt.Sprintf("directory 0700 0:0 n=2 t=%d ", timestamp)
	}
	return out
}

// Mounted loop-mounts img read-only (root only; skips otherwise) and
// describes every path in it like Describe.
func Mounted(t testing.TB, img string) map[string]string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loop-mounting the image needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "ext2", "-o", "ro,loop", img, dir).CombinedOutput(); err != nil {
		t.Skipf("cannot loop-mount %s here: %v %s", img, err, out)
	}
	defer func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	}()
	out := map[string]string{}
	err := filepath.Walk(dir, func(hp string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(hp, &st); err != nil {
			return err
		}
		rel := "/" + strings.TrimPrefix(strings.TrimPrefix(hp, dir), "/")
		var typ fstree.Type
		var extra string
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFREG:
			typ = fstree.Regular
			b, err := os.ReadFile(hp)
			if err != nil {
				return err
			}
			extra = fmt.Sprintf("%d %x", len(b), sha256.Sum256(b))
		case syscall.S_IFDIR:
			typ = fstree.Dir
		case syscall.S_IFLNK:
			typ = fstree.Symlink
			extra, _ = os.Readlink(hp)
		case syscall.S_IFCHR, syscall.S_IFBLK:
			typ = fstree.CharDev
			if st.Mode&syscall.S_IFMT == syscall.S_IFBLK {
				typ = fstree.BlockDev
			}
			extra = fmt.Sprintf("%d,%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		case syscall.S_IFIFO:
			typ = fstree.FIFO
		}
		out[rel] = fmt.Sprintf("%s %04o %d:%d n=%d t=%d %s", typ, st.Mode&07777, st.Uid, st.Gid, st.Nlink, st.Mtim.Sec, extra)
		return nil
	})
	if err != nil {
		t.Fatalf("walking mounted image: %v", err)
	}
	return out
}

// Compare fails the test on every path whose description differs.
func Compare(t testing.TB, want, got map[string]string) {
	t.Helper()
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	bad := 0
	for _, k := range keys {
		if want[k] != got[k] {
			bad++
			if bad <= 20 {
				t.Errorf("%s:\n want %q\n  got %q", k, want[k], got[k])
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d paths differ", bad, len(keys))
	}
}

// ReadFile is the content of the regular file at name (slash-separated,
// from the root) of the ext2 image img, read with nothing of the
// writer's: superblock, group descriptors, inodes and directory entries
// as the format lays them out. Only the direct blocks are read (files
// and directories of up to 12 blocks), which the Examples' small files
// fit: enough to show an image holds what it should, independently of
// the writer.
func ReadFile(img []byte, name string) ([]byte, error) {
	le := binary.LittleEndian
	if len(img) < 2048 || le.Uint16(img[1080:]) != 0xEF53 {
		return nil, errors.New("no ext2 superblock at offset 1024")
	}
	sb := img[1024:2048]
	bs := 1024 << le.Uint32(sb[24:])
	perGroup, inodeSize := int(le.Uint32(sb[40:])), int(le.Uint16(sb[88:]))
	gdt := (int(le.Uint32(sb[20:])) + 1) * bs // after the superblock's block
	block := func(n uint32) ([]byte, error) {
		off := int(n) * bs
		if n == 0 || off+bs > len(img) {
			return nil, fmt.Errorf("block %d out of the image", n)
		}
		return img[off : off+bs], nil
	}
	// content is inode ino's i_size bytes, from its direct blocks.
	content := func(ino int) ([]byte, error) {
		g, i := (ino-1)/perGroup, (ino-1)%perGroup
		if gdt+g*32+32 > len(img) {
			return nil, fmt.Errorf("inode %d out of the image", ino)
		}
		table := int(le.Uint32(img[gdt+g*32+8:])) * bs
		if table+(i+1)*inodeSize > len(img) {
			return nil, fmt.Errorf("inode %d out of the image", ino)
		}
		in := img[table+i*inodeSize:]
		size := int(le.Uint32(in[4:]))
		var b []byte
		for k := 0; len(b) < size; k++ {
			if k == 12 {
				return nil, fmt.Errorf("inode %d: %d bytes: past the direct blocks", ino, size)
			}
			blk, err := block(le.Uint32(in[40+4*k:]))
			if err != nil {
				return nil, fmt.Errorf("inode %d: %w", ino, err)
			}
			b = append(b, blk...)
		}
		return b[:size], nil
	}
	ino := 2 // the root directory
	for _, part := range strings.Split(name, "/") {
		dir, err := content(ino)
		if err != nil {
			return nil, err
		}
		ino = 0
		for off := 0; off+8 <= len(dir) && ino == 0; {
			recLen, nameLen := int(le.Uint16(dir[off+4:])), int(dir[off+6])
			if recLen < 8 || off+8+nameLen > len(dir) {
				return nil, fmt.Errorf("%s: a bad directory entry at %d", part, off)
			}
			if le.Uint32(dir[off:]) != 0 && string(dir[off+8:off+8+nameLen]) == part {
				ino = int(le.Uint32(dir[off:]))
			}
			off += recLen
		}
		if ino == 0 {
			return nil, fmt.Errorf("%s: no such entry", part)
		}
	}
	return content(ino)
}
