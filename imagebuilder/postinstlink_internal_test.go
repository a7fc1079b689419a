package imagebuilder

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"golang.org/x/sys/unix"
)

// TestStageTarget: what a set's symlink points at in the staging root.
// Targets that stay inside as they are keep their text; the others become
// the host path of what the guest resolves them to, with no "..", and a
// resolution that loops links to itself. One that climbs out of a name
// the tree does not have as a directory fails in the guest, and was
// staged as the directory above: it now does not resolve on the host
// either.
func TestStageTarget(t *testing.T) {
	tr := fstree.New()
	tr.Put("etc/a", fstree.NewSymlink("b/c"))
	tr.Put("deep/dir/f", fstree.NewFile(0o644, nil))
	tr.Put("abs", fstree.NewSymlink("/deep/dir"))
	tr.Put("rel", fstree.NewSymlink("deep/dir"))
	tr.Put("loop1", fstree.NewSymlink("loop2"))
	tr.Put("loop2", fstree.NewSymlink("loop1"))
	const stage, missing = "/st/root", "/st/missing/name"
	for _, tc := range []struct{ p, target, want string }{
		{"etc/a", "b/c", "b/c"},
		{"etc/a", "../lib/x", "../lib/x"},
		{"etc/a", "/etc/x", "/st/root/etc/x"},
		{"etc/a", "/", "/st/root"},
		{"etc/a", "../../../x", "/st/root/x"},
		{"etc/a", "../abs/../../x", "/st/root/x"},
		{"etc/a", "../rel/../x", "/st/root/deep/x"},
		{"etc/a", "/abs", "/st/root/abs"}, // the last name is not followed
		{"etc/a", "/abs/f", "/st/root/deep/dir/f"},
		{"etc/a", "/loop1/x", "a"},
		{"a", "./.././/etc/./x/", "/st/root/etc/x"},
		{"etc/a", "/x/..", missing},
		{"etc/a", "/deep/x/../dir", missing},
		{"etc/a", "/deep/dir/f/..", missing}, // not a directory
		{"etc/a", "/abs/x/../f", missing},
		{"etc/a", "../x/../../etc", missing},
		{"etc/a", "x/../b", "x/../b"}, // the host fails the same lookup
		{"etc/a", "/deep/dir/../dir/f", "/st/root/deep/dir/f"},
	} {
		if got := stageTarget(tr, tc.p, tc.target, stage); got != tc.want {
			t.Errorf("%s -> %s: staged as %q, want %q", tc.p, tc.target, got, tc.want)
		}
	}
}

// TestStageTargetAgreesWithGuest stages random trees of directories,
// files and symlinks with targets of ".", ".." and names that may not
// exist, and follows each staged symlink on the host: it must reach the
// staged copy of what the guest resolves it to, fail where the guest
// fails, and never leave the staging root. /x/.. with no /x reached the
// staging root although the guest finds nothing.
func TestStageTargetAgreesWithGuest(t *testing.T) {
	names := []string{"a", "b", "c"}
	// "f" only last: resolve lets ".." climb out of a file, which
	// NetBSD's lookup refuses (ENOTDIR, as the host does).
	comps := []string{"a", "b", "c", "..", ".", "x"}
	for seed := int64(0); seed < 200; seed++ {
		r := rand.New(rand.NewSource(seed))
		tr := fstree.New()
		for range 5 {
			d := names[r.Intn(3)]
			if r.Intn(2) == 0 {
				d += "/" + names[r.Intn(3)]
			}
			tr.Put(d+"/f", fstree.NewFile(0o644, []byte(d)))
		}
		var links []string
		for i := range 5 {
			p := fmt.Sprintf("l%d", i)
			if r.Intn(2) == 0 {
				p = names[r.Intn(3)] + "/" + p
			}
			var target []string
			for range 1 + r.Intn(4) {
				target = append(target, comps[r.Intn(len(comps))])
			}
			if r.Intn(3) == 0 {
				target = append(target, "f")
			}
			if r.Intn(2) == 0 {
				target[0] = "/" + target[0]
			}
			if tr.Put(p, fstree.NewSymlink(strings.Join(target, "/"))) == nil {
				links = append(links, p)
			}
		}
		tmp := t.TempDir()
		stage, keep := filepath.Join(tmp, "root"), filepath.Join(tmp, "keep")
		if err := os.Mkdir(keep, 0o700); err != nil {
			t.Fatal(err)
		}
		if _, _, err := stageTree(tr, stage, keep, identity{uid: uint32(os.Geteuid()), gid: uint32(os.Getegid())}); err != nil {
			t.Fatal(err)
		}
		staged := map[uint64]*fstree.Node{} // by host inode
		tr.Walk(func(p string, n *fstree.Node) error {
			var st unix.Stat_t
			if n.Type != fstree.Symlink && unix.Lstat(filepath.Join(stage, p), &st) == nil {
				staged[st.Ino] = n
			}
			return nil
		})
		for _, l := range links {
			for _, p := range []string{l, l + "/f"} {
				want, gerr := resolve(tr, "/"+p)
				var st unix.Stat_t
				herr := unix.Stat(filepath.Join(stage, p), &st)
				target, _ := tr.Get(l)
				switch {
				case gerr != nil && herr == nil:
					t.Errorf("seed %d: %s (%s -> %s): the guest finds nothing (%v), the host finds a file", seed, p, l, target.Target, gerr)
				case gerr == nil && herr != nil:
					t.Errorf("seed %d: %s (%s -> %s): the guest finds it, the host does not: %v", seed, p, l, target.Target, herr)
				case gerr == nil && staged[st.Ino] != want:
					t.Errorf("seed %d: %s (%s -> %s): the host reaches another file than the guest", seed, p, l, target.Target)
				}
				if real, err := filepath.EvalSymlinks(filepath.Join(stage, p)); err == nil && !strings.HasPrefix(real+"/", stage+"/") {
					t.Errorf("seed %d: %s (%s -> %s) leaves the staging root: %s", seed, p, l, target.Target, real)
				}
			}
		}
	}
}
