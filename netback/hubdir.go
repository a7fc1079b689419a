package netback

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// HubDir is the default runtime directory of shared networks, where
// HubSocket puts their sockets: /run/smolvmm/net for root, else
// $XDG_RUNTIME_DIR/smolvmm/net, or, without XDG_RUNTIME_DIR,
// /tmp/smolvmm-UID/net.
func HubDir() string {
	if os.Geteuid() == 0 {
		return "/run/smolvmm/net"
	}
	if rt := os.Getenv("XDG_RUNTIME_DIR"); rt != "" && filepath.IsAbs(rt) {
		return filepath.Join(rt, "smolvmm", "net")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("smolvmm-%d", os.Geteuid()), "net")
}

// prepareSocketDir makes sure a hub can listen in dir: the default
// runtime directory is made ready (prepareRuntimeDir); any other must
// exist, and is left as it is (it is the user's: creating a mistyped path
// would hide the mistake).
func prepareSocketDir(dir string, gid int) error {
	if filepath.Clean(dir) == HubDir() {
		return prepareRuntimeDir(dir, gid)
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

// prepareRuntimeDir creates dir and its parent if missing, and gives both
// mode 0700, or 0750 and group gid when gid > 0, so that what a previous
// start set does not linger. Either one owned by another user is refused:
// under /tmp anybody could have made it first.
func prepareRuntimeDir(dir string, gid int) error {
	mode := os.FileMode(0o700)
	if gid > 0 {
		mode = 0o750
	}
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Mkdir(d, mode); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("shared network: runtime directory: %w", err)
		}
		st, err := os.Lstat(d)
		if err != nil {
			return fmt.Errorf("shared network: runtime directory: %w", err)
		}
		if !st.IsDir() {
			return fmt.Errorf("shared network: runtime directory %s is not a directory", d)
		}
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Geteuid() {
			return fmt.Errorf("shared network: runtime directory %s belongs to uid %d, not to this user (uid %d): remove it", d, sys.Uid, os.Geteuid())
		}
		if err := setAccess(d, mode, gid); err != nil {
			return fmt.Errorf("shared network: runtime directory: %w", err)
		}
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
