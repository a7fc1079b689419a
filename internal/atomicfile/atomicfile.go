// Package atomicfile replaces a file so that a crash leaves either the old
// file or the whole new one, never a part: the content goes to a temporary
// file in the same directory, is synced, and is renamed over the target,
// and then the directory is synced so that the rename itself is durable.
//
// Replacement by rename is only right for regular files: renaming over a
// device node, a FIFO or a socket would swap the node for a plain file
// (and /dev/stdout, a symlink, would lose its link). Write therefore
// follows symlinks to the file they name and refuses any existing target
// that is not a regular file, with an error matching ErrNotRegular.
//
// Following a link is meant for a path the user named (kstrip -o, mkimg's
// image, a cache file): the file the user's link names is the one they
// mean. Since Target resolves links itself, where the kernel's
// fs.protected_symlinks would not look, it applies that rule to each
// link (ErrUnsafeSymlink): another user's link in a sticky
// world-writable directory such as /tmp is not followed, so a root
// process told to write /tmp/out replaces no file a planted link names.
// A file that other users may replace at will (a daemon's state in a
// directory they can write) needs more than this package gives: it
// should not follow a link at all.
package atomicfile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/internal/filekind"
	"github.com/smolvmm/smolvmm/internal/protlink"
	"github.com/smolvmm/smolvmm/internal/staledir"
)

// ErrNotRegular is matched (errors.Is) by the error for a target that
// exists and is not a regular file.
var ErrNotRegular = errors.New("not a regular file")

// NotRegularError says what kind of file a refused target is.
type NotRegularError struct {
	// Path is the file refused; Link is the symlink given for it, if any.
	Path, Link string
	// Kind is "a directory", "a character device", "a FIFO"...
	Kind string
}

// Error says what the path is (and the symlink it was reached through)
// and why it is left alone.
func (e *NotRegularError) Error() string {
	if e.Link != "" {
		return fmt.Sprintf("%s (through symlink %s) is %s, not a regular file: only a regular file can be replaced", e.Path, e.Link, e.Kind)
	}
	return fmt.Sprintf("%s is %s, not a regular file: only a regular file can be replaced", e.Path, e.Kind)
}

// Is makes errors.Is(err, ErrNotRegular) true.
func (e *NotRegularError) Is(target error) bool { return target == ErrNotRegular }

// ErrUnsafeSymlink is matched (errors.Is) by the error for a symlink
// that another user planted in a sticky world-writable directory, which
// Target does not follow (the kernel's fs.protected_symlinks rule).
var ErrUnsafeSymlink = protlink.ErrUnsafe

// maxLinks bounds a chain of symlinks, as the kernel's ELOOP does.
const maxLinks = 40

// Target returns the file that Write(path) would replace or create: path
// itself, or, when path is a symlink (or a chain of them), the file it
// finally names, even one that does not exist yet; a link the kernel's
// fs.protected_symlinks would not follow is refused (ErrUnsafeSymlink).
// It fails without
// touching anything when that file exists and is not a regular file, so
// callers can check an output before any long work.
func Target(path string) (string, error) {
	p := path
	for range maxLinks {
		st, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if p != path {
				// A link of /proc/self/fd (what /dev/stdout leads to)
				// names a pipe or socket as "pipe:[N]", which is no path,
				// yet the kernel follows it: ask the kernel.
				if st, err := os.Stat(path); err == nil {
					if !st.Mode().IsRegular() {
						return "", &NotRegularError{Path: path, Kind: filekind.Of(st.Mode())}
					}
					return "", fmt.Errorf("%s leads to %s, which is not a path of the file it opens", path, p)
				}
				if dir, err := realDir(p); err == nil {
					p = filepath.Join(dir, filepath.Base(p))
				}
			}
			return p, nil
		case err != nil:
			return "", err
		case st.Mode()&fs.ModeSymlink != 0:
			// The kernel reads a relative target from the link's real
			// directory: through a linked directory, ".." leads out of
			// the directory linked to, not back along the path's text.
			dir, err := realDir(p)
			if err != nil {
				return "", err
			}
			p = filepath.Join(dir, filepath.Base(p))
			if err := protlink.Check(p, st); err != nil {
				return "", err
			}
			dest, err := os.Readlink(p)
			if err != nil {
				return "", err
			}
			// Not joined (Join would drop "sub/.." by its text): the next
			// step resolves the new path's directory as the kernel does.
			if !filepath.IsAbs(dest) {
				dest = dir + string(filepath.Separator) + dest
			}
			p = dest
		case !st.Mode().IsRegular():
			e := &NotRegularError{Path: p, Kind: filekind.Of(st.Mode())}
			if p != path {
				e.Link = path
			}
			return "", e
		default:
			if p == path {
				return p, nil
			}
			return resolved(path, p, st)
		}
	}
	return "", &os.PathError{Op: "open", Path: path, Err: syscall.ELOOP}
}

