package snapshot

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/internal/filekind"
	"github.com/smolvmm/smolvmm/internal/lockholder"
	"github.com/smolvmm/smolvmm/internal/protlink"
)

// Errors a Target's operations wrap (in a *TargetError), besides the
// system's.
var (
	// ErrNotRegular: the path names something other than a regular file
	// (a directory, a device, a FIFO, a socket), which a snapshot must
	// not replace.
	ErrNotRegular = errors.New("not a regular file")
	// ErrDirPermission: the user given to AllowUser may not replace
	// files in the target's directory (no write and search permission,
	// or a sticky directory and a file the user does not own).
	ErrDirPermission = errors.New("may not replace files in the directory")
	// ErrUnsafeSymlink: the path is a symlink that another user planted
	// in a sticky directory others may write to (such as /tmp), which a
	// snapshot does not follow: the kernel's fs.protected_symlinks rule.
	ErrUnsafeSymlink = protlink.ErrUnsafe
	// ErrDanglingSymlink: the path is a symlink to nothing. A snapshot
	// replaces an existing file a symlink names; it does not create one
	// where a link points.
	ErrDanglingSymlink = errors.New("symlink to a file that does not exist")
	// ErrMoved: a name of the Target's no longer holds the file the
	// Target left there, or that file has another name too: the file
	// was moved, removed or replaced since the last snapshot was
	// written to it (before the first: another file was put there since
	// OpenTarget), or the previous snapshot, which the next is written
	// over, was moved, replaced or linked elsewhere. The Target writes
	// no snapshot while it is so: it would write over the file moved
	// away or linked, or replace the one put in its place.
	ErrMoved = errors.New("not as the snapshot target left it")
	// ErrTempRemoved: the temporary a Target writes next (after the
	// first commit, the spare, which holds the previous snapshot) was
	// removed, as a cleaner of old temporary files may remove it. The
	// error wraps ErrMoved too. A Target makes no new temporary (the
	// process may no longer create files): it writes no more snapshots,
	// and the file keeps the last one it wrote, if it wrote one (the
	// error says which).
	ErrTempRemoved = errors.New("removed: no more snapshots can be written to the target")
	// ErrTempMoved: the name that is not as the Target left it is a
	// temporary's, the one written next (after the first commit, the
	// spare), not the file's: the temporary was moved away, linked
	// elsewhere (and maybe unlinked from its name) or another file put
	// at its name, while it still has a name somewhere (ErrTempRemoved
	// when it has none). The error wraps ErrMoved too. The file is as
	// the last commit left it; snapshots go on once the temporary is
	// back at its name, and there alone.
	ErrTempMoved = errors.New("the target's temporary is not at its name alone")
)

// tempMovedError marks an ErrMoved error as a temporary's
// (ErrTempMoved), its text unchanged: the text names the temporary.
type tempMovedError struct{ err error }

func (e tempMovedError) Error() string   { return e.err.Error() }
func (e tempMovedError) Unwrap() []error { return []error{e.err, ErrTempMoved} }

// TargetError is the error of a Target's operation, naming its file.
// Err wraps ErrInUse when another machine or process holds the file locked (Holder
// then names it, when it can be found), ErrNotRegular, ErrDirPermission
// or ErrMoved (and ErrTempRemoved or ErrTempMoved with it).
type TargetError struct {
	Path   string // the file as given to OpenTarget
	Op     string // what failed: "resolve symlink", "its directory", "open", "lock", "create temporary", "allow user", "check", "write", "write over the previous snapshot", "commit"
	Holder string // for ErrInUse: who holds the lock (lockholder.Describe), or ""
	Err    error
}

// Error names the snapshot file, the operation that failed and why,
// and the lock's holder when one is known.
func (e *TargetError) Error() string {
	s := "snapshot " + e.Path + ": " + e.Op + ": " + e.Err.Error()
	if e.Holder != "" {
		s += "; its lock is held by " + e.Holder
	}
	return s
}

// Unwrap returns the cause (ErrInUse, ErrNotRegular, ErrMoved, a system
// error),
// for errors.Is and errors.As.
func (e *TargetError) Unwrap() error { return e.Err }

