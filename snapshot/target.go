package snapshot

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/internal/filekind"
	"github.com/smolvmm/smolvmm/internal/lockholder"
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
)

// TargetError is the error of a Target's operation, naming its file.
// Err wraps ErrInUse when another process holds the file locked (Holder
// then names it, when it can be found), ErrNotRegular or
// ErrDirPermission.
type TargetError struct {
	Path   string // the file as given to OpenTarget
	Op     string // what failed: "resolve symlink", "its directory", "open", "lock", "create temporary", "allow user", "write", "write over the previous snapshot", "commit"
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

// Unwrap returns the cause (ErrInUse, ErrNotRegular, a system error),
// for errors.Is and errors.As.
func (e *TargetError) Unwrap() error { return e.Err }

// Target is a file that snapshots replace safely. Nothing is written to
// the file in place: a snapshot goes to a temporary file beside it, which
// is synced and then renamed over it, so that the file holds its old
// content until a new snapshot is complete, and a Target that commits
// none leaves it as it was. A symlink at the path stays a symlink: the
// file it names is replaced.
//
// Both temporaries are created by OpenTarget, so that a process that
// later forbids itself to create files (a seccomp filter) can still
// write snapshots: the first is renamed over the file; each later one is
// written to the spare temporary and exchanged with the file
// (renameat2 RENAME_EXCHANGE), which leaves the previous snapshot at the
// spare's name, to be written next and removed by Close. Once OpenTarget
// and AllowUser returned, writing and Close make no system call but
// flock, ftruncate, lseek, write, fstat, fsync, close, and renameat,
// renameat2 and unlinkat in Dir.
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
// A Target's methods may be called from several goroutines: snapshots are
// written one at a time.
type Target struct {
	path string   // as given, for messages
	dir  *os.File // the directory that holds the file
	name string   // the file's name in dir, symlinks resolved

	mu        sync.Mutex // held while a snapshot is written and renamed
	old       *os.File   // the file as it was, locked until replaced; nil if none
	files     [2]*os.File
	names     [2]string // files' names in dir; after the first commit both the spare's, where only files[next] is
	next      int       // the index in files of the one to write next
	committed bool      // a snapshot was renamed over name
}

// OpenTarget resolves path (a symlink to the file it names), locks the
// file there if there is one (refusing one another process holds
// locked, with ErrInUse), removes the temporaries dead writers left
// beside it and creates the Target's own. It changes nothing at path.
// No file at path is not an error: the first commit creates it.
func OpenTarget(path string) (_ *Target, err error) {
	real := path
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		// The snapshot replaces the file the link names, not the link.
		if real, err = filepath.EvalSymlinks(path); err != nil {
			return nil, &TargetError{Path: path, Op: "resolve symlink", Err: err}
		}
	}
	t := &Target{path: path, name: filepath.Base(real)}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	if t.dir, err = os.Open(filepath.Dir(real)); err != nil {
		return nil, &TargetError{Path: path, Op: "its directory", Err: err}
	}
	if fi, err := os.Stat(real); err == nil && !fi.Mode().IsRegular() {
		// Not opened: opening a device may act on it (a tape rewinds).
		return nil, &TargetError{Path: path, Op: "open", Err: fmt.Errorf("%w (%s)", ErrNotRegular, filekind.Of(fi.Mode()))}
	}
	// Non-blocking: what became a FIFO since the Stat is not waited on.
	old, err := os.OpenFile(real, os.O_RDONLY|unix.O_NONBLOCK, 0)
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
	case !errors.Is(err, fs.ErrNotExist):
		return nil, &TargetError{Path: path, Op: "open", Err: err}
	}
	t.removeStale()
	pattern := "." + t.name + "." + strconv.Itoa(os.Getpid()) + ".*.tmp"
	for i := range t.files {
		if t.files[i], t.names[i], err = t.createTemp(pattern); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// afterCreate, when set, runs between a temporary's creation and its lock
// (for tests).
var afterCreate func(name string)

// createTemp creates a temporary in t.dir and locks it exclusive. In the
// moment before the lock, another writer's removeStale may take it for a
// dead writer's (one in a PID namespace where this process's PID does
// not exist) and remove it: it is then made again.
func (t *Target) createTemp(pattern string) (*os.File, string, error) {
	for try := 1; ; try++ {
		f, err := os.CreateTemp(t.dir.Name(), pattern)
		if err != nil {
			return nil, "", &TargetError{Path: t.path, Op: "create temporary", Err: err}
		}
		name := filepath.Base(f.Name())
		if afterCreate != nil {
			afterCreate(name)
		}
		err = lockFile(f, unix.LOCK_EX)
		if err == nil {
			var st, now unix.Stat_t
			if err = unix.Fstat(int(f.Fd()), &st); err == nil {
				err = unix.Fstatat(int(t.dir.Fd()), name, &now, unix.AT_SYMLINK_NOFOLLOW)
			}
			if err == nil && st.Dev == now.Dev && st.Ino == now.Ino {
				return f, name, nil
			}
		}
		f.Close()
		if err != nil && !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.ENOENT) || try == 3 {
			if err == nil {
				err = fmt.Errorf("%s was replaced", name)
			}
			return nil, "", &TargetError{Path: t.path, Op: "create temporary " + filepath.Join(t.dir.Name(), name), Err: err}
		}
	}
}

