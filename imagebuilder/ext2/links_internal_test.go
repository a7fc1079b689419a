package ext2

import (
	"fmt"
	"path"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// wideTree returns a tree whose directory dir ("" for the root) holds n
// empty subdirectories, built in memory; withLF adds /lost+found.
func wideTree(t testing.TB, dir string, n int, withLF bool) *fstree.Tree {
	t.Helper()
	tr := fstree.New()
	if withLF {
		tr.Put(lostFound, fstree.NewDir(0700))
	}
	for i := 0; i < n; i++ {
		if err := tr.Put(path.Join(dir, fmt.Sprintf("d%d", i)), fstree.NewDir(0755)); err != nil {
			t.Fatal(err)
		}
	}
	return tr
}

// TestDirLinkLimit: a directory's link count is 2 plus its subdirectories
// and was stored as uint16 unchecked, so a wide directory wrapped (or
// passed NetBSD's EXT2FS_LINK_MAX, 65000) silently. The limit is checked
// at its boundary, for a subdirectory and for the root (whose lost+found,
// when the tree lacks it, is one more).
func TestDirLinkLimit(t *testing.T) {
	for _, tc := range []struct {
		name      string
		dir       string
		subdirs   int
		lostFound bool
		want      string // error substring, "" for none
	}{
		{"dir at the limit", "big", maxLinks - 2, false, ""},
		{"dir over the limit", "big", maxLinks - 1, false, "directory /big would have 65001 links (64999 subdirectories), more than the 65000"},
		{"root at the limit", "", maxLinks - 3, false, ""},
		{"root over the limit with lost+found added", "", maxLinks - 2, false, "directory / would have 65001 links"},
		{"root at the limit with its own lost+found", "", maxLinks - 3, true, ""},
		{"dir that wraps 16 bits", "big", 65535, false, "directory /big would have 65537 links"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := wideTree(t, tc.dir, tc.subdirs, tc.lostFound)
			var inodes []*inode
			ino := uint32(firstIno)
			tr.Walk(func(p string, n *fstree.Node) error {
				if n.Type == fstree.Dir {
					i := &inode{ino: ino, node: n, path: "/" + p}
					if p == "" {
						i.ino, i.path = rootIno, "/"
					}
					inodes = append(inodes, i)
					ino++
				}
				return nil
			})
			err := checkDirLinks(inodes, !tc.lostFound)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			// The writer refuses it too, before it builds any block.
			if _, err := MinSize(tr, &Options{Timestamp: 1}); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("MinSize: got %v, want %q", err, tc.want)
			}
		})
	}
}