// Target is a file that snapshots replace safely. Nothing is written to
// the file in place: a snapshot goes to a temporary file beside it, which
// is synced and then renamed over it, so that the file holds its old
// content until a new snapshot is complete, and a Target that commits
// none leaves it as it was. A symlink at the path stays a symlink: the
// file it names is replaced (if the link is safe to follow: see
// OpenTarget).
//
// Both temporaries are created by OpenTarget, so that a process that
// later forbids itself to create files (a seccomp filter) can still
// write snapshots: the first is renamed over the file; each later one is
// written to the spare temporary and exchanged with the file
// (renameat2 RENAME_EXCHANGE), which leaves the previous snapshot at the
// spare's name, to be written next and removed by Close. Once OpenTarget
// and AllowUser returned, writing and Close make no system call but
// flock, ftruncate, lseek, write, fstat, fsync, close, and the
// Renamer's: newfstatat, renameat, renameat2 and unlinkat in the
// directory, or,
// after UseRenamer, whatever the Renamer given does (a request to the
// process that holds the directory). Under package sandbox's filter that
// is Filter.Truncate, and Filter.RenameDir (the directory Names returns)
// unless UseRenamer handed the renames on, which a process a guest may
// take over should do: RenameDir lets it rename or remove any file
// named relative to the directory.
//
// Locks (flock): the file as it was is locked exclusive from OpenTarget
// until replaced, so that a file a machine uses (as a disk, exclusive;
// restored from, shared: its memory maps the file) is refused. A
// temporary is locked exclusive while written, and shared once it is
// the file, so that machines may restore from it while no later snapshot
// is written over it: the spare is written only when no machine restored
// from it still holds it. Every file of a Target is locked by it until
// Close, which tells a live writer's temporaries from a dead one's (and
// refuses another Target of a file one has written to).
//
// Temporaries are named ".FILE.PID.N.tmp" (PID the writer's process ID).
// Those of a writer killed before its Close stay; OpenTarget removes the
// ones whose process no longer exists and that no one holds locked. A
// writer in another PID namespace (a jailed VMM is PID 1 of its own) names
// a PID that may be alive here: its temporaries stay, which is safe.
//
// The names are checked before each snapshot is written and again before
// it is renamed (ErrMoved): the file must still be the one the last
// snapshot went to (before the first, the one there at OpenTarget, or
// none), the spare the previous snapshot, at its name alone. A user who
// moves the file away to keep it would otherwise have the snapshot after
// next written into it, and a file put at the path would be exchanged
// into the spare's place and removed. The check and the rename are two
// calls, not one: only a change made in between escapes it.
//
// A Target's methods may be called from several goroutines: snapshots are
// written one at a time.
type Target struct {
	path    string // as given, for messages
	dirName string // the directory that holds the file, for messages
	name    string // the file's name in it, symlinks resolved

	mu        sync.Mutex  // held while a snapshot is written and renamed
	old       *os.File    // the file as it was, locked until replaced; nil if none
	files     [2]*os.File // the temporaries; after the first commit files[next] is the spare
	names     *DirRenamer // the names in the directory, while t renames itself; nil once handed off
	tempNames [2]string   // the temporaries' names, for messages and checks
	ren       Renamer     // names, or what it was handed to (UseRenamer)
	next      int         // the index in files of the one to write next
	committed bool        // a snapshot was renamed over name
	closed    bool
}

// Renamer does what a Target does by name in its directory: it checks
// that the names hold the Target's files, puts a written snapshot in
// place of the file and removes the temporaries. A Target does it itself
// (a DirRenamer) until UseRenamer hands it over, say to a process of its
// own that holds the directory, so that the process writing snapshots
// makes no call that takes a name.
type Renamer interface {
	// Check returns ErrMoved unless the file's name holds the file the
	// last commit put there (before the first: the file there when the
	// Target was opened, or none) and the name of the temporary
	// written next holds it (ErrTempMoved too when that name is the
	// one that does not). A Target checks before it writes a
	// snapshot; Commit checks again.
	Check() error
	// Commit checks as Check does, then puts the temporary written last
	// (synced already) in place of the file and makes the rename
	// durable: the first temporary is renamed over the file; after that
	// the spare is exchanged with it (renameat2 RENAME_EXCHANGE),
	// leaving the previous snapshot at the spare's name.
	Commit() error
	// Discard removes the temporaries that are not the file (those
	// their names still hold).
	Discard() error
}

// FileID is a file's identity: the device (Dev) and inode (Ino) numbers
// stat gives it. The zero FileID is no file.
type FileID struct{ Dev, Ino uint64 }

func idOf(st *unix.Stat_t) FileID { return FileID{Dev: uint64(st.Dev), Ino: st.Ino} }

// Files are a Target's files in its directory, by name and identity:
// what its Renamer needs (Target.Names).
type Files struct {
	File    string    // the file's name in the directory
	Temps   [2]string // the temporaries' names
	FileID  FileID    // the file at File when the Target was opened; zero if none was
	TempIDs [2]FileID // the temporaries'
}

// DirRenamer is the Renamer that works in the directory itself.
type DirRenamer struct {
	dir *os.File
	f   Files // after the first commit only Temps[1], the spare's, is a temporary's name
	// The files the names hold, as the commits left them: cur the
	// file's, spare Temps[1]'s (after the first commit).
	cur, spare FileID
	committed  bool
	discarded  bool
}

// NewDirRenamer returns the Renamer of a Target with files f in dir
// (Target.Names): what another process runs for it. It takes dir, which
// Close closes.
func NewDirRenamer(dir *os.File, f Files) *DirRenamer {
	return &DirRenamer{dir: dir, f: f}
}

