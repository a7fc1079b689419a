package fstree

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// AddDir reads the host directory root into t, keeping owners, modes, mtimes,
// hard links (by device and inode number), symlinks and device nodes. Symlinks
// are never followed. The root directory's own attributes are taken too.
func (t *Tree) AddDir(root string) error {
	links := map[[2]uint64]string{}
	return filepath.WalkDir(root, func(hp string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("reading %s: %w", hp, err)
		}
		rel, err := filepath.Rel(root, hp)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		p, err := Clean(rel)
		if err != nil {
			return fmt.Errorf("%s: %w", hp, err)
		}
		n, linkTo, err := nodeFromHost(hp, p, links)
		if err != nil {
			return fmt.Errorf("%s: %w", hp, err)
		}
		if n == nil {
			return t.Link(p, linkTo)
		}
		return t.Put(p, n)
	})
}

// nodeFromHost returns the node for host path hp (tree path p), or nil and
// the tree path of the first link when hp is a further hard link to a file
// already read.
func nodeFromHost(hp, p string, links map[[2]uint64]string) (*Node, string, error) {
	var st unix.Stat_t
	if err := unix.Lstat(hp, &st); err != nil {
		return nil, "", err
	}
	n := &Node{Perm: uint16(st.Mode & 07777), UID: st.Uid, GID: st.Gid, Mtime: st.Mtim.Sec}
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		n.Type, n.children = Dir, map[string]*Node{}
		return n, "", nil
	case syscall.S_IFREG:
	case syscall.S_IFLNK:
		target, err := os.Readlink(hp)
		if err != nil {
			return nil, "", err
		}
		if err := CheckSymlink(p, target); err != nil {
			return nil, "", err
		}
		n.Type, n.Target = Symlink, target
		return n, "", nil
	case syscall.S_IFCHR, syscall.S_IFBLK:
		n.Type = CharDev
		if st.Mode&syscall.S_IFMT == syscall.S_IFBLK {
			n.Type = BlockDev
		}
		n.Major, n.Minor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
		return n, "", nil
	case syscall.S_IFIFO:
		n.Type = FIFO
		return n, "", nil
	default:
		return nil, "", fmt.Errorf("unsupported file type (mode %#o): sockets cannot go in an image", st.Mode)
	}
	key := [2]uint64{st.Dev, st.Ino}
	if st.Nlink > 1 {
		if first, ok := links[key]; ok {
			return nil, first, nil
		}
		links[key] = p
	}
	data, err := os.ReadFile(hp)
	if err != nil {
		return nil, "", err
	}
	n.Type, n.Size = Regular, int64(len(data))
	if len(data) > 0 {
		n.Extents = []Extent{{Data: data}}
	}
	return n, "", nil
}
