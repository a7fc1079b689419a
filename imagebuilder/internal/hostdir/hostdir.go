// Package hostdir reads a host directory tree through directory
// descriptors, one name at a time, never following a symlink and never
// blocking on a FIFO.
//
// Image builds may run as root over a tree a less privileged user can
// write to. A walk by path (filepath.WalkDir, then os.Open of what it
// found) lets that user swap a checked entry for a symlink to a root-only
// file, or for a FIFO that blocks the open, between the check and the
// open. Here every entry is opened relative to its parent's descriptor
// with O_NOFOLLOW, and what is read is checked on the open descriptor
// itself (fstat), so what is checked is what is read.
//
// openat2's RESOLVE_NO_SYMLINKS would add nothing: each open resolves a
// single name (no "/", not "." or ".."), for which O_NOFOLLOW already
// refuses a symlink, and plain openat works on every kernel.
package hostdir

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/smolvmm/smolvmm/internal/filekind"
	"golang.org/x/sys/unix"
)

// Dir is an open directory of the tree.
type Dir struct {
	f    *os.File
	fd   int    // f's, kept: f.Fd() would make f blocking each call
	path string // host path, for messages
}

// OpenRoot opens the directory at path, the root of a walk. Symlinks in
// path itself are followed, once, here: the path is the one the caller
// (the user) named, and a symlink there is theirs to mean. Nothing below
// the root is reached by path again.
func OpenRoot(path string) (*Dir, Stat, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, Stat{}, &os.PathError{Op: "open", Path: path, Err: err}
	}
	st, err := Fstat(fd, path)
	if err != nil {
		unix.Close(fd)
		return nil, st, err
	}
	return &Dir{f: os.NewFile(uintptr(fd), path), fd: fd, path: path}, st, nil
}

// Path is the directory's host path, for messages.
func (d *Dir) Path() string { return d.path }

// Close closes the directory.
func (d *Dir) Close() error { return d.f.Close() }

// Names lists the directory's entries, sorted (the order filepath.WalkDir
// gives).
func (d *Dir) Names() ([]string, error) {
	if _, err := d.f.Seek(0, 0); err != nil {
		return nil, fmt.Errorf("reading directory %s: %w", d.path, err)
	}
	names, err := d.f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("reading directory %s: %w", d.path, err)
	}
	slices.Sort(names)
	return names, nil
}

// Join is the host path of name in d, for messages.
func (d *Dir) Join(name string) string { return filepath.Join(d.path, name) }

func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
		return fmt.Errorf("%q is not a single file name", name)
	}
	return nil
}

// Lstat is the entry name in d itself, a symlink not followed.
func (d *Dir) Lstat(name string) (Stat, error) {
	if err := checkName(name); err != nil {
		return Stat{}, err
	}
	st, err := statAt(d.fd, name, unix.AT_SYMLINK_NOFOLLOW)
	if err != nil {
		return st, &os.PathError{Op: "lstat", Path: d.Join(name), Err: err}
	}
	return st, nil
}

// Readlink is the target of the symlink name in d.
func (d *Dir) Readlink(name string) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	for n := 256; ; n *= 2 {
		buf := make([]byte, n)
		k, err := unix.Readlinkat(d.fd, name, buf)
		if err != nil {
			return "", &os.PathError{Op: "readlink", Path: d.Join(name), Err: err}
		}
		if k < n {
			return string(buf[:k]), nil
		}
	}
}

// KindError is the error for an entry that is not the kind of file it
// was opened as (and had been seen as): a symlink, a FIFO or a directory
// where a regular file was, say.
type KindError struct {
	Path string      // host path of the entry
	Want fs.FileMode // fs.ModeDir for a directory, 0 for a regular file
	Mode fs.FileMode // what the entry is; 0 with Err when that is unknown
	Err  error       // why the entry could not even be examined, if so
}

// Error names the entry, what it should be and what it is.
func (e *KindError) Error() string {
	is := "gone"
	if e.Err == nil {
		is = filekind.Of(e.Mode)
	}
	if e.Err != nil && !errors.Is(e.Err, fs.ErrNotExist) {
		is = "unreadable (" + e.Err.Error() + ")"
	}
	return fmt.Sprintf("%s is not %s: it is %s", e.Path, filekind.Of(e.Want), is)
}

// Unwrap is the error that kept the entry from being examined, if any.
func (e *KindError) Unwrap() error { return e.Err }

