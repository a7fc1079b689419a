package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/sandbox"
)

// rejoinObstacle returns what would keep the VMM's broker, which runs as
// creds (nil: as this process), from reaching socket again after the
// network's daemon restarts ("" when the modes show nothing): a directory
// on its path that uid and gid (the supplementary groups are dropped with
// the user) may not search, or a socket they may not write (connect needs
// both). It reads modes only; root, which they do not bind, passes. The
// broker is outside --chroot: the host's paths are the ones it walks.
func rejoinObstacle(socket string, creds *sandbox.Credentials) string {
	if creds == nil || creds.UID == 0 {
		return ""
	}
	seen := socket
	if abs, err := filepath.Abs(socket); err == nil {
		seen = abs
	}
	// Each directory from the root down, then the socket.
	var dirs []string
	for d := filepath.Dir(seen); ; d = filepath.Dir(d) {
		dirs = append([]string{d}, dirs...)
		if d == filepath.Dir(d) {
			break
		}
	}
	for _, d := range dirs {
		st, err := statOwner(d)
		if err != nil {
			return err.Error()
		}
		if !mayAccess(st, creds, 0o1) {
			return fmt.Sprintf("uid %d gid %d may not search %s (mode %04o, owner uid %d gid %d)", creds.UID, creds.GID, d, st.Mode&0o7777, st.Uid, st.Gid)
		}
	}
	st, err := statOwner(seen)
	if err != nil {
		return err.Error()
	}
	if !mayAccess(st, creds, 0o2) {
		return fmt.Sprintf("uid %d gid %d may not connect to %s (mode %04o, owner uid %d gid %d)", creds.UID, creds.GID, seen, st.Mode&0o7777, st.Uid, st.Gid)
	}
	return ""
}

// statOwner stats path, following links.
func statOwner(path string) (*syscall.Stat_t, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return &st, nil
}

// mayAccess reports whether creds may do what bits (0o1 search or
// execute, 0o2 write, 0o4 read) says to a file of st, as the kernel
// decides for a process with no supplementary groups: the owner's bits
// for its owner, the group's for its group, the others' for the rest.
func mayAccess(st *syscall.Stat_t, creds *sandbox.Credentials, bits uint32) bool {
	perm := st.Mode & 0o7
	switch {
	case int(st.Uid) == creds.UID:
		perm = st.Mode >> 6 & 0o7
	case int(st.Gid) == creds.GID:
		perm = st.Mode >> 3 & 0o7
	}
	return perm&bits == bits
}

// checkRejoin warns, once on standard error, when the VMM's broker (as
// --user or --uid leave it; --chroot does not apply to it) could not
// rejoin the shared network nc
// joins after its daemon restarts. It is no error: the VM is on the
// network until then.
func checkRejoin(c *cli.Context, nc *netConfig) {
	kind, arg, _ := strings.Cut(nc.Spec, ":")
	if kind != "user" || arg == "" {
		return
	}
	creds, err := dropTo(c)
	if err != nil {
		return // refused elsewhere, with the flag's own words
	}
	if creds == nil {
		return
	}
	socket, err := netback.ResolveHub(arg)
	if err != nil {
		return
	}
	// The broker (broker.go) rejoins for the VMM, as its user but
	// outside --chroot: the chroot hides nothing from it.
	why := rejoinObstacle(socket, creds)
	if why == "" {
		return
	}
	const advice = " (smolvmm net --group GROUP lets the users of GROUP connect)"
	fmt.Fprintf(os.Stderr, "smolvmm %s: warning: --net %s: the VM could not rejoin this network after its daemon restarts: %s; it would stay offline from then on%s\n", c.Command.Name, nc.Spec, why, advice)
}

// stderrNotef is the notices of a shared network lost, failing to be
// rejoined for good and rejoined, without -v: a line each on standard
// error, ended for a terminal the console may have made raw.
func stderrNotef() func(format string, args ...any) {
	eol := "\n"
	if term.IsTerminal(int(os.Stderr.Fd())) {
		eol = "\r\n"
	}
	return func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "smolvmm: "+format+eol, args...)
	}
}
