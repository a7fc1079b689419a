package imagebuilder

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// InitPaths are where NetBSD's kernel looks for init, in its order
// (initpaths[] in sys/kern/init_main.c:931, NetBSD 9.1); with none of them
// it panics "no init".
var InitPaths = []string{"/sbin/init", "/sbin/oinit", "/sbin/init.bak", "/rescue/init"}

// ErrNoInit is matched by the error of FindInit, and of BuildTree, for a
// tree the kernel could not start: none of InitPaths is an executable file.
var ErrNoInit = errors.New("no init")

// maxSymlinks bounds the symlinks followed resolving one path, as the
// kernel's MAXSYMLINKS does.
const maxSymlinks = 32

// FindInit returns the first of InitPaths that t holds as an executable
// regular file, following symlinks inside the tree (a /sbin that links to
// /rescue works). The error says, for each path, what stands there.
func FindInit(t *fstree.Tree) (string, error) {
	var why []string
	for _, p := range InitPaths {
		n, err := resolve(t, p)
		switch {
		case err != nil:
			why = append(why, p+": "+err.Error())
		case n.Type != fstree.Regular:
			why = append(why, fmt.Sprintf("%s: a %s", p, n.Type))
		case n.Perm&0o111 == 0:
			why = append(why, fmt.Sprintf("%s: not executable (mode %04o)", p, n.Perm))
		default:
			return p, nil
		}
	}
	// Each path once, with what stands there (it was listed twice).
	return "", fmt.Errorf("%w: NetBSD starts the first of these that is an executable file, and this tree has none: %s; its sets must provide one (the rescue set and base do)",
		ErrNoInit, strings.Join(why, "; "))
}

// resolve returns the node at absolute path p of t, following symlinks in
// every component as the kernel's namei would, relative ones from their
// directory and absolute ones from the tree's root; ".." at the root stays
// at the root (sys/kern/vfs_lookup.c:952-975, NetBSD 9.1), so a link that
// climbs above it still resolves.
func resolve(t *fstree.Tree, p string) (*fstree.Node, error) {
	rest := strings.Split(strings.TrimPrefix(p, "/"), "/")
	var done []string
	n := t.Root
	for hops := 0; len(rest) > 0; {
		name := rest[0]
		rest = rest[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			n = walkTo(t, done)
			continue
		}
		if n.Type != fstree.Dir {
			return nil, fmt.Errorf("/%s is not a directory", path.Join(done...))
		}
		next := n.Child(name)
		switch {
		case next == nil && hops == 0:
			return nil, errors.New("not found")
		case next == nil:
			return nil, fmt.Errorf("/%s not found", path.Join(append(done, name)...))
		}
		if next.Type == fstree.Symlink {
			if hops++; hops > maxSymlinks {
				return nil, errors.New("too many symlinks")
			}
			if strings.HasPrefix(next.Target, "/") {
				done = nil
			}
			rest = append(strings.Split(next.Target, "/"), rest...)
			n = walkTo(t, done)
			continue
		}
		done = append(done, name)
		n = next
	}
	return n, nil
}

// walkTo returns the directory at the already resolved components done.
func walkTo(t *fstree.Tree, done []string) *fstree.Node {
	n := t.Root
	for _, d := range done {
		n = n.Child(d)
	}
	return n
}
