package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/sandbox"
)

// rejoinCheck is what attachNIC learns, before the VMM drops its user
// (--user, --uid) or changes its root (--chroot), of whether it could
// reach its shared network's socket again after the network's daemon
// restarts: the VM works until then, but would stay offline after.
type rejoinCheck struct {
	// why is the obstacle, "" when the modes and paths show none.
	why string
	// hidden: the socket's path does not exist under the new root, so a
	// rejoin's ENOENT will last (not a daemon restarting).
	hidden bool
}

// rejoinObstacle checks socket for a VMM that will run as creds (nil:
// it stays as it is) with root directory chroot ("": unchanged): that the
// path exists from that root, that every directory on it (from that root
// down, the root directory itself included) may be searched
// and the socket written (connect needs both) by that uid and gid (the
// supplementary groups are dropped with the user). It reads modes only;
// root, which they do not bind, passes.
func rejoinObstacle(socket string, creds *sandbox.Credentials, chroot string) rejoinCheck {
	seen, top := socket, "/"
	if chroot != "" {
		// Under the new root the working directory is its top, and ".."
		// there stays there.
		top = chroot
		if abs, err := filepath.Abs(chroot); err == nil {
			top = abs
		}
		seen = filepath.Join(top, filepath.Clean("/"+socket))
	} else if abs, err := filepath.Abs(socket); err == nil {
		seen = abs
	}
	if chroot != "" {
		if _, err := os.Stat(seen); err != nil {
			return rejoinCheck{why: fmt.Sprintf("with --chroot %s as its root it will see no %s (%s does not exist)", chroot, socket, seen), hidden: true}
		}
	}
	if creds == nil || creds.UID == 0 {
		return rejoinCheck{}
	}
	// Each directory from the root down, then the socket. Under a chroot
	// the root is the chroot directory (whose own mode still matters):
	// the VMM chroots while still root, and never passes the directories
	// above it again.
	var dirs []string
	for d := filepath.Dir(seen); ; d = filepath.Dir(d) {
		dirs = append([]string{d}, dirs...)
		if d == top || d == filepath.Dir(d) {
			break
		}
	}
	for _, d := range dirs {
		st, err := statOwner(d)
		if err != nil {
			return rejoinCheck{why: err.Error()}
		}
		if mayAccess(st, creds, 0o1) {
			continue
		}
		return rejoinCheck{why: fmt.Sprintf("uid %d gid %d may not search %s (mode %04o, owner uid %d gid %d)", creds.UID, creds.GID, d, st.Mode&0o7777, st.Uid, st.Gid)}
	}
	st, err := statOwner(seen)
	if err != nil {
		return rejoinCheck{why: err.Error()}
	}
	if !mayAccess(st, creds, 0o2) {
		return rejoinCheck{why: fmt.Sprintf("uid %d gid %d may not connect to %s (mode %04o, owner uid %d gid %d)", creds.UID, creds.GID, seen, st.Mode&0o7777, st.Uid, st.Gid)}
	}
	return rejoinCheck{}
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

// checkRejoin warns, once on standard error, when the VMM (as --user or
// --uid and --chroot leave it) could not rejoin the shared network nc
// joins after its daemon restarts, and tells nc which rejoin failures
// will last. It is no error: the VM is on the network until then.
func checkRejoin(c *cli.Context, nc *netConfig) {
	kind, arg, _ := strings.Cut(nc.Spec, ":")
	if kind != "user" || arg == "" {
		return
	}
	creds, err := dropTo(c)
	if err != nil {
		return // refused elsewhere, with the flag's own words
	}
	chroot := ""
	if hasFlag(c, "chroot") {
		chroot = c.String("chroot")
	}
	if creds == nil && chroot == "" {
		return
	}
	socket, err := netback.ResolveHub(arg)
	if err != nil {
		return
	}
	rc := rejoinObstacle(socket, creds, chroot)
	if rc.why == "" {
		return
	}
	advice := ""
	if rc.hidden {
		nc.Lasting = func(err error) bool { return errors.Is(err, syscall.ENOENT) }
	} else {
		user := ""
		if hasFlag(c, "user") {
			user = c.String("user")
		}
		advice = rejoinAdvice(user, creds)
	}
	warnf(os.Stderr, commandSaid(c), "--net %s: the VM could not rejoin this network after its daemon restarts: %s; it would stay offline from then on%s", nc.Spec, rc.why, advice)
}

// rejoinAdvice is the warning's advice for a VMM that will run as creds
// (given by --user user, or by --uid and --gid when user is ""): the VMM
// drops every supplementary group, so a network's --group lets it in only
// as its primary group.
func rejoinAdvice(user string, creds *sandbox.Credentials) string {
	switch {
	case creds == nil:
		return ""
	case user != "":
		return fmt.Sprintf(" (--user drops %s's supplementary groups: smolvmm net --group %d, its primary group, lets it connect; or run it as --uid %d --gid GID, GID the socket's group)", user, creds.GID, creds.UID)
	}
	return fmt.Sprintf(" (the VMM keeps only --gid's group: smolvmm net --group %d lets it connect; or give --gid the socket's group)", creds.GID)
}

// stderrNotef is the notices of a shared network lost, failing to be
// rejoined for good and rejoined, without -v: a line each on standard
// error, ended for a terminal the console may have made raw, and
// escaped (noticeLine): a line may carry a hub's words.
func stderrNotef() func(format string, args ...any) {
	eol := "\n"
	// Descriptor 2 itself: os.Stderr.Fd() would do too (Go's Fd changes
	// no flags of a standard descriptor, which the filter refuses with
	// F_SETFL), but needs no such reasoning.
	if term.IsTerminal(unix.Stderr) {
		eol = "\r\n"
	}
	return func(format string, args ...any) {
		fmt.Fprint(stderrOut, noticeLine("", "", fmt.Sprintf(format, args...))+eol) // stdout.go: its EPIPE recorded
	}
}
