package netback

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
)

// ErrForeignHub is matched by every *ForeignHubError.
var ErrForeignHub = errors.New("shared network is another user's")

// ForeignHubError is a shared network in this user's runtime directory
// (HubDir), where a network's name leads, that is neither this user's
// nor root's: that directory or its parent belongs to another user (under
// /tmp, without XDG_RUNTIME_DIR, anybody may make /tmp/smolvmm-UID
// first), or the process listening on the socket runs as another user.
// A VM that joined it would give that user its traffic, its address and
// its port forwards. Nothing is sent to such a network.
type ForeignHubError struct {
	// Socket is the socket that was to be joined.
	Socket string
	// Path is what belongs to UID: a directory, or Socket itself when UID
	// is the user of the process listening on it.
	Path string
	// UID is Path's owner; Self this process's effective user.
	UID, Self int
}

// Error names the socket, what is another user's, and both users.
func (e *ForeignHubError) Error() string {
	if e.Path == e.Socket {
		return fmt.Sprintf("shared network %s: %v: the process listening on it runs as uid %d, neither this process's user (uid %d) nor root", e.Socket, ErrForeignHub, e.UID, e.Self)
	}
	return fmt.Sprintf("shared network %s: %v: its directory %s belongs to uid %d, neither this process's user (uid %d) nor root", e.Socket, ErrForeignHub, e.Path, e.UID, e.Self)
}

// Is makes errors.Is(err, ErrForeignHub) true.
func (e *ForeignHubError) Is(target error) bool { return target == ErrForeignHub }

// hubPeerUID is connPeerUID, a variable for the tests: a process cannot
// make its own connections carry another user's credentials.
var hubPeerUID = connPeerUID

// inHubDir reports whether socket is in hubDir, where the names of
// networks lead (HubSocket). Only there is whose network it is checked:
// a socket given by its path is the caller's choice, another user's too
// (a network shared with a group).
func inHubDir(socket, hubDir string) bool {
	return filepath.Dir(filepath.Clean(socket)) == filepath.Clean(hubDir)
}

// checkHubDir refuses (*ForeignHubError) socket when it is in hubDir and
// that directory, or its parent, belongs to neither euid nor root, or is
// not a directory (a symbolic link would lead anywhere). A directory
// missing is let through: the dial finds nothing there (ErrNoHub).
func checkHubDir(socket, hubDir string, euid int) error {
	if !inHubDir(socket, hubDir) {
		return nil
	}
	dir := filepath.Clean(hubDir)
	for _, d := range []string{filepath.Dir(dir), dir} {
		st, err := os.Lstat(d)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("shared network %s: %w", socket, err)
		}
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != euid && sys.Uid != 0 {
			return &ForeignHubError{Socket: socket, Path: d, UID: int(sys.Uid), Self: euid}
		}
		if !st.IsDir() {
			return fmt.Errorf("shared network %s: %s is not a directory (%v)", socket, d, st.Mode().Type())
		}
	}
	return nil
}

// checkHubPeer refuses (*ForeignHubError) a network on socket whose
// listening process runs as peer, neither euid nor root.
func checkHubPeer(socket string, peer, euid int) error {
	if peer != euid && peer != 0 {
		return &ForeignHubError{Socket: socket, Path: socket, UID: peer, Self: euid}
	}
	return nil
}

// checkHubConn refuses c, a connection to socket, when socket is in this
// user's HubDir and the process listening on it runs as neither this
// user nor root (SO_PEERCRED; one whose user cannot be read is refused
// too).
func checkHubConn(socket string, c net.Conn) error {
	if !inHubDir(socket, HubDir()) {
		return nil
	}
	uid, err := hubPeerUID(c)
	if err != nil {
		return fmt.Errorf("shared network %s: the user of the process listening on it: %w", socket, err)
	}
	return checkHubPeer(socket, uid, os.Geteuid())
}