// realDir returns the directory holding p, symlinks resolved, taken from
// p's text before its last element without cleaning it: "a/../b" is in
// the parent of what a leads to, which may not be ".".
func realDir(p string) (string, error) {
	dir := p[:strings.LastIndexByte(p, filepath.Separator)+1]
	if dir == "" {
		dir = "."
	}
	return filepath.EvalSymlinks(dir)
}

// resolved returns p, the existing regular file (fi its Lstat) Target
// found at the end of path's links, in clean form, once it has made sure
// that the file the kernel opens for path is that one: a resolution that
// went elsewhere must not lead Write to replace another file.
func resolved(path, p string, fi os.FileInfo) (string, error) {
	if dir, err := realDir(p); err == nil {
		p = filepath.Join(dir, filepath.Base(p))
	}
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !os.SameFile(st, fi) {
		return "", fmt.Errorf("%s leads to %s by its links, yet opens another file: neither is replaced", path, p)
	}
	return p, nil
}

// Write creates path with mode perm less the umask (as os.OpenFile
// does), or replaces it, and gives it the content write puts in the file
// it is given. A replaced file keeps its permission bits (read, write and
// execute for owner, group and others) and, as far as this process may
// give them (all of them as root), its owner and group: the replacement
// is a new file, which would otherwise be the writer's, with perm. Its
// setuid, setgid and sticky bits are not kept: they were set for the old
// content, and the owner given back would run the new content with the
// owner's rights. A symlink at path is followed: its target is replaced
// and the link stays. An existing target that is not a regular file is
// refused (ErrNotRegular). On any error the temporary file is removed and
// the target is left as it was.
func Write(path string, perm os.FileMode, write func(*os.File) error) error {
	return WriteContext(context.Background(), path, perm, write)
}

