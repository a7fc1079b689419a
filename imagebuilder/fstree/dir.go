package fstree

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/smolvmm/smolvmm/imagebuilder/internal/hostdir"
	"github.com/smolvmm/smolvmm/internal/filekind"
	"github.com/smolvmm/smolvmm/internal/termsafe"
	"golang.org/x/sys/unix"
)

// AddDir reads the host directory root into t, keeping owners, modes, mtimes,
// hard links (by device and inode number), symlinks and device nodes. Symlinks
// are never followed. The root directory's own attributes are taken too.
// A regular file is held to the size archives are (MaxFileSize) and read
// by its data regions, its zeros kept as holes (see ReadSparse).
//
// A symlink naming root itself is followed, once (the caller named it);
// below it, every entry is opened through its parent's descriptor without
// following a symlink, and a file's attributes and content come from the
// one open descriptor (see hostdir): a user who can write in the tree
// cannot swap a file or directory for a symlink out of it, or for a FIFO
// that blocks the read, between the look and the read. Such a change is
// an error naming the entry. Modification times are clamped as AddTar's.
//
// A set extracted by a user other than root lost its owners (each file is
// that user's) and its setuid and setgid bits (the extraction cannot set
// them), which AddDir cannot tell from the tree: when the user reading it
// is not root and owns entries below root, one line added to t.Warnings
// says how many.
func (t *Tree) AddDir(root string) error {
	return t.AddDirContext(context.Background(), root)
}

// AddDirContext is AddDir stopping once ctx is done: before the next entry,
// or the next chunk of a file (see ReadSparseContext), with ctx.Err(). What
// was read by then stays in t.
func (t *Tree) AddDirContext(ctx context.Context, root string) error {
	rd, rst, err := hostdir.OpenRoot(root)
	if errors.Is(err, fs.ErrPermission) {
		// The set's own directory, refused as its entries are: the
		// same cause, the same remedy.
		return &UnreadableError{Path: termsafe.Printable(root), Dir: true, Err: err}
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", root, err)
	}
	defer rd.Close()
	links := map[[2]uint64]string{}
	var clamped clampedTimes
	owned := userOwned{uid: euid()}
	put := func(p, hp string, d *hostdir.Dir, name string, st *hostdir.Stat, f *os.File) error {
		n, linkTo, err := t.nodeFromHost(ctx, d, name, p, st, f, links)
		if err != nil {
			return fmt.Errorf("%s: %w", termsafe.Printable(hp), err)
		}
		if n == nil {
			return t.Link(p, linkTo)
		}
		n.Mtime = clamped.mtime(hp, n.Mtime)
		return t.Put(p, n)
	}
	visit := func(e hostdir.Entry) error {
		hp := e.Dir.Join(e.Name)
		p, err := Clean(e.Rel)
		if err != nil {
			return fmt.Errorf("%s: %w", termsafe.Printable(shorten(hp)), err)
		}
		owned.note(e.St)
		return put(p, hp, e.Dir, e.Name, e.St, e.File)
	}
	changed := func(rel string, was fs.FileMode, err error) error {
		if errors.Is(err, fs.ErrPermission) {
			return &UnreadableError{Path: termsafe.Printable(filepath.Join(root, rel)), Dir: was.IsDir(), Err: err}
		}
		return fmt.Errorf("%s changed while it was read (it was %s): %w", termsafe.Printable(filepath.Join(root, rel)), filekind.Of(was), err)
	}
	if err := put("", root, nil, "", &rst, nil); err != nil {
		return err
	}
	if err := hostdir.Walk(ctx, rd, visit, changed, afterHostLstat); err != nil {
		return err
	}
	clamped.warn(t, root)
	owned.warn(t, root)
	return nil
}

