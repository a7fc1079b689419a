package netback

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/internal/filekind"
	"github.com/smolvmm/smolvmm/internal/lockholder"
)

// HubDir is the default runtime directory of shared networks, where
// HubSocket puts their sockets: /run/smolvmm/net for root, else
// $XDG_RUNTIME_DIR/smolvmm/net, or, without XDG_RUNTIME_DIR,
// /tmp/smolvmm-UID/net.
func HubDir() string {
	if os.Geteuid() == 0 {
		return rootHubDir
	}
	if rt := os.Getenv("XDG_RUNTIME_DIR"); rt != "" && filepath.IsAbs(rt) {
		return filepath.Join(rt, "smolvmm", "net")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("smolvmm-%d", os.Geteuid()), "net")
}

// RootHubDir is root's HubDir, where the networks root starts listen,
// whoever asks.
func RootHubDir() string { return rootHubDir }

// rootHubDir is root's HubDir; a variable for the tests.
var rootHubDir = "/run/smolvmm/net"

// prepareSocketDir makes sure a hub can listen in dir: the default
// runtime directory is made ready (prepareRuntimeDir); any other must
// exist, and is left as it is (it is the user's: creating a mistyped path
// would hide the mistake).
func prepareSocketDir(dir string) error {
	if filepath.Clean(dir) == HubDir() {
		return prepareRuntimeDir(dir)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("shared network: socket directory: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("shared network: socket directory %s is not a directory", dir)
	}
	return nil
}

// runtimeDirMode is the access of the default runtime directory and its
// parent: every network of this user has its socket and lease file in
// them, each network with a group of its own (or none), so the
// directories let anybody through (not list them, nor write in them) and
// each socket (setSocketAccess) and lease file (0600) says who may use
// it.
const runtimeDirMode = 0o711

// ErrRuntimeDirForeign is the error of a default runtime directory (or
// its parent) that another user owns, or of another user's symlink or
// other file at its path: under /tmp anybody may make /tmp/smolvmm-UID
// before its user does, and only its owner or root may remove it from
// there.
var ErrRuntimeDirForeign = errors.New("runtime directory is another user's")

// prepareRuntimeDir creates dir and its parent if missing, mode
// runtimeDirMode. Existing ones are not narrowed, as another network may
// have its group's VMs going through them: they gain runtimeDirMode's
// bits and lose only write access of group and others, which would let
// those replace any network's socket or leases. Either one owned by
// another user, a directory or a symlink or other file at its path, is
// refused (ErrRuntimeDirForeign): under /tmp anybody could have made it
// first. One of this user's that is no directory is refused too.
func prepareRuntimeDir(dir string) error {
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Mkdir(d, runtimeDirMode); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("shared network: runtime directory: %w", err)
		}
		st, err := os.Lstat(d)
		if err != nil {
			return fmt.Errorf("shared network: runtime directory: %w", err)
		}
		// The owner first: a symlink or other file another user put
		// there first is theirs to remove as much as a directory.
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Geteuid() {
			what := ""
			if !st.IsDir() {
				what = fmt.Sprintf(" is %s, not a directory, and", filekind.Of(st.Mode()))
			}
			return fmt.Errorf("shared network: %w: %s%s belongs to uid %d, not to this user (uid %d)", ErrRuntimeDirForeign, d, what, sys.Uid, os.Geteuid())
		}
		if !st.IsDir() {
			return fmt.Errorf("shared network: runtime directory %s is not a directory", d)
		}
		// The umask may have taken bits off a new one.
		if mode := (st.Mode().Perm() | runtimeDirMode) &^ 0o022; mode != st.Mode().Perm() {
			if err := os.Chmod(d, mode); err != nil {
				return fmt.Errorf("shared network: runtime directory: %w", err)
			}
		}
	}
	return nil
}

// socketLockWait bounds lockSocket's wait for another hub's start on
// the same socket, which holds the lock for milliseconds: one holding it
// longer is stopped or hung.
const socketLockWait = 5 * time.Second