// WriteContext is Write, stopped when ctx ends before the new file is
// renamed over path: once write has returned (no fsync is begun for a
// file that will not be kept) and again right before the rename, after
// the fsync, the longest stretch that does not look at ctx. Stopped, it
// removes the temporary file, leaves path as it was and returns an error
// matching ctx.Err() and its cause. A ctx that ends after the rename
// changes nothing: the new file is in place.
//
// Options (NoReplace, ReplaceIf) limit what the rename may replace.
func WriteContext(ctx context.Context, path string, perm os.FileMode, write func(*os.File) error, opts ...Option) (err error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	path, err = Target(path)
	if err != nil {
		return err
	}
	if o.noReplace {
		if _, err := os.Lstat(path); err == nil {
			return &ExistsError{Path: path}
		}
	}
	uid, gid := -1, -1
	// A new file is created with perm and the kernel takes the umask
	// from it, as for os.OpenFile: a user with umask 077 gets an image
	// only they can read. A replacement starts private and is given the
	// old file's mode once its owner is back.
	create, replace := perm, false
	if st, err := os.Stat(path); err == nil {
		perm, create, replace = st.Mode().Perm(), 0o600, true
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(sys.Uid), int(sys.Gid)
		}
	}
	f, dir, lock, err := createTemp(path, create)
	if err != nil {
		return err
	}
	// Closed last, once the temporary is renamed or removed: until then
	// no other run takes it for one a killed run left.
	defer lock.Close()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := write(f); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return stopped(ctx, path)
	}
	if replace {
		// Before the chmod, which a chown may undo in part. Best effort:
		// a user who is not root may give a file only a group of theirs.
		if uid >= 0 && f.Chown(uid, gid) != nil {
			f.Chown(-1, gid)
		}
		if err := f.Chmod(perm); err != nil {
			return fmt.Errorf("chmod %s: %w", f.Name(), err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", f.Name(), err)
	}
	// The target may have become something else while write ran.
	if _, err := Target(path); err != nil {
		return err
	}
	if CommitHook != nil {
		CommitHook(CommitRename)
	}
	// The last look: past the rename the new file is in place.
	if ctx.Err() != nil {
		return stopped(ctx, path)
	}
	old, err := commit(f.Name(), path, o)
	if old != nil {
		// Closed once the rename is durable: the lock ReplaceIf's check
		// may hold on the old file outlasts the new file's arrival.
		defer old.Close()
	}
	if err != nil {
		return err
	}
	if CommitHook != nil {
		CommitHook(CommitRenamed)
	}
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Option limits what WriteContext's rename may replace.
type Option func(*options)

type options struct {
	noReplace bool
	replaceIf func(old *os.File) error
}

// NoReplace has WriteContext create path and replace no file: a path
// that exists when it begins, or where a file appears while the content
// is written, is left as it is, the new file discarded, and the error is
// an *ExistsError. The new file is put in place with renameat2's
// RENAME_NOREPLACE, or, on a file system that takes no flags (NFS), with
// a link, which fails as surely on an existing name; on one that takes
// neither (vboxsf, most FUSE file systems), with a plain rename once no
// file is seen at path, which replaces a file put there in between.
func NoReplace() Option { return func(o *options) { o.noReplace = true } }

// ReplaceIf has WriteContext ask ok, right before the rename, whether
// the file then at path may be replaced: a file that was judged before a
// long write may since have been put to another use. ok is given that
// file, opened read-only; its error leaves path as it is, the new file
// discarded, and is returned. The file stays open until the new one is
// in place and the rename synced, so a lock ok takes on it (flock) is
// held across the rename, and the rename is made only if path still
// names that file. When path
// has no file then, nothing is replaced that ok was not shown: the new
// file is put in place as with NoReplace.
func ReplaceIf(ok func(old *os.File) error) Option {
	return func(o *options) { o.replaceIf = ok }
}

// ExistsError is WriteContext's error, under NoReplace or ReplaceIf,
// for a path where a file exists that it may not replace.
type ExistsError struct {
	// Path is the file left as it is.
	Path string
	// Appeared says the file was not there when the write began.
	Appeared bool
}

// Error names the path and when its file was found.
func (e *ExistsError) Error() string {
	if e.Appeared {
		return fmt.Sprintf("%s appeared while its new content was written: it is left as it is", e.Path)
	}
	return fmt.Sprintf("%s exists: it is left as it is", e.Path)
}

// Is makes errors.Is(err, fs.ErrExist) true.
func (e *ExistsError) Is(target error) bool { return target == fs.ErrExist }

// commit renames tmp, the new file, to path as o allows. It returns the
// file ReplaceIf's check was shown, open, for the caller to close.
func commit(tmp, path string, o options) (*os.File, error) {
	if o.replaceIf != nil {
		return commitIf(tmp, path, o.replaceIf)
	}
	if o.noReplace {
		return nil, renameNoReplace(tmp, path)
	}
	return nil, os.Rename(tmp, path)
}

// commitIf renames tmp to path if ok accepts the file at path, which it
// returns open (nil when there was none).
func commitIf(tmp, path string, ok func(*os.File) error) (*os.File, error) {
	// O_NONBLOCK: a FIFO put there since Target looked must not hang us;
	// O_NOFOLLOW: nor may a link lead ok to judge another file.
	old, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, renameNoReplace(tmp, path)
	}
	if err != nil {
		return nil, err
	}
	st, err := old.Stat()
	if err != nil {
		return old, err
	}
	if !st.Mode().IsRegular() {
		return old, &NotRegularError{Path: path, Kind: filekind.Of(st.Mode())}
	}
	if err := ok(old); err != nil {
		return old, err
	}
	if now, err := os.Lstat(path); err != nil || !os.SameFile(now, st) {
		return old, fmt.Errorf("%s was replaced by another file while it was judged: it is left as it is", path)
	}
	return old, os.Rename(tmp, path)
}

// link is os.Link, and renameat2 (atomicfile_linux.go,
// atomicfile_other.go) unix.Renameat2 on Linux; tests make them fail as
// file systems without rename flags or hard links do.
var link = os.Link

// unsupported says whether err is how a file system refuses an operation
// it lacks rather than this rename: rename flags are EINVAL (vboxsf, NFS),
// ENOSYS (an old kernel), EPERM or EOPNOTSUPP (FUSE, by its server);
// hard links are EPERM (vboxsf, gcsfuse, s3fs), EOPNOTSUPP, ENOSYS or
// EXDEV (rclone).
func unsupported(err error) bool {
	for _, e := range []unix.Errno{unix.EINVAL, unix.ENOSYS, unix.EPERM, unix.EOPNOTSUPP, unix.EXDEV} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// renameNoReplace renames tmp to path unless path exists.
func renameNoReplace(tmp, path string) error {
	err := renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, path, noReplaceFlag)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EEXIST):
		return &ExistsError{Path: path, Appeared: true}
	case errors.Is(err, unix.EXDEV) || !unsupported(err):
		return &os.LinkError{Op: "rename", Old: tmp, New: path, Err: err}
	}
	// A file system that takes no rename flags: a link is made only
	// where no name is, and the temporary name then goes.
	err = link(tmp, path)
	switch {
	case err == nil:
		os.Remove(tmp)
		return nil
	case errors.Is(err, fs.ErrExist):
		// NFS answers EEXIST to a LINK sent again after its first reply
		// was lost: the name is then the temporary file itself.
		if linkedAs(tmp, path) {
			os.Remove(tmp)
			return nil
		}
		return &ExistsError{Path: path, Appeared: true}
	case !unsupported(err):
		return err
	}
	// Neither rename flags nor links (vboxsf, most FUSE file systems):
	// the plain rename these file systems do support, once no file is
	// seen at path. A file put there between the look and the rename
	// is replaced, a window of one system call that a file system with
	// either would have closed.
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		if err != nil {
			return err
		}
		return &ExistsError{Path: path, Appeared: true}
	}
	return os.Rename(tmp, path)
}