// UnreadableError is the error of AddDir for the directory set itself or
// an entry of it that the user reading it may not open (EACCES, EPERM): a
// file without read permission for that user, or a directory without read
// and search permission. Such an entry is there and unchanged, not swapped
// while it was read. A caller may give it too for a directory above a
// set, a directory or an archive, that the user may not search
// (imagebuilder's SetUnreachableError wraps one): Dir is then true, and
// Path is that directory, not the set.
type UnreadableError struct {
	Path string // host path of the entry, printable
	Dir  bool   // a directory, not a file
	Err  error  // the system's error, matching fs.ErrPermission
}

// Error names the entry, its kind and why it cannot be read.
func (e *UnreadableError) Error() string {
	kind := "file"
	if e.Dir {
		kind = "directory"
	}
	msg := e.Err
	var pe *fs.PathError
	if errors.As(e.Err, &pe) {
		msg = pe.Err // the path is named already
	}
	return fmt.Sprintf("%s %s cannot be read: %v", kind, e.Path, msg)
}

// Unwrap is the system's error.
func (e *UnreadableError) Unwrap() error { return e.Err }

// euid is the user reading a directory set (a variable: tests play a
// user other than root).
var euid = os.Geteuid

// userOwned counts the entries of a directory set that belong to uid, the
// user reading it, when that is not root: what a user's own extraction
// leaves.
type userOwned struct {
	uid int
	n   int
}

// note counts the entry of status st if it is the reading user's.
func (u *userOwned) note(st *hostdir.Stat) {
	if u.uid > 0 && int64(st.Uid) == int64(u.uid) {
		u.n++
	}
}

// warn adds to t.Warnings the warning for directory set name, if any of
// its entries is the reading user's.
func (u *userOwned) warn(t *Tree, name string) {
	if u.n == 0 {
		return
	}
	entries := "1 entry belongs"
	if u.n > 1 {
		entries = fmt.Sprintf("%d entries belong", u.n)
	}
	t.Warnings = append(t.Warnings, fmt.Sprintf("%s: %s to uid %d, the user building the image, and go into it so: a directory set keeps the owners and modes its files have on the host, and one extracted by a user other than root has lost the release's owners and its setuid and setgid bits (su, passwd); a directory set needs an extraction by root that keeps them (tar -xpf), or the archive can be given instead",
		termsafe.Printable(name), entries, u.uid))
}

// afterHostLstat, when set (by tests), runs in AddDir between the look at
// entry p and its open: there it can change the entry as a racing user
// could.
var afterHostLstat func(p string)

// nodeFromHost returns the node for the host entry name in d (tree path p)
// of status st, or nil and the tree path of the first link when it is a
// further hard link to an entry already read. A regular file's content is
// read from f, the descriptor st describes, up to the size st gives; a
// symlink is read beneath d.
func (t *Tree) nodeFromHost(ctx context.Context, d *hostdir.Dir, name, p string, st *hostdir.Stat, f *os.File, links map[[2]uint64]string) (*Node, string, error) {
	n := &Node{Perm: uint16(st.Mode & 07777), UID: st.Uid, GID: st.Gid, Mtime: st.Mtim.Sec, MtimeSet: true}
	// Hard links of any kind but a directory are one inode, as a tar of
	// the tree records them (GNU tar and bsdtar link symlinks and device
	// nodes too).
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR && st.Nlink > 1 {
		key := [2]uint64{st.Dev, st.Ino}
		if first, ok := links[key]; ok {
			return nil, first, nil
		}
		links[key] = p
	}
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		n.Type, n.children = Dir, map[string]*Node{}
		return n, "", nil
	case syscall.S_IFREG:
	case syscall.S_IFLNK:
		target, err := d.Readlink(name)
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
	if err := t.checkSize(st.Size); err != nil {
		return nil, "", err
	}
	t.taking(p)
	c, err := readSparse(ctx, f, st.Size, t.takeFunc())
	t.taken()
	var shrank *ShrankError
	if errors.As(err, &shrank) {
		return nil, "", fmt.Errorf("changed while it was read: %w", err)
	}
	if err != nil {
		return nil, "", err
	}
	n.Type, n.Size, n.Extents, n.room = Regular, c.Size, c.Extents, c.room
	return n, "", nil
}