// Check checks that the names hold the Target's files (ErrMoved).
func (r *DirRenamer) Check() error {
	if r.dir == nil || r.discarded {
		return os.ErrClosed
	}
	if !r.committed {
		if err := r.expectTemp(r.f.Temps[0], r.f.TempIDs[0], "the snapshot's temporary"); err != nil {
			return err
		}
		// The file that was there may have been moved away: the
		// snapshot is written in its place, harming neither. Another
		// file put there is not replaced.
		return r.expect(r.f.File, r.f.FileID, "")
	}
	if err := r.expectTemp(r.f.Temps[1], r.spare, "the previous snapshot, which the next is written over"); err != nil {
		return err
	}
	return r.expect(r.f.File, r.cur, "")
}

// expectTemp is expect for a temporary's name: its ErrMoved is
// ErrTempMoved too.
func (r *DirRenamer) expectTemp(name string, id FileID, what string) error {
	err := r.expect(name, id, what)
	if errors.Is(err, ErrMoved) {
		return tempMovedError{err}
	}
	return err
}

// expect returns ErrMoved unless name holds id; what says what the name
// is ("" for the file). The file may be missing before the first commit.
func (r *DirRenamer) expect(name string, id FileID, what string) error {
	var st unix.Stat_t
	err := unix.Fstatat(int(r.dir.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW)
	label := name
	if what != "" {
		label += " (" + what + ")"
	}
	switch {
	case errors.Is(err, unix.ENOENT) && what == "" && !r.committed:
		return nil
	case errors.Is(err, unix.ENOENT) && what == "":
		return fmt.Errorf("%s: %w: moved or removed since the last snapshot was written to it", label, ErrMoved)
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("%s: %w: moved or removed", label, ErrMoved)
	case err != nil:
		return fmt.Errorf("stat %s: %w", label, err)
	case idOf(&st) == id:
		return nil
	case what == "" && !r.committed && id == FileID{}:
		return fmt.Errorf("%s: %w: a file was put there since the target was opened", label, ErrMoved)
	case what == "" && !r.committed:
		return fmt.Errorf("%s: %w: another file is there now than when the target was opened", label, ErrMoved)
	case what == "":
		return fmt.Errorf("%s: %w: another file is there now, not the snapshot last written to it", label, ErrMoved)
	}
	return fmt.Errorf("%s: %w: another file is there now", label, ErrMoved)
}

// Commit checks the names, renames the next temporary over the file, and
// syncs the directory.
func (r *DirRenamer) Commit() error {
	if err := r.Check(); err != nil {
		return err
	}
	dir := int(r.dir.Fd())
	if !r.committed {
		if err := unix.Renameat(dir, r.f.Temps[0], dir, r.f.File); err != nil {
			return fmt.Errorf("rename %s over %s: %w", r.f.Temps[0], r.f.File, err)
		}
		r.committed = true
		r.cur, r.spare = r.f.TempIDs[0], r.f.TempIDs[1]
	} else {
		if err := unix.Renameat2(dir, r.f.Temps[1], dir, r.f.File, unix.RENAME_EXCHANGE); err != nil {
			return fmt.Errorf("exchange %s with %s: %w", r.f.Temps[1], r.f.File, err)
		}
		r.cur, r.spare = r.spare, r.cur
	}
	_ = r.dir.Sync() // the rename itself, durable
	return nil
}

// Discard removes the temporaries that are not the file: both before
// the first commit, the spare after; a name that no longer holds its
// temporary is left alone. Only the first call acts.
func (r *DirRenamer) Discard() error {
	if r.dir == nil || r.discarded {
		return nil
	}
	r.discarded = true
	var errs []error
	for i, name := range r.f.Temps {
		id := r.f.TempIDs[i]
		if r.committed {
			id = r.spare
		}
		if name == "" || r.committed && i == 0 {
			continue
		}
		var st unix.Stat_t
		err := unix.Fstatat(int(r.dir.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW)
		if err == nil && idOf(&st) != id {
			continue // another file, not the temporary: not ours to remove
		}
		if err == nil {
			err = unix.Unlinkat(int(r.dir.Fd()), name, 0)
		}
		if err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("remove %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// Close closes the directory.
func (r *DirRenamer) Close() error {
	if r.dir == nil {
		return nil
	}
	err := r.dir.Close()
	r.dir = nil
	return err
}

// OpenTarget resolves path (a symlink to the file it names, if safe:
// see resolveAt), locks the file there if there is one (refusing one
// another machine or process holds locked, with ErrInUse), removes the temporaries
// dead writers left beside it and creates the Target's own. It changes
// nothing at path. No file at path is not an error, the first commit
// creates it; a symlink to no file is (ErrDanglingSymlink).
func OpenTarget(path string) (_ *Target, err error) {
	dir, dirName, name, err := resolveAt(path)
	if err != nil {
		var we *walkError
		if errors.As(err, &we) {
			return nil, &TargetError{Path: path, Op: we.op, Err: we.err}
		}
		return nil, &TargetError{Path: path, Op: "resolve symlink", Err: err}
	}
	t := &Target{path: path, dirName: dirName, name: name}
	t.names = &DirRenamer{dir: dir, f: Files{File: t.name}}
	t.ren = t.names
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	real := filepath.Join(dirName, name) // for messages
	dfd := int(dir.Fd())
	var pre unix.Stat_t
	if err := unix.Fstatat(dfd, name, &pre, unix.AT_SYMLINK_NOFOLLOW); err == nil && pre.Mode&unix.S_IFMT != unix.S_IFREG {
		// Not opened: opening a device may act on it (a tape rewinds).
		return nil, &TargetError{Path: path, Op: "open", Err: fmt.Errorf("%w (%s)", ErrNotRegular, filekind.Of(modeOf(pre.Mode)))}
	}
	// Non-blocking: what became a FIFO since the Fstatat is not waited
	// on; nor is a symlink put there since followed.
	var old *os.File
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == nil {
		old = os.NewFile(uintptr(fd), real)
	} else {
		err = &os.PathError{Op: "open", Path: real, Err: err}
	}
	switch {
	case err == nil:
		t.old = old
		fi, err := old.Stat()
		if err != nil {
			return nil, &TargetError{Path: path, Op: "open", Err: err}
		}
		if !fi.Mode().IsRegular() {
			return nil, &TargetError{Path: path, Op: "open", Err: fmt.Errorf("%w (%s)", ErrNotRegular, filekind.Of(fi.Mode()))}
		}
		if err := lockFile(old, unix.LOCK_EX); err != nil {
			return nil, inUse(path, "lock", old, err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(int(old.Fd()), &st); err != nil {
			return nil, &TargetError{Path: path, Op: "open", Err: err}
		}
		t.names.f.FileID = idOf(&st)
	case errors.Is(err, unix.ELOOP):
		return nil, &TargetError{Path: path, Op: "open", Err: fmt.Errorf("%w (a symlink appeared at %s)", ErrNotRegular, real)}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, &TargetError{Path: path, Op: "open", Err: err}
	}
	t.removeStale()
	pattern := "." + t.name + "." + strconv.Itoa(os.Getpid()) + ".*.tmp"
	for i := range t.files {
		var id FileID
		if t.files[i], t.names.f.Temps[i], id, err = t.createTemp(pattern); err != nil {
			return nil, err
		}
		t.names.f.TempIDs[i] = id
		t.tempNames[i] = t.names.f.Temps[i]
	}
	return t, nil
}

// maxLinks is the most symlinks resolveAt follows (the kernel's limit,
// beyond which it says ELOOP).
const maxLinks = 40

// walkError is resolveAt's failure: op is the TargetError's Op.
type walkError struct {
	op  string
	err error
}

func (e *walkError) Error() string { return e.err.Error() }
func (e *walkError) Unwrap() error { return e.err }

// resolveAt resolves path to the directory that holds the file it names
// (following a symlink at its end to the file the chain of links ends
// at) and the file's name in it. A snapshot replaces that file, so each
// link, among the directories and at the end, is followed only where
// the kernel's fs.protected_symlinks would let this process follow it:
// a link in a sticky directory that others may write to (/tmp) is
// followed only if this process's user or the directory's owner owns it
// (ErrUnsafeSymlink). A link another user planted there could otherwise
// make a root snapshot replace any file, or be written in any directory.
// A chain that ends at no file is refused (ErrDanglingSymlink).
//
// The path is walked one component at a time through descriptors
// (openat with O_NOFOLLOW from the directory before), each link read and
// checked through the descriptor of the link itself and that of its
// directory: no name is looked up twice, so that what was checked is
// what is used even while another user swaps the names (renameat2
// RENAME_EXCHANGE of a directory and a link). The directory returned is
// opened for reading; dirName is its path as resolved, for messages.
func resolveAt(path string) (dir *os.File, dirName, name string, err error) {
	dirName = "."
	if filepath.IsAbs(path) {
		dirName = "/"
	}
	dfd, err := unix.Open(dirName, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, "", "", &walkError{"its directory", &os.PathError{Op: "open", Path: dirName, Err: err}}
	}
	defer func() { unix.Close(dfd) }()
	rest := splitPath(path)
	// atEnd: a link at the end was followed, so that no file there is a
	// dangling link rather than a file for the first commit to create.
	atEnd := false
	for hops := 0; ; {
		n := rest[0]
		rest = rest[1:]
		final := len(rest) == 0
		if !final && (n == "" || n == ".") {
			continue
		}
		if final && n == "" {
			n = "."
		}
		next := filepath.Join(dirName, n) // dirName has no symlink: its ".." is the lexical one
		// O_PATH: no device or FIFO is opened, a symlink is opened itself.
		fd, err := unix.Openat(dfd, n, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		switch {
		case err != nil && final && atEnd && errors.Is(err, unix.ENOENT):
			return nil, "", "", &walkError{"resolve symlink", fmt.Errorf("%s -> %s: %w", path, next, ErrDanglingSymlink)}
		case err != nil && final && atEnd:
			return nil, "", "", &walkError{"resolve symlink", &os.PathError{Op: "lstat", Path: next, Err: err}}
		case err != nil && final:
			// No file (the first commit creates it), or one the open
			// after reports.
			d, err := openDir(dfd, dirName)
			return d, dirName, n, err
		case err != nil:
			return nil, "", "", &walkError{"its directory", &os.PathError{Op: "open", Path: next, Err: err}}
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return nil, "", "", &walkError{"its directory", &os.PathError{Op: "stat", Path: next, Err: err}}
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
		case unix.S_IFDIR:
			if !final {
				unix.Close(dfd)
				dfd, dirName = fd, next
				continue
			}
			fallthrough
		default:
			unix.Close(fd)
			if final {
				d, err := openDir(dfd, dirName)
				return d, dirName, n, err
			}
			return nil, "", "", &walkError{"its directory", &os.PathError{Op: "open", Path: next, Err: unix.ENOTDIR}}
		}
		to, err := readLink(fd, dfd, next)
		unix.Close(fd)
		if err != nil {
			return nil, "", "", &walkError{"resolve symlink", err}
		}
		atEnd = final
		if hops++; hops > maxLinks {
			return nil, "", "", &walkError{"resolve symlink", fmt.Errorf("%s: %w", path, unix.ELOOP)}
		}
		if filepath.IsAbs(to) {
			root, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return nil, "", "", &walkError{"its directory", &os.PathError{Op: "open", Path: "/", Err: err}}
			}
			unix.Close(dfd)
			dfd, dirName = root, "/"
		}
		rest = append(splitPath(to), rest...)
	}
}

// splitPath is path's components, the last the file's name ("" for a
// path that ends in "/"). Not cleaned: after a link, ".." is the parent
// of the directory it names, as the kernel resolves it.
func splitPath(path string) []string {
	return strings.Split(strings.TrimPrefix(path, "/"), "/")
}

// readLink checks the symlink fd (an O_PATH descriptor, named next) in
// the directory dfd by protlink's rule and returns its target.
func readLink(fd, dfd int, next string) (string, error) {
	var lst, dst unix.Stat_t
	if err := unix.Fstat(fd, &lst); err != nil {
		return "", &os.PathError{Op: "lstat", Path: next, Err: err}
	}
	if err := unix.Fstat(dfd, &dst); err != nil {
		return "", fmt.Errorf("directory of symlink %s: %w", next, err)
	}
	if err := protlink.CheckOwners(next, lst.Uid, dst.Uid, dst.Mode); err != nil {
		return "", err
	}
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(fd, "", buf)
		if err != nil {
			return "", &os.PathError{Op: "readlink", Path: next, Err: err}
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// openDir opens the directory dfd (an O_PATH descriptor) for reading.
func openDir(dfd int, name string) (*os.File, error) {
	fd, err := unix.Openat(dfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &walkError{"its directory", &os.PathError{Op: "open", Path: name, Err: err}}
	}
	return os.NewFile(uintptr(fd), name), nil
}

// afterCreate, when set, runs between a temporary's creation and its lock
// (for tests).
var afterCreate func(name string)

// createTemp creates a temporary in t.dir and locks it exclusive. In the
// moment before the lock, another writer's removeStale may take it for a
// dead writer's (one in a PID namespace where this process's PID does
// not exist) and remove it: it is then made again.
func (t *Target) createTemp(pattern string) (*os.File, string, FileID, error) {
	dir := int(t.names.dir.Fd())
	for try := 1; ; try++ {
		f, name, err := createAt(dir, t.dirName, pattern)
		if err != nil {
			return nil, "", FileID{}, &TargetError{Path: t.path, Op: "create temporary", Err: err}
		}
		if afterCreate != nil {
			afterCreate(name)
		}
		err = lockFile(f, unix.LOCK_EX)
		if err == nil {
			var st, now unix.Stat_t
			if err = unix.Fstat(int(f.Fd()), &st); err == nil {
				err = unix.Fstatat(dir, name, &now, unix.AT_SYMLINK_NOFOLLOW)
			}
			if err == nil && st.Dev == now.Dev && st.Ino == now.Ino {
				return f, name, idOf(&st), nil
			}
		}
		f.Close()
		if err != nil && !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.ENOENT) || try == 3 {
			if err == nil {
				err = fmt.Errorf("%s was replaced", name)
			}
			return nil, "", FileID{}, &TargetError{Path: t.path, Op: "create temporary " + filepath.Join(t.dirName, name), Err: err}
		}
	}
}

// createAt creates a new file in the directory dir (named dirName, for
// messages) with a name pattern makes (its last "*" replaced by a random
// number), through the descriptor: the directory is the one resolveAt
// checked, whatever its name names now.
func createAt(dir int, dirName, pattern string) (*os.File, string, error) {
	prefix, suffix := pattern, ""
	if i := strings.LastIndex(pattern, "*"); i >= 0 {
		prefix, suffix = pattern[:i], pattern[i+1:]
	}
	for try := 0; ; try++ {
		name := prefix + strconv.FormatUint(uint64(rand.Uint32()), 10) + suffix
		fd, err := unix.Openat(dir, name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if errors.Is(err, unix.EEXIST) && try < 10000 {
			continue
		}
		if err != nil {
			return nil, "", &os.PathError{Op: "open", Path: filepath.Join(dirName, name), Err: err}
		}
		return os.NewFile(uintptr(fd), filepath.Join(dirName, name)), name, nil
	}
}

// modeOf is the fs.FileMode of the file type in st_mode m.
func modeOf(m uint32) fs.FileMode {
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		return fs.ModeDir
	case unix.S_IFLNK:
		return fs.ModeSymlink
	case unix.S_IFIFO:
		return fs.ModeNamedPipe
	case unix.S_IFSOCK:
		return fs.ModeSocket
	case unix.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		return fs.ModeDevice
	}
	return 0
}

// inUse is the error for f, which flock refused with err: ErrInUse,
// naming the holder, when another machine or process holds a lock.
func inUse(path, op string, f *os.File, err error) error {
	if !errors.Is(err, unix.EWOULDBLOCK) {
		return &TargetError{Path: path, Op: op, Err: fmt.Errorf("flock: %w", err)}
	}
	holder := ""
	if f != nil {
		holder = lockholder.Describe(f)
	}
	return &TargetError{Path: path, Op: op, Holder: holder, Err: fmt.Errorf("%w (%w)", ErrInUse, err)}
}

// lockFile takes an flock on f without waiting.
func lockFile(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// tempPID returns the writer's PID a temporary's name holds, when name is
// one of the file's temporaries (".NAME.PID.N.tmp").
func tempPID(file, name string) (int, bool) {
	mid, ok := strings.CutPrefix(name, "."+file+".")
	if !ok {
		return 0, false
	}
	if mid, ok = strings.CutSuffix(mid, ".tmp"); !ok {
		return 0, false
	}
	p, n, ok := strings.Cut(mid, ".")
	if !ok || !digits(p) || !digits(n) {
		return 0, false
	}
	pid, err := strconv.Atoi(p)
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

func digits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// processGone reports whether no process pid exists (as this process's
// PID namespace sees it).
var processGone = func(pid int) bool {
	return errors.Is(unix.Kill(pid, 0), unix.ESRCH)
}

// removeStale removes the temporaries of writers that died before their
// Close: those whose process is gone and which can be locked exclusive
// at once (a live writer holds its own locked; a machine restored from
// a spare holds it shared). Best effort: what it cannot tell is kept.
func (t *Target) removeStale() {
	d := t.names.dir
	if _, err := d.Seek(0, io.SeekStart); err != nil {
		return
	}
	names, err := d.Readdirnames(-1)
	if err != nil {
		return
	}
	dir := int(d.Fd())
	for _, name := range names {
		pid, ok := tempPID(t.name, name)
		if !ok || !processGone(pid) { // this process's own among the live
			continue
		}
		// Only a regular file is opened (opening a device may act on
		// it), without following a symlink or waiting on a FIFO.
		var pre unix.Stat_t
		if unix.Fstatat(dir, name, &pre, unix.AT_SYMLINK_NOFOLLOW) != nil || pre.Mode&unix.S_IFMT != unix.S_IFREG {
			continue
		}
		fd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		// Only the file locked is removed, and only while the name is
		// still it.
		var st, now unix.Stat_t
		if unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG &&
			unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) == nil &&
			unix.Fstatat(dir, name, &now, unix.AT_SYMLINK_NOFOLLOW) == nil &&
			now.Dev == st.Dev && now.Ino == st.Ino {
			_ = unix.Unlinkat(dir, name, 0)
		}
		unix.Close(fd)
	}
}

// ReadOld reads the start of the file the Target replaces, as OpenTarget
// found and opened it (safely: no device opened, no unsafe symlink
// followed), into p, for a caller that refuses to replace some files (a
// program's snapshots replace only its snapshots). exists is false, and
// n 0, when there was no file or it is replaced already.
func (t *Target) ReadOld(p []byte) (n int, exists bool, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.old == nil {
		return 0, false, nil
	}
	n, err = t.old.ReadAt(p, 0)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	if err != nil {
		return n, true, &TargetError{Path: t.path, Op: "read", Err: err}
	}
	return n, true, nil
}

// Path returns the path the Target was opened with.
func (t *Target) Path() string { return t.path }

// DirName returns the directory that holds the file (the symlink's
// target's, for a symlink).
func (t *Target) DirName() string { return t.dirName }

// Names returns what a Renamer of t in another process needs: the
// directory that holds the file (t's own descriptor, to be passed on:
// the caller dups it), and the names and identities of t's files in it.
// ok is false once t no longer holds the directory (UseRenamer, Close).
// Call it before any snapshot is written to t.
func (t *Target) Names() (dir *os.File, files Files, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.names == nil || t.closed {
		return nil, Files{}, false
	}
	return t.names.dir, t.names.f, true
}

// UseRenamer makes r do t's renames and removals from now on (a
// NewDirRenamer of Names, in a process that holds the directory), and
// closes t's own descriptor of the directory: t then makes no call that
// takes a name. Call it before any snapshot is written to t.
func (t *Target) UseRenamer(r Renamer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.names != nil {
		t.names.Close()
		t.names = nil
	}
	t.ren = r
}

// AllowUser prepares t for a process that will run as uid and gid (with
// no other group) when it commits: it makes the temporaries theirs and
// refuses (ErrDirPermission) a directory in which that user could not
// rename them over the file.
func (t *Target) AllowUser(uid, gid int) error {
	for _, f := range t.files {
		if err := f.Chown(uid, gid); err != nil {
			return &TargetError{Path: t.path, Op: "allow user", Err: fmt.Errorf("temporary file: %w", err)}
		}
	}
	var st unix.Stat_t
	if t.names == nil {
		return &TargetError{Path: t.path, Op: "allow user", Err: os.ErrClosed}
	}
	if err := unix.Fstat(int(t.names.dir.Fd()), &st); err != nil {
		return &TargetError{Path: t.path, Op: "allow user", Err: fmt.Errorf("its directory: %w", err)}
	}
	perm := st.Mode & 0o7 // others'
	switch {
	case int(st.Uid) == uid:
		perm = st.Mode >> 6 & 0o7
	case int(st.Gid) == gid:
		perm = st.Mode >> 3 & 0o7
	}
	ok := perm&0o3 == 0o3 // write and search
	if ok && st.Mode&unix.S_ISVTX != 0 && int(st.Uid) != uid && t.old != nil {
		// A sticky directory: only the owner replaces a file.
		var fst unix.Stat_t
		ok = unix.Fstat(int(t.old.Fd()), &fst) == nil && int(fst.Uid) == uid
	}
	if !ok {
		return &TargetError{Path: t.path, Op: "allow user",
			Err: fmt.Errorf("uid %d %w %s", uid, ErrDirPermission, t.dirName)}
	}
	return nil
}

// prepare returns the temporary to write the next snapshot to, locked
// exclusive and empty. t.mu is held.
func (t *Target) prepare() (*os.File, error) {
	if t.closed {
		return nil, &TargetError{Path: t.path, Op: "write", Err: os.ErrClosed}
	}
	f := t.files[t.next]
	// A temporary removed has no name left: said so, rather than as
	// one moved away that could be put back.
	if err := t.tempRemoved(f); err != nil {
		return nil, &TargetError{Path: t.path, Op: "check", Err: err}
	}
	if err := t.ren.Check(); err != nil {
		return nil, &TargetError{Path: t.path, Op: "check", Err: err}
	}
	// Its name checked, the temporary may still have another: a hard
	// link made to the file, which becomes the spare, whose content
	// writing would change.
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, &TargetError{Path: t.path, Op: "check", Err: fmt.Errorf("%s: %w", t.spareName(), err)}
	}
	if st.Nlink > 1 {
		return nil, &TargetError{Path: t.path, Op: "check", Err: tempMovedError{fmt.Errorf("%s (%s): %w: it has %d names (a hard link to it, whose content writing would change)", t.spareName(), t.spareWhat(), ErrMoved, st.Nlink)}}
	}
	// A temporary that was once the file may be mapped by a machine
	// restored from it: it is written only once no such machine holds it.
	if err := lockFile(f, unix.LOCK_EX); err != nil {
		// The failed conversion dropped the shared lock: take it again,
		// so that the spare stays marked as a live writer's.
		_ = lockFile(f, unix.LOCK_SH)
		// No holder named: this may run under a seccomp filter, which
		// forbids reading /proc/locks.
		spare := filepath.Join(t.dirName, t.spareName())
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &TargetError{Path: t.path, Op: "write over the previous snapshot", Err: fmt.Errorf("%s: flock: %w", spare, err)}
		}
		return nil, &TargetError{Path: t.path, Op: "write over the previous snapshot", Err: fmt.Errorf("%s: %w (%w)", spare, ErrInUse, err)}
	}
	if err := f.Truncate(0); err != nil {
		return nil, &TargetError{Path: t.path, Op: "write", Err: err}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, &TargetError{Path: t.path, Op: "write", Err: err}
	}
	return f, nil
}

// spareName is the name of the temporary written next (files[t.next]):
// the first's before the first commit, the spare's after. The names are
// for messages; a handed-off Target knows them from before.
func (t *Target) spareName() string {
	if t.committed {
		return t.tempNames[1]
	}
	return t.tempNames[0]
}

// spareWhat says what the temporary written next is, for messages.
func (t *Target) spareWhat() string {
	if t.committed {
		return "the previous snapshot, which the next is written over"
	}
	return "the snapshot's temporary"
}

// tempRemoved returns ErrTempRemoved (and ErrMoved) when f, the
// temporary written next, has no name left; nil otherwise, a failed
// fstat included (the checks after it report that). It says whether
// the file keeps a snapshot t wrote: before the first, it has none.
func (t *Target) tempRemoved(f *os.File) error {
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil || st.Nlink != 0 {
		return nil
	}
	kept := "none was written to its file"
	if t.committed {
		kept = "its file keeps the last one written"
	}
	return fmt.Errorf("%s (%s): %w: %w; %s", t.spareName(), t.spareWhat(), ErrMoved, ErrTempRemoved, kept)
}

// commit syncs the written temporary and has it renamed over the file.
// t.mu is held.
func (t *Target) commit() error {
	f := t.files[t.next]
	if err := f.Sync(); err != nil {
		emptyTemp(f)
		return &TargetError{Path: t.path, Op: "commit", Err: err}
	}
	if err := t.ren.Commit(); err != nil {
		// Not emptied, unless refused before any rename: a Renamer in
		// another process may have renamed it over the file before its
		// answer failed.
		if errors.Is(err, ErrMoved) {
			emptyTemp(f)
			if rerr := t.tempRemoved(f); rerr != nil {
				err = rerr
			}
		}
		return &TargetError{Path: t.path, Op: "commit", Err: err}
	}
	if !t.committed && t.old != nil {
		t.old.Close() // the old file is gone: its lock with it
		t.old = nil
	}
	t.committed = true
	// Complete: machines may restore from it (shared), and it stays
	// marked as this writer's when it moves to the spare's name.
	_ = unix.Flock(int(f.Fd()), unix.LOCK_SH)
	t.next = 1 - t.next
	return nil
}

// Write writes a snapshot through fn and commits it when fn returns nil;
// otherwise the file keeps what it held, the temporary fn wrote to is
// emptied (no space held) and fn's error is returned. The
// writer fn gets is also an io.Seeker with a Stat method, as
// Write (the package's function) wants for holes. Write refuses, before
// calling fn, a spare that a machine restored from still holds (ErrInUse).
func (t *Target) Write(fn func(w io.Writer) error) error {
	w := t.NewWriter()
	if _, err := w.file(); err != nil {
		return err
	}
	return w.Finish(fn(w))
}

// TargetWriter writes one snapshot at a time to a Target, for writers
// that cannot be wrapped in a call, such as a machine's snapshot taken
// when its guest is ready (vmm.Config.SnapshotOnReady: its OnSnapshot
// calls Finish, or, without one, the machine does). Its first Write, Seek or Stat takes the Target (until
// Finish) and an empty temporary; Finish commits. Finish must follow
// any use (Close waits for it). It may write another snapshot after
// Finish.
type TargetWriter struct {
	t   *Target
	f   *os.File
	err error
}

// NewWriter returns a TargetWriter of t.
func (t *Target) NewWriter() *TargetWriter { return &TargetWriter{t: t} }

func (w *TargetWriter) file() (*os.File, error) {
	if w.f == nil && w.err == nil {
		w.t.mu.Lock()
		if w.f, w.err = w.t.prepare(); w.err != nil {
			w.f = nil
			w.t.mu.Unlock()
		}
	}
	return w.f, w.err
}

// Write writes to the snapshot's temporary file.
func (w *TargetWriter) Write(p []byte) (int, error) {
	f, err := w.file()
	if err != nil {
		return 0, err
	}
	return f.Write(p)
}

// Seek seeks in the snapshot's temporary file.
func (w *TargetWriter) Seek(off int64, whence int) (int64, error) {
	f, err := w.file()
	if err != nil {
		return 0, err
	}
	return f.Seek(off, whence)
}

// Stat describes the snapshot's temporary file.
func (w *TargetWriter) Stat() (os.FileInfo, error) {
	f, err := w.file()
	if err != nil {
		return nil, err
	}
	return f.Stat()
}

// Finish ends the snapshot whose writing returned err: when err is nil,
// the temporary is synced and renamed over the file; otherwise it is
// truncated, holding no space until the next snapshot. It returns err, the
// writer's own error (such as ErrInUse, from its first use) or the
// commit's. A writer never used commits nothing and returns err.
func (w *TargetWriter) Finish(err error) error {
	if w.f == nil {
		if err == nil {
			err = w.err
		}
		w.err = nil
		return err
	}
	defer w.t.mu.Unlock()
	f := w.f
	w.f = nil
	if err != nil {
		emptyTemp(f)
		return err
	}
	return w.t.commit()
}

// emptyTemp truncates a temporary whose snapshot failed, so that what it
// got holds no space while the Target stays open (a disk it filled
// stays full until Close otherwise). Best effort: the next write
// truncates it again.
func emptyTemp(f *os.File) { _ = f.Truncate(0) }

// Close removes the temporaries left and releases the files and their
// locks; it reports whether a snapshot was committed. It waits for a
// snapshot being written to finish. Close of a closed Target does
// nothing.
func (t *Target) Close() (committed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return t.committed
	}
	t.closed = true
	if t.ren != nil {
		_ = t.ren.Discard() // best effort, as a removal always was
	}
	for i, f := range t.files {
		if f != nil {
			f.Close()
			t.files[i] = nil
		}
	}
	if t.old != nil {
		t.old.Close()
		t.old = nil
	}
	if t.names != nil {
		t.names.Close()
		t.names = nil
	}
	return t.committed
}