// linkedAs says whether path is a second name of tmp, the new file.
func linkedAs(tmp, path string) bool {
	st, err := os.Lstat(tmp)
	if err != nil {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || sys.Nlink != 2 {
		return false
	}
	now, err := os.Lstat(path)
	return err == nil && os.SameFile(now, st)
}

// stopped is WriteContext's error for a ctx that ended: it matches
// ctx.Err() and the cause (a signal, say) the canceller gave.
func stopped(ctx context.Context, path string) error {
	if c := context.Cause(ctx); c != nil && c != ctx.Err() {
		return fmt.Errorf("writing %s stopped, the file left as it was: %w (%w)", path, ctx.Err(), c)
	}
	return fmt.Errorf("writing %s stopped, the file left as it was: %w", path, ctx.Err())
}

// The stages CommitHook is called at.
const (
	// CommitRename is right before WriteContext's last look at its
	// context and the rename.
	CommitRename = "rename"
	// CommitRenamed is right after the rename.
	CommitRenamed = "renamed"
)

// CommitHook, when set (by tests only), is called by WriteContext at
// CommitRename and CommitRenamed: a test ends a context there, at a point
// no timed signal can be aimed at.
var CommitHook func(stage string)

// createTemp creates the temporary file Write fills for target (a path
// Target returned), in target's directory, which it also returns, with
// mode perm less the umask. os.CreateTemp would make it 0600, and a
// chmod to perm afterwards would ignore the umask; reading the umask
// instead would race with any other goroutine that sets it.
//
// The temporary is locked (flock) through lock, a second descriptor of
// its open file, so that the lock outlasts f's Close until the caller
// closes lock, after the rename or removal: a run killed while writing
// (SIGKILL, the OOM killer) cannot remove its temporary, and the kernel
// drops its lock, which is how createTemp, before it makes a new one,
// tells the temporaries for target that such runs left from those being
// written now (removeStaleTemps). lock is nil where the file system has
// no flock; its Close is then a no-op error.
func createTemp(target string, perm os.FileMode) (f *os.File, dir string, lock *os.File, err error) {
	dir, base := filepath.Split(target)
	if dir == "" {
		dir = "."
	}
	pattern := tempPattern(base)
	prefix, suffix, _ := strings.Cut(pattern, "*")
	removeStaleTemps(dir, prefix, suffix)
	for range 10000 {
		name := filepath.Join(dir, prefix+strconv.FormatUint(uint64(rand.Uint32()), 10)+suffix)
		f, err = os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			break
		}
		var kept bool
		lock, kept, err = lockTemp(f)
		if err != nil || kept {
			break
		}
		// Another run's removeStaleTemps took it, unlocked, between its
		// creation and the lock: another name.
		f.Close()
		f, err = nil, fs.ErrExist
	}
	if err != nil {
		if f != nil {
			f.Close()
			os.Remove(f.Name())
		}
		// The temporary file's random name says nothing to the reader:
		// name the directory, and keep the cause (fs.ErrNotExist for a
		// missing directory).
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, dir, nil, &DirError{Dir: filepath.Clean(dir), Err: err}
	}
	return f, dir, lock, nil
}