// inUse is the error for f, which flock refused with err: ErrInUse,
// naming the holder, when another process holds a lock.
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
	if _, err := t.dir.Seek(0, io.SeekStart); err != nil {
		return
	}
	names, err := t.dir.Readdirnames(-1)
	if err != nil {
		return
	}
	dir := int(t.dir.Fd())
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

// Path returns the path the Target was opened with.
func (t *Target) Path() string { return t.path }

// Dir returns the directory that holds the file (the symlink's target's,
// for a symlink), in which commits rename and Close removes: a seccomp
// filter must allow renameat, renameat2 and unlinkat in it. It belongs
// to t, which closes it.
func (t *Target) Dir() *os.File { return t.dir }

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
	if err := unix.Fstat(int(t.dir.Fd()), &st); err != nil {
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
			Err: fmt.Errorf("uid %d %w %s", uid, ErrDirPermission, t.dir.Name())}
	}
	return nil
}

// prepare returns the temporary to write the next snapshot to, locked
// exclusive and empty. t.mu is held.
func (t *Target) prepare() (*os.File, error) {
	if t.dir == nil {
		return nil, &TargetError{Path: t.path, Op: "write", Err: os.ErrClosed}
	}
	f := t.files[t.next]
	// A temporary that was once the file may be mapped by a machine
	// restored from it: it is written only once no such machine holds it.
	if err := lockFile(f, unix.LOCK_EX); err != nil {
		// The failed conversion dropped the shared lock: take it again,
		// so that the spare stays marked as a live writer's.
		_ = lockFile(f, unix.LOCK_SH)
		// No holder named: this may run under a seccomp filter, which
		// forbids reading /proc/locks.
		spare := filepath.Join(t.dir.Name(), t.names[t.next])
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

// commit syncs the written temporary and renames it over the file. t.mu
// is held.
func (t *Target) commit() error {
	f := t.files[t.next]
	if err := f.Sync(); err != nil {
		return &TargetError{Path: t.path, Op: "commit", Err: err}
	}
	dir := int(t.dir.Fd())
	if !t.committed {
		if err := unix.Renameat(dir, t.names[t.next], dir, t.name); err != nil {
			return &TargetError{Path: t.path, Op: "commit", Err: fmt.Errorf("rename %s over %s: %w", t.names[t.next], t.name, err)}
		}
		if t.old != nil {
			t.old.Close() // the old file is gone: its lock with it
			t.old = nil
		}
		t.committed = true
		// files[1] stays at names[1]: the spare from now on.
		t.names[0] = t.names[1]
	} else if err := unix.Renameat2(dir, t.names[1], dir, t.name, unix.RENAME_EXCHANGE); err != nil {
		return &TargetError{Path: t.path, Op: "commit", Err: fmt.Errorf("exchange %s with %s: %w", t.names[1], t.name, err)}
	}
	_ = t.dir.Sync() // the rename itself, durable
	// Complete: machines may restore from it (shared), and it stays
	// marked as this writer's when it moves to the spare's name.
	_ = unix.Flock(int(f.Fd()), unix.LOCK_SH)
	t.next = 1 - t.next
	return nil
}

// Write writes a snapshot through fn and commits it when fn returns nil;
// otherwise the file keeps what it held and fn's error is returned. The
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
// when its guest is ready (vmm.Config.SnapshotOnReady, then OnSnapshot
// calls Finish). Its first Write, Seek or Stat takes the Target (until
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
// the temporary is synced and renamed over the file. It returns err, the
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
	w.f = nil
	if err != nil {
		return err
	}
	return w.t.commit()
}

// Close removes the temporaries left and releases the files and their
// locks; it reports whether a snapshot was committed. It waits for a
// snapshot being written to finish. Close of a closed Target does
// nothing.
func (t *Target) Close() (committed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dir != nil {
		dir := int(t.dir.Fd())
		for i, f := range t.files {
			// Before a commit each temporary is at its own name;
			// after, only the spare (the next to write) is.
			if f != nil && (!t.committed || i == t.next) {
				_ = unix.Unlinkat(dir, t.names[i], 0)
			}
		}
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
	if t.dir != nil {
		t.dir.Close()
		t.dir = nil
	}
	return t.committed
}
