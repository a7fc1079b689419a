// Package fstree is the in-memory file tree that the image builder fills from
// NetBSD sets, a service overlay and postinst scripts, and that the ext2
// writer serialises. It keeps what an image needs (type, permissions, owner,
// mtime, hard links, symlink targets, device numbers) and nothing of the host.
package fstree

import (
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/smolvmm/smolvmm/internal/termsafe"
)

// Type is the kind of a Node.
type Type uint8

// Node types.
const (
	Regular Type = iota + 1
	Dir
	Symlink
	CharDev
	BlockDev
	FIFO
)

// String names the type as messages use it ("file", "directory"...).
func (t Type) String() string {
	switch t {
	case Regular:
		return "file"
	case Dir:
		return "directory"
	case Symlink:
		return "symlink"
	case CharDev:
		return "char device"
	case BlockDev:
		return "block device"
	case FIFO:
		return "fifo"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// MaxNameLen is the longest file name ext2 stores.
const MaxNameLen = 255

// Extent is a run of file content at byte offset Off; bytes of a file not
// covered by any extent read as zero (a hole).
type Extent struct {
	Off  int64
	Data []byte // the bytes from Off on
}

// Node is one inode. Several paths may share a Node: they are hard links.
type Node struct {
	Type  Type   // what it is: a file, a directory, a device...
	Perm  uint16 // permission and setuid/setgid/sticky bits (07777)
	UID   uint32 // owner
	GID   uint32 // group
	Mtime int64  // Unix seconds; 0 without MtimeSet means "none given", the writer substitutes its timestamp; outside MinTime..MaxTime the writer stores the nearest of the two
	// MtimeSet says Mtime was given, also when it is 0: 1970-01-01, the
	// time of every file of a set built with SOURCE_DATE_EPOCH=0. See
	// HasMtime.
	MtimeSet bool

	Size    int64    // regular files: length in bytes
	Extents []Extent // regular files: content, sorted by Off, not overlapping

	Target string // symlinks

	Major, Minor uint32 // device nodes

	children map[string]*Node // directories
	room     int64            // regular files read from a set: the room their data takes (see RoomBlock)
}

// NewDir returns an empty directory node.
func NewDir(perm uint16) *Node {
	return &Node{Type: Dir, Perm: perm & 07777, children: map[string]*Node{}}
}

// NewFile returns a regular file holding data.
func NewFile(perm uint16, data []byte) *Node {
	n := &Node{Type: Regular, Perm: perm & 07777, Size: int64(len(data))}
	if len(data) > 0 {
		n.Extents = []Extent{{Off: 0, Data: data}}
	}
	return n
}

// NewSymlink returns a symbolic link to target.
func NewSymlink(target string) *Node {
	return &Node{Type: Symlink, Perm: 0777, Target: target}
}

// NewDevice returns a character or block device node.
func NewDevice(t Type, perm uint16, major, minor uint32) *Node {
	return &Node{Type: t, Perm: perm & 07777, Major: major, Minor: minor}
}

// HasMtime reports whether n has a modification time of its own: Mtime
// not 0, or 0 given (MtimeSet). A node without one gets the writer's
// timestamp.
func (n *Node) HasMtime() bool { return n.Mtime != 0 || n.MtimeSet }

// Names returns the names in directory n, sorted, so every walk is deterministic.
func (n *Node) Names() []string {
	names := make([]string, 0, len(n.children))
	for name := range n.children {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Child returns the entry called name in directory n, or nil.
func (n *Node) Child(name string) *Node { return n.children[name] }

// Content returns the whole content of a regular file, holes as zeros.
func (n *Node) Content() []byte {
	if len(n.Extents) == 1 && n.Extents[0].Off == 0 && int64(len(n.Extents[0].Data)) == n.Size {
		return n.Extents[0].Data
	}
	b := make([]byte, n.Size)
	for _, e := range n.Extents {
		if e.Off < n.Size {
			copy(b[e.Off:], e.Data)
		}
	}
	return b
}

// Tree is a directory hierarchy rooted at Root.
type Tree struct {
	Root *Node
	// FileLimit, when non-zero, lowers MaxFileSize for the sets (archives
	// and directories) this tree reads (fuzzing uses it to keep every run
	// short).
	FileLimit int64
	// DataLimit, when non-zero, is the most bytes of content the
	// regular files read from sets (archives and directories) into
	// this tree may keep in memory: their data, zeros kept as holes
	// costing nothing. Reading stops with a *LimitError once the files
	// the tree holds and the one being read keep more (counted again
	// every 16 MiB read once past it, so that files a set replaces do
	// not count; a file a later entry replaces counts until then).
	DataLimit int64
	// RoomLimit, when non-zero, is the most room in an image the regular
	// files read from sets into this tree may take, counted as
	// DataLimit is, in blocks of RoomBlock bytes holding a non-zero
	// byte: what they take at least in an image of any block size, so
	// that an image of RoomLimit bytes cannot hold more. Reading stops
	// with a *LimitError once they take more.
	RoomLimit int64
	// Warnings say what the sets read into the tree hold that the image
	// cannot keep exactly, read anyway: modification times outside
	// MinTime..MaxTime, clamped to the nearest. One per set, starting
	// with the set's name.
	Warnings []string

	cur       usage // the regular file being read from a set, so far
	used      usage // the files held and cur, and those replaced since the last count
	recountAt int64 // used.mem at which to count the files held again
	replacing replacing
}

// New returns a tree holding only a root directory (0755, root:wheel).
func New() *Tree { return &Tree{Root: NewDir(0755)} }

// MaxPathLen is the longest path the tree takes, in Clean's form (no
// leading "/" or "./"): NetBSD's PATH_MAX, 1024 bytes with the NUL
// (sys/sys/syslimits.h), less that NUL and the leading "/" of the
// path's full name, which namei copies in whole with the NUL in
// PATH_MAX bytes (sys/kern/vfs_lookup.c). NetBSD cannot look up a
// longer path by its full name, and each path costs the tree's walks
// its length at every level above it: unbounded, a set of a few
// hundred bytes holding one path of 40,000 levels took gigabytes to
// walk.
const MaxPathLen = 1022

// ErrPathTooLong is matched (errors.Is) by Clean's error for a path
// longer than MaxPathLen.
var ErrPathTooLong = errors.New("path too long")

// Clean turns a set path ("./rescue/sh", "rescue/sh/", ".") into the form the
// tree uses ("rescue/sh", "" for the root). It refuses absolute paths, ".."
// components, over-long names, which could place files outside the image,
// and paths longer than MaxPathLen. Its errors name a long path shortened.
func Clean(p string) (string, error) {
	if strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("path %q is absolute: set members must be relative (./path)", shorten(p))
	}
	if strings.ContainsRune(p, 0) {
		return "", fmt.Errorf("path %q contains a NUL byte", shorten(p))
	}
	var parts []string
	size := -1 // the length of parts joined
	for c := range strings.SplitSeq(p, "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			return "", fmt.Errorf("path %q contains \"..\": it would escape the image root", shorten(p))
		}
		if len(c) > MaxNameLen {
			return "", fmt.Errorf("path %q: name %.20q... is %d bytes, ext2 allows %d", shorten(p), c, len(c), MaxNameLen)
		}
		size += 1 + len(c)
		if size <= MaxPathLen {
			parts = append(parts, c)
		}
	}
	if size > MaxPathLen {
		return "", fmt.Errorf("path %q is %d bytes, more than the %d NetBSD can look up (PATH_MAX less the NUL and the leading /): %w", shorten(p), size, MaxPathLen, ErrPathTooLong)
	}
	return strings.Join(parts, "/"), nil
}

// shorten returns p, or when it is long its start and end around "...",
// for a message: a path may be up to a set's largest header long.
func shorten(p string) string {
	const head, tail = 48, 24
	if len(p) <= head+3+tail {
		return p
	}
	return p[:head] + "..." + p[len(p)-tail:]
}

// dir returns the directory that holds clean path p, creating missing parents
// (0755, owner root, no mtime) as real NetBSD sets omit directory entries.
func (t *Tree) dir(p string, create bool) (*Node, string, error) {
	d := t.Root
	if p == "" {
		return nil, "", fmt.Errorf("the root directory has no parent")
	}
	parts := strings.Split(p, "/")
	for i, c := range parts[:len(parts)-1] {
		next := d.children[c]
		if next == nil {
			if !create {
				return nil, "", fmt.Errorf("%s: no such directory", termsafe.Printable(strings.Join(parts[:i+1], "/")))
			}
			next = NewDir(0755)
			d.children[c] = next
		}
		if next.Type != Dir {
			return nil, "", fmt.Errorf("%s: parent %s is a %s, not a directory", termsafe.Printable(p), termsafe.Printable(strings.Join(parts[:i+1], "/")), next.Type)
		}
		d = next
	}
	return d, parts[len(parts)-1], nil
}

// Get returns the node at path p (set form accepted), or an error if absent.
func (t *Tree) Get(p string) (*Node, error) {
	cp, err := Clean(p)
	if err != nil {
		return nil, err
	}
	if cp == "" {
		return t.Root, nil
	}
	d, name, err := t.dir(cp, false)
	if err != nil {
		return nil, err
	}
	n := d.children[name]
	if n == nil {
		return nil, fmt.Errorf("%s: not found", termsafe.Printable(cp))
	}
	return n, nil
}

// Put stores n at path p, creating missing parent directories. An existing
// entry is replaced (the last entry wins, as when extracting a tar), except
// that a directory put over a directory only takes the new attributes and
// keeps its contents, and that anything else put over a directory that is
// not empty is refused, as tar refuses it. Hard links made earlier to a
// replaced file keep the old node, as with tar.
func (t *Tree) Put(p string, n *Node) error {
	cp, err := Clean(p)
	if err != nil {
		return err
	}
	if cp == "" {
		if n.Type != Dir {
			return fmt.Errorf("the root must be a directory, got a %s", n.Type)
		}
		t.Root.Perm, t.Root.UID, t.Root.GID, t.Root.Mtime, t.Root.MtimeSet = n.Perm, n.UID, n.GID, n.Mtime, n.MtimeSet
		return nil
	}
	d, name, err := t.dir(cp, true)
	if err != nil {
		return err
	}
	if old := d.children[name]; old != nil && old.Type == Dir && n.Type == Dir {
		old.Perm, old.UID, old.GID, old.Mtime, old.MtimeSet = n.Perm, n.UID, n.GID, n.Mtime, n.MtimeSet
		return nil
	} else if old != nil && old.Type == Dir && len(old.children) > 0 {
		// Replacing it would drop what it holds without a word; tar
		// refuses to remove a directory that is not empty, too.
		return &ReplaceDirError{Path: cp, Type: n.Type, Holds: path.Join(cp, old.Names()[0])}
	}
	if n.Type == Dir && n.children == nil {
		n.children = map[string]*Node{}
	}
	d.children[name] = n
	return nil
}

// ReplaceDirError is Put's refusal to put an entry other than a directory
// (Type) over the directory at Path, which is not empty: what it holds
// would be dropped without a word, and tar refuses to remove such a
// directory too. A directory put there first replaces a file or symlink.
type ReplaceDirError struct {
	Path  string // the directory, in Clean's form
	Type  Type   // the type of the entry put there
	Holds string // a path the directory holds, the first by name
}

// Error names the entry's type, the directory and a path it holds.
func (e *ReplaceDirError) Error() string {
	return fmt.Sprintf("a %s cannot replace directory %s, which is not empty (it holds %s)", e.Type, termsafe.Printable(e.Path), termsafe.Printable(e.Holds))
}

// Link makes p a hard link to the existing non-directory at target.
func (t *Tree) Link(p, target string) error {
	n, err := t.Get(target)
	if err != nil {
		return fmt.Errorf("hard link %s -> %s: target missing (it must come earlier in the set): %w", termsafe.Printable(p), termsafe.Printable(target), err)
	}
	if n.Type == Dir {
		return fmt.Errorf("hard link %s -> %s: target is a directory", termsafe.Printable(p), termsafe.Printable(target))
	}
	return t.Put(p, n)
}

// Remove deletes the entry at p (a directory with all it holds).
func (t *Tree) Remove(p string) error {
	cp, err := Clean(p)
	if err != nil {
		return err
	}
	if cp == "" {
		return fmt.Errorf("cannot remove the root directory")
	}
	d, name, err := t.dir(cp, false)
	if err != nil {
		return err
	}
	if d.children[name] == nil {
		return fmt.Errorf("%s: not found", termsafe.Printable(cp))
	}
	delete(d.children, name)
	return nil
}

// Walk calls fn for every path in the tree, parents before children and
// names in sorted order; the root is "". A hard-linked node is visited once per path.
func (t *Tree) Walk(fn func(p string, n *Node) error) error {
	return walk("", t.Root, fn)
}

func walk(p string, n *Node, fn func(string, *Node) error) error {
	if err := fn(p, n); err != nil {
		return err
	}
	if n.Type != Dir {
		return nil
	}
	for _, name := range n.Names() {
		if err := walk(path.Join(p, name), n.children[name], fn); err != nil {
			return err
		}
	}
	return nil
}

// CheckSymlink reports an error when symlink p's target cannot be stored
// or followed: an empty one, or one longer than MaxPathLen bytes. NetBSD
// reads a target into a buffer of PATH_MAX bytes with what remains of the
// path being looked up, at least its NUL (namei_follow in
// sys/kern/vfs_lookup.c of 9.1), so it refuses a longer target with
// ENAMETOOLONG, whatever the file system stores. Any other target is
// accepted, a relative one that climbs above the root included: NetBSD
// resolves ".." at the root to the root (the ISDOTDOT case of
// sys/kern/vfs_lookup.c:952-975 in 9.1), so /a/b -> ../../../x is /x, and
// the target is only ever resolved inside the image.
func CheckSymlink(p, target string) error {
	if target == "" {
		return fmt.Errorf("symlink %s has an empty target", termsafe.Printable(p))
	}
	if len(target) > MaxPathLen {
		return fmt.Errorf("symlink %s: its target is %d bytes, more than the %d NetBSD can follow (a longer one fails with ENAMETOOLONG)", termsafe.Printable(shorten(p)), len(target), MaxPathLen)
	}
	return nil
}