// Mode is the fs.FileMode type and permission bits of st.
func Mode(st *Stat) fs.FileMode {
	m := fs.FileMode(st.Mode & 0o777)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		m |= fs.ModeDir
	case unix.S_IFLNK:
		m |= fs.ModeSymlink
	case unix.S_IFIFO:
		m |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		m |= fs.ModeSocket
	case unix.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		m |= fs.ModeDevice
	case unix.S_IFREG:
	default:
		m |= fs.ModeIrregular
	}
	if st.Mode&unix.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if st.Mode&unix.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if st.Mode&unix.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// open opens name in d without following a symlink or blocking, and
// checks on the open descriptor that it is of type want (fs.ModeDir or 0).
func (d *Dir) open(name string, want fs.FileMode) (*os.File, Stat, error) {
	if err := checkName(name); err != nil {
		return nil, Stat{}, err
	}
	flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC
	if want == fs.ModeDir {
		flags |= unix.O_DIRECTORY
	}
	hp := d.Join(name)
	fd, err := unix.Openat(d.fd, name, flags, 0)
	if err != nil {
		// A symlink (ELOOP), a socket (ENXIO), not a directory
		// (ENOTDIR): say what is there now, seen without following it.
		lst, lerr := d.Lstat(name)
		if lerr == nil && Mode(&lst).Type() != want {
			return nil, lst, &KindError{Path: hp, Want: want, Mode: Mode(&lst)}
		}
		return nil, Stat{}, &os.PathError{Op: "open", Path: hp, Err: err}
	}
	st, err := Fstat(fd, hp)
	if err != nil {
		unix.Close(fd)
		return nil, st, err
	}
	if m := Mode(&st); m.Type() != want {
		unix.Close(fd)
		return nil, st, &KindError{Path: hp, Want: want, Mode: m}
	}
	// O_NONBLOCK is no matter for a regular file or a directory; a
	// descriptor of neither never gets this far.
	return os.NewFile(uintptr(fd), hp), st, nil
}

// OpenDir opens the subdirectory name of d. Anything else there (a
// symlink, even to a directory) is a *KindError.
func (d *Dir) OpenDir(name string) (*Dir, Stat, error) {
	f, st, err := d.open(name, fs.ModeDir)
	if err != nil {
		return nil, st, err
	}
	return &Dir{f: f, fd: int(f.Fd()), path: f.Name()}, st, nil
}

// OpenFile opens the regular file name of d for reading, and returns its
// status as of the open descriptor: what is read from the file is what
// the status describes. Anything else there is a *KindError; a FIFO is
// refused without blocking.
func (d *Dir) OpenFile(name string) (*os.File, Stat, error) {
	return d.open(name, 0)
}

// Entry is one entry Walk found: Name in Dir, Rel its slash-separated
// path below the walk's root, St its status and, for a regular file, File,
// the open file St describes (closed once the visit returns). A
// directory's and a regular file's status is read from the descriptor it
// was opened as; anything else is not opened, and St is its lstat.
type Entry struct {
	Dir       *Dir
	Name, Rel string
	St        *Stat
	File      *os.File
}

// Walk visits every entry below d, each directory before what it holds,
// in Names' order, opening directories and regular files only beneath
// their parent's descriptor (OpenDir, OpenFile). An entry whose open
// fails after its lstat saw it, as when it was swapped for a symlink or
// a FIFO in between, ends the walk with changed(rel, what the lstat saw,
// the open's error). looked, when set, runs between each entry's lstat
// and its open: tests change the entry there as a racing user could.
// Once ctx is done, the walk ends before the next entry with ctx.Err().
func Walk(ctx context.Context, d *Dir, visit func(Entry) error, changed func(rel string, was fs.FileMode, err error) error, looked func(rel string)) error {
	return walk(ctx, d, "", visit, changed, looked)
}

func walk(ctx context.Context, d *Dir, rel string, visit func(Entry) error, changed func(string, fs.FileMode, error) error, looked func(string)) error {
	names, err := d.Names()
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		e := Entry{Dir: d, Name: name, Rel: path.Join(rel, name)}
		lst, err := d.Lstat(name)
		if err != nil {
			return err
		}
		if looked != nil {
			looked(e.Rel)
		}
		switch lst.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			sub, st, err := d.OpenDir(name)
			if err != nil {
				return changed(e.Rel, Mode(&lst), err)
			}
			e.St = &st
			if err = visit(e); err == nil {
				err = walk(ctx, sub, e.Rel, visit, changed, looked)
			}
			sub.Close()
			if err != nil {
				return err
			}
		case unix.S_IFREG:
			f, st, err := d.OpenFile(name)
			if err != nil {
				return changed(e.Rel, Mode(&lst), err)
			}
			e.St, e.File = &st, f
			err = visit(e)
			f.Close()
			if err != nil {
				return err
			}
		default:
			e.St = &lst
			if err := visit(e); err != nil {
				return err
			}
		}
	}
	return nil
}
