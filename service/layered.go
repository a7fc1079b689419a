package service

import (
	"errors"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// layered is one file system laid over another, the way a user's common/
// lies over the built-in one: a path upper has is upper's, and a
// directory both have lists the entries of both, upper's on a name both
// have. Any other path is lower's, unless a name on its way is, in upper,
// not a directory (a file, or a symlink: upper resolves it); the path is
// then upper's, and what upper says of it stands.
type layered struct{ upper, lower fs.FS }

// pick is the file system that serves name, and whether name is a
// directory of both, whose listing merges theirs.
func (l layered) pick(op, name string) (fs.FS, bool, error) {
	if !fs.ValidPath(name) {
		return nil, false, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		return l.upper, true, nil
	}
	parts := strings.Split(name, "/")
	for i := range parts {
		p := path.Join(parts[:i+1]...)
		st, err := fs.Lstat(l.upper, p)
		if errors.Is(err, fs.ErrNotExist) {
			return l.lower, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		if !st.IsDir() {
			return l.upper, false, nil
		}
	}
	if st, err := fs.Stat(l.lower, name); err == nil && st.IsDir() {
		return l.upper, true, nil
	}
	return l.upper, false, nil
}

// Open opens name in the file system that serves it; a directory of both
// lists the entries of both.
func (l layered) Open(name string) (fs.File, error) {
	fsys, both, err := l.pick("open", name)
	if err != nil {
		return nil, err
	}
	f, err := fsys.Open(name)
	if err != nil || !both {
		return f, err
	}
	es, err := l.readDir(name)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &layeredDir{File: f, entries: es}, nil
}

// ReadDir lists directory name, the entries of both file systems when
// both have it, sorted by name.
func (l layered) ReadDir(name string) ([]fs.DirEntry, error) {
	fsys, both, err := l.pick("readdir", name)
	if err != nil {
		return nil, err
	}
	if !both {
		return fs.ReadDir(fsys, name)
	}
	return l.readDir(name)
}

// readDir merges the listings of directory name of both file systems.
func (l layered) readDir(name string) ([]fs.DirEntry, error) {
	up, err := fs.ReadDir(l.upper, name)
	if err != nil {
		return nil, err
	}
	low, err := fs.ReadDir(l.lower, name)
	if err != nil {
		return nil, err
	}
	out := slices.Clone(up)
	for _, e := range low {
		if !slices.ContainsFunc(up, func(u fs.DirEntry) bool { return u.Name() == e.Name() }) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

// Stat describes name, following a symlink of upper.
func (l layered) Stat(name string) (fs.FileInfo, error) {
	fsys, _, err := l.pick("stat", name)
	if err != nil {
		return nil, err
	}
	return fs.Stat(fsys, name)
}

// Lstat describes name, not following a symlink.
func (l layered) Lstat(name string) (fs.FileInfo, error) {
	fsys, _, err := l.pick("lstat", name)
	if err != nil {
		return nil, err
	}
	return fs.Lstat(fsys, name)
}

// ReadLink reads the target of symlink name.
func (l layered) ReadLink(name string) (string, error) {
	fsys, _, err := l.pick("readlink", name)
	if err != nil {
		return "", err
	}
	return fs.ReadLink(fsys, name)
}

// ReadFile reads file name.
func (l layered) ReadFile(name string) ([]byte, error) {
	fsys, _, err := l.pick("open", name)
	if err != nil {
		return nil, err
	}
	return fs.ReadFile(fsys, name)
}

// layeredDir is an open directory of both file systems: upper's, listing
// the merged entries.
type layeredDir struct {
	fs.File
	entries []fs.DirEntry
}

// ReadDir returns the next n merged entries (all that are left when
// n <= 0), as fs.ReadDirFile does.
func (d *layeredDir) ReadDir(n int) ([]fs.DirEntry, error) {
	if n <= 0 {
		es := d.entries
		d.entries = nil
		return es, nil
	}
	if len(d.entries) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(d.entries))
	es := d.entries[:n]
	d.entries = d.entries[n:]
	return es, nil
}
