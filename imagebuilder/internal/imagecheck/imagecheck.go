// Package imagecheck verifies ext2 images in tests with e2fsprogs and, when
// the test runs as root, by loop-mounting them read-only and comparing every
// path against the tree they were built from.
package imagecheck

import (
	"crypto/sha256"
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