// lockTemp locks f, a temporary just created, through a duplicate of its
// descriptor, which it returns (nil when the file system has no flock),
// and says whether f's name still names it: removeStaleTemps may have
// removed it before the lock was taken.
func lockTemp(f *os.File) (lock *os.File, kept bool, err error) {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, false, fmt.Errorf("dup %s: %w", f.Name(), err)
	}
	lock = os.NewFile(uintptr(fd), f.Name())
	// Blocking: removeStaleTemps holds a lock only to look and remove.
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		// No flock here (NFS without locks, some FUSE): removeStaleTemps
		// keeps every temporary, so none is taken from under us.
		lock.Close()
		return nil, true, nil
	}
	st, err := f.Stat()
	if err != nil {
		lock.Close()
		return nil, false, err
	}
	if now, err := os.Lstat(f.Name()); err != nil || !os.SameFile(now, st) {
		lock.Close()
		return nil, false, nil
	}
	return lock, true, nil
}

// removeStaleTemps removes, from dir, the temporaries for one target
// (named prefix, createTemp's random digits, suffix) that no run holds
// locked: those of runs killed while writing. Only regular files this
// user owns are removed, opened without following a symbolic link, as
// dir may be shared (/tmp); a temporary whose lock is refused (no flock
// on this file system) is kept, as it may be being written. Nothing is
// removed on a network file system (NFS, CIFS, SMB, FUSE), where a lock
// free here may be held by a live writer on another host.
func removeStaleTemps(dir, prefix, suffix string) {
	if networkFS(dir) {
		return
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		digits, ok := strings.CutPrefix(e.Name(), prefix)
		if ok {
			digits, ok = strings.CutSuffix(digits, suffix)
		}
		if !ok || !staledir.IsRandomPart(digits) || !e.Type().IsRegular() {
			continue
		}
		removeIfStale(filepath.Join(dir, e.Name()))
	}
}

// networkFS is staledir.NetworkFS; tests replace it.
var networkFS = staledir.NetworkFS

// removeIfStale removes path, a temporary, if it is a regular file of
// this user that it can lock at once, and only while it holds the lock,
// so that the run that created it, locking it next, sees it gone.
func removeIfStale(path string) {
	// O_NONBLOCK: a FIFO put there since the listing must not hang us.
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	var st, now unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Uid != uint32(os.Geteuid()) {
		return
	}
	if unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) != nil {
		return // being written, or no flock here
	}
	if unix.Lstat(path, &now) == nil && now.Dev == st.Dev && now.Ino == st.Ino {
		unix.Unlink(path)
	}
}

// maxTempBase is the longest base name a temporary's name holds whole:
// "." + base + ".tmp-" + createTemp's random part (at most 10 digits)
// must stay within NAME_MAX (255 bytes).
const maxTempBase = 255 - len(".") - len(".tmp-") - 10

// tempPattern is the pattern ("*" for the random part) of a temporary's
// name for base. A base
// too long to have the temporary's prefix and suffix added (a valid name
// near NAME_MAX) is cut and told apart by a digest of the whole name.
func tempPattern(base string) string {
	if len(base) > maxTempBase {
		sum := sha256.Sum256([]byte(base))
		digest := hex.EncodeToString(sum[:8])
		base = base[:maxTempBase-len(digest)-1] + "-" + digest
	}
	return "." + base + ".tmp-*"
}

// DirError is the error for a directory in which Write (or Check) cannot
// create its temporary file: missing (errors.Is fs.ErrNotExist),
// read-only, full, or one that takes no files.
type DirError struct {
	Dir string // the directory of the file to write
	Err error  // the system's cause
}

// Error names the directory and the cause.
func (e *DirError) Error() string { return "create a file in " + e.Dir + ": " + e.Err.Error() }

// Unwrap returns the cause, for errors.Is.
func (e *DirError) Unwrap() error { return e.Err }

// Check proves that Write(path) could begin, without changing path: it
// fails as Write would on a target that is not a regular file, and it
// creates and removes the temporary file Write would create, so a
// directory that is missing, read-only or full of entries fails here.
// Callers run it before long work whose result goes to path.
func Check(path string) error {
	target, err := Target(path)
	if err != nil {
		return err
	}
	f, _, lock, err := createTemp(target, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	f.Close()
	return os.Remove(f.Name())
}

// WriteFile is Write for content already in memory.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, perm, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}