// socketLock is the lock file of a hub's socket: the socket's path with
// ".lock" appended, mode 0600, kept (removing it would let two hubs lock
// two files of one name).
func socketLock(socket string) string { return socket + ".lock" }

// heldStarts are the sockets whose lock (lockSocket) this process holds
// through HoldHubStart, by their cleaned path: a flock is the open file's,
// so NewHub's own would wait for this very process.
var heldStarts struct {
	sync.Mutex
	sockets map[string]bool
}

// HoldHubStart takes the lock that a hub holds while it starts on socket
// (NewHub holds it until it listens), for a caller that is about to start
// one there but has work to do first: from now on, a VM that finds
// nothing answering on socket waits for the hub, for up to a few seconds
// (Join), rather than fail. NewHub in this process uses the held lock, so
// call release once NewHub has returned. The socket's directory is made
// ready first, as NewHub does (the default runtime directory is made).
// Errors: those of NewHub's start, before it listens.
func HoldHubStart(socket string) (release func(), err error) {
	if socket == "" {
		return nil, fmt.Errorf("shared network: no socket path")
	}
	if err := prepareSocketDir(filepath.Dir(socket)); err != nil {
		return nil, err
	}
	key := filepath.Clean(socket)
	heldStarts.Lock()
	held := heldStarts.sockets[key]
	heldStarts.Unlock()
	if held {
		return nil, fmt.Errorf("shared network: listen on %s: its start is held already by this process", socket)
	}
	unlock, err := takeSocketLock(socket)
	if err != nil {
		return nil, err
	}
	heldStarts.Lock()
	if heldStarts.sockets == nil {
		heldStarts.sockets = map[string]bool{}
	}
	heldStarts.sockets[key] = true
	heldStarts.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			heldStarts.Lock()
			delete(heldStarts.sockets, key)
			heldStarts.Unlock()
			unlock()
		})
	}, nil
}

// lockSocket is takeSocketLock, but for a socket whose lock this process
// holds already (HoldHubStart): that lock is used, and the returned
// unlock leaves it to its holder.
func lockSocket(socket string) (unlock func(), err error) {
	heldStarts.Lock()
	held := heldStarts.sockets[filepath.Clean(socket)]
	heldStarts.Unlock()
	if held {
		return func() {}, nil
	}
	return takeSocketLock(socket)
}

