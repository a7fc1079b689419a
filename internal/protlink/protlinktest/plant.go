// Package protlinktest makes the symlinks the tests of protlink's users
// plant: a link to a file, in a directory that is or is not sticky and
// world-writable (as /tmp), owned by a given user, the link by another.
package protlinktest

import (
	"os"
	"path/filepath"
	"testing"
)

// Link describes a planted link.
type Link struct {
	Sticky   bool   // its directory is 01777, else 0755
	DirOwner int    // the directory's owner (uid and gid)
	LinkUID  int    // the link's owner (uid and gid)
	Dangling bool   // its file does not exist
	Name     string // the link's name in the directory
}

// Plant makes l under a new temporary directory and returns the link's
// path, the file it names (holding "precious" unless l.Dangling) and the
// link's directory. It needs root to give the directory and the link to
// other users.
func Plant(t testing.TB, l Link) (link, victim, dir string) {
	t.Helper()
	top := t.TempDir()
	victim = filepath.Join(top, "victim")
	if !l.Dangling {
		if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir = filepath.Join(top, "tmp")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mode := os.FileMode(0o755)
	if l.Sticky {
		mode = 0o777 | os.ModeSticky
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, l.DirOwner, l.DirOwner); err != nil {
		t.Fatal(err)
	}
	link = filepath.Join(dir, l.Name)
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, l.LinkUID, l.LinkUID); err != nil {
		t.Fatal(err)
	}
	return link, victim, dir
}