// takeSocketLock takes the exclusive lock (flock) of socket's lock file
// (socketLock), waiting at most socketLockWait, and returns what releases
// it. A hub holds it from its check of a socket file left at socket to
// having its own in place: else a hub starting meanwhile would find the
// file it checked gone or replaced, and remove the other hub's live
// socket as stale, leaving that hub running unreachable. A file of this
// user's, mode 0600, rather than the directory: flock needs only a
// descriptor, a read-only one too, so any user who may read the
// directory could have held it and kept the network from starting. One
// owned by another user, or that others may open, is refused: its owner
// could hold it.
func takeSocketLock(socket string) (unlock func(), err error) {
	path := socketLock(socket)
	const flags = unix.O_RDWR | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC
	made := true
	fd, err := unix.Open(path, flags|unix.O_CREAT|unix.O_EXCL, 0o600)
	if errors.Is(err, unix.EEXIST) {
		made = false
		fd, err = unix.Open(path, flags, 0)
	}
	if errors.Is(err, unix.ELOOP) {
		// O_NOFOLLOW's error would say only "too many levels of
		// symbolic links".
		return nil, fmt.Errorf("shared network: listen on %s: its lock %s is a symbolic link, which the network does not follow", socket, path)
	}
	if err != nil {
		return nil, fmt.Errorf("shared network: listen on %s: its lock: %w", socket, &os.PathError{Op: "open", Path: path, Err: err})
	}
	f := os.NewFile(uintptr(fd), path)
	if err := checkSocketLock(f, socket, made); err != nil {
		f.Close()
		return nil, err
	}
	deadline := time.Now().Add(socketLockWait)
	for {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("shared network: listen on %s: its lock: %w", socket, &os.PathError{Op: "flock", Path: path, Err: err})
		}
		if time.Now().After(deadline) {
			who := lockholder.Describe(f)
			if who == "" {
				who = "another process"
			}
			f.Close()
			return nil, fmt.Errorf("shared network: listen on %s: its lock %s has been held for %v by %s, which a network holds only while it starts: that one is stopped or hung", socket, path, socketLockWait, who)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkSocketLock refuses f, socket's lock file, unless it is a regular
// file that this process made (made) or of this user's, that no other
// user may open; group and others' bits left on one are taken off.
func checkSocketLock(f *os.File, socket string, made bool) error {
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("shared network: listen on %s: its lock: %w", socket, err)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	switch {
	case !st.Mode().IsRegular():
		return fmt.Errorf("shared network: listen on %s: its lock %s is not a regular file", socket, f.Name())
	case !made && ok && int(sys.Uid) != os.Geteuid():
		return fmt.Errorf("shared network: listen on %s: its lock %s belongs to uid %d, not to this user (uid %d), who could hold it and keep the network from starting", socket, f.Name(), sys.Uid, os.Geteuid())
	case st.Mode().Perm()&0o077 != 0:
		if err := f.Chmod(st.Mode().Perm() &^ 0o077); err != nil {
			return fmt.Errorf("shared network: listen on %s: its lock: %w", socket, err)
		}
	}
	return nil
}

// Bounds of a VM's wait for a hub that is starting (awaitHubStart).
const (
	// hubStartWait bounds the wait while the hub holds its socket's
	// lock, which a hub holds only while it starts (HoldHubStart,
	// NewHub): as long as another hub's start waits for it
	// (socketLockWait).
	hubStartWait = socketLockWait
	// hubStartGrace is how long a VM looks again for a hub starting
	// when none was found: a hub started just before the VM (smolvmm
	// net &, then smolvmm run) has not yet run as far as its lock
	// when the VM, as quick to start, finds nothing on the socket.
	hubStartGrace = 250 * time.Millisecond
	// hubStartPoll is how often the socket is dialled meanwhile.
	hubStartPoll = 10 * time.Millisecond
)

// hubStartWaitFor and hubStartGraceFor are hubStartWait and
// hubStartGrace, variables for the tests; hubStartSleep is awaitHubStart's
// wait between dials, which a test sees to know that a dial failed.
var (
	hubStartWaitFor  = hubStartWait
	hubStartGraceFor = hubStartGrace
	hubStartSleep    = time.Sleep
)

// hubStarting reports whether a hub is starting on socket: another
// process holds its lock (socketLock), which a hub holds only while it
// starts. A lock file this process may not open (another user's, mode
// 0600), or that is not a regular file, says no.
func hubStarting(socket string) bool {
	path := socketLock(socket)
	if st, err := os.Lstat(path); err != nil || !st.Mode().IsRegular() {
		return false
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	// A shared lock, let go at once: the starting hub's exclusive one
	// refuses it; another VM's look takes it too.
	return errors.Is(unix.Flock(fd, unix.LOCK_SH|unix.LOCK_NB), unix.EWOULDBLOCK)
}

// awaitHubStart is err, dial's error for socket, or, when that wraps
// ErrNoHub, the error of dial called again until it no longer does: at
// most for hubStartWaitFor while a hub is starting on socket
// (hubStarting), and for hubStartGraceFor while none is. A hub started
// together with the VM (smolvmm net & smolvmm run) is joined so, while a
// socket nobody is starting on still fails within the grace.
func awaitHubStart(socket string, err error, dial func() error) error {
	start := time.Now()
	for errors.Is(err, ErrNoHub) {
		starting := hubStarting(socket)
		since := time.Since(start)
		if !starting && since >= hubStartGraceFor {
			// Once more: the hub may have come up, and let go of its
			// lock, since the last dial.
			return dial()
		}
		if starting && since >= hubStartWaitFor {
			return err
		}
		hubStartSleep(hubStartPoll)
		err = dial()
	}
	return err
}

// listenSocket listens on socket, whose access (setSocketAccess) is set
// before anybody can connect: bound where the umask decides its mode, in
// a directory of its own next to it (mode 0700), given its mode and group
// there, then linked into place, never over another file (a hub started
// meanwhile keeps its socket: rename would have replaced it, leaving that
// hub running unreachable). Only a path too long for that is bound in
// place, its access set just after. bound, if not nil, is told the path
// bound at, before its access is set. The listener does not remove the
// socket file when closed; file is the socket file, for removeSocket.
func listenSocket(socket string, gid int, bound func(string)) (ln *net.UnixListener, file os.FileInfo, err error) {
	if err := checkGroup(gid); err != nil {
		return nil, nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(socket), ".s")
	if err != nil {
		return nil, nil, fmt.Errorf("shared network: listen on %s: %w", socket, err)
	}
	defer os.Remove(tmp)
	path := filepath.Join(tmp, "s")
	if len(path) > MaxSocketPath {
		path = socket
	}
	ln, err = net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, nil, fmt.Errorf("shared network: listen on %s: %w", socket, err)
	}
	ln.SetUnlinkOnClose(false)
	if bound != nil {
		bound(path)
	}
	fail := func(err error) (*net.UnixListener, os.FileInfo, error) {
		_ = ln.Close()
		_ = os.Remove(path)
		return nil, nil, err
	}
	if err := setSocketAccess(path, gid); err != nil {
		return fail(err)
	}
	// Taken where nobody else may replace it, for removeSocket.
	if file, err = os.Lstat(path); err != nil {
		return fail(fmt.Errorf("shared network: listen on %s: %w", socket, err))
	}
	if path != socket {
		err := os.Link(path, socket)
		if errors.Is(err, os.ErrExist) {
			if probeSocket(socket) == nil {
				err = ErrHubRunning
			}
			return fail(fmt.Errorf("shared network: listen on %s: made while this hub started: %w", socket, err))
		}
		if err != nil {
			return fail(fmt.Errorf("shared network: listen on %s: %w", socket, err))
		}
		_ = os.Remove(path)
	}
	return ln, file, nil
}

// removeSocket removes socket if it is still file, the socket file a hub
// made: once removed, another hub may have put its own there.
func removeSocket(socket string, file os.FileInfo) error {
	st, err := os.Lstat(socket)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("shared network: %w", err)
	}
	if !os.SameFile(st, file) {
		return nil
	}
	if err := os.Remove(socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("shared network: %w", err)
	}
	return nil
}

// maxGroup is the largest group id a file can have: lchown(2) takes
// 4294967295 as "unchanged" and cuts larger ids to 32 bits, so either
// would leave the socket, mode 0660, to another group (root's included).
// An int64, so that it compiles where int is 32 bits (where no int
// exceeds it).
const maxGroup int64 = 1<<32 - 2

// checkGroup refuses a HubConfig.Group no socket can be given: 0 and
// below are none, and 1 to maxGroup a group.
func checkGroup(gid int) error {
	if int64(gid) > maxGroup {
		return fmt.Errorf("shared network: Group %d is out of range: group ids go up to %d (0 for none)", gid, maxGroup)
	}
	return nil
}

// setSocketAccess gives the socket mode 0600, or 0660 and group gid.
func setSocketAccess(socket string, gid int) error {
	mode := os.FileMode(0o600)
	if gid > 0 {
		mode = 0o660
	}
	if err := setAccess(socket, mode, gid); err != nil {
		return fmt.Errorf("shared network: socket: %w", err)
	}
	return nil
}

// setAccess sets path's group (when gid > 0) and mode; the group first,
// so that the group never has access to a path of another group.
func setAccess(path string, mode os.FileMode, gid int) error {
	if gid > 0 {
		if err := os.Lchown(path, -1, gid); err != nil {
			return err
		}
	}
	return os.Chmod(path, mode)
}
