package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"unsafe"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/sandbox"
	"github.com/smolvmm/smolvmm/snapshot"
	"github.com/smolvmm/smolvmm/vmm"
)

// maxID is sandbox.MaxID as a 64-bit number: the untyped constant
// overflows a 32-bit int, in which a 386 build holds flag values.
const maxID int64 = sandbox.MaxID

// containFlags are the run flags that contain the VMM once its VM is set
// up (package sandbox).
func containFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "no-seccomp", Usage: "do not install the seccomp filter that limits the running VMM to the system calls it needs (for debugging; a refused call names itself)"},
		&cli.StringFlag{Name: "user", Usage: "when started as root: open /dev/kvm, the images and the network, then run as `USER` with no groups and no capabilities"},
		&cli.IntFlag{Name: "uid", Value: -1, DefaultText: "none", Usage: "as --user, by `UID` (with --gid)"},
		&cli.IntFlag{Name: "gid", Value: -1, DefaultText: "none", Usage: "the `GID` for --uid"},
		&cli.StringFlag{Name: "chroot", Usage: "when started as root: once everything is open, make the empty directory `DIR` (root's, writable by root only) the VMM's root"},
		&cli.BoolFlag{Name: "jail", Usage: "when started as root: run the VMM in new mount, PID, IPC and UTS namespaces, and in a network namespace of its own " +
			"with --net none, user:NAME (reached by its socket) or tap:NAME (the tap is opened first, in the host's); --net user needs the host's network for its NAT, so there it keeps the host's"},
	}
}

// checkContainFlags refuses contradictory containment flags and an
// unknown --user (exit 2), with the other run flags, before any work.
func checkContainFlags(c *cli.Context) error {
	if !hasFlag(c, "no-seccomp") {
		return nil
	}
	// Given or not is what was typed: the flags' default, -1, is also a
	// value the user can type, and a typed -1 left the VMM root's.
	uidSet, gidSet := c.IsSet("uid"), c.IsSet("gid")
	uid, gid := -1, -1
	if uidSet {
		uid = c.Int("uid")
	}
	if gidSet {
		gid = c.Int("gid")
	}
	switch {
	case c.String("user") != "" && (uidSet || gidSet):
		return usageErrorf("--user and --uid/--gid: give one of them")
	// Negative ids first: --uid -5 --gid 3 is not a missing --gid.
	case uidSet && uid < 0:
		return usageErrorf("--uid %d: ids are not negative; give a user id between 1 and %d", uid, maxID)
	case gidSet && gid < 0:
		return usageErrorf("--gid %d: ids are not negative; give a group id between 1 and %d", gid, maxID)
	// 4294967295 is the kernel's "unchanged" and larger ids are cut to
	// 32 bits: either could leave the VMM root's.
	case int64(uid) > maxID:
		return usageErrorf("--uid %d: ids go up to %d", uid, maxID)
	case int64(gid) > maxID:
		return usageErrorf("--gid %d: ids go up to %d", gid, maxID)
	case uidSet && !gidSet:
		return usageErrorf("--uid %d without --gid: --uid and --gid go together (or use --user USER)", uid)
	case gidSet && !uidSet:
		return usageErrorf("--gid %d without --uid: --uid and --gid go together (or use --user USER)", gid)
	case uid == 0 || c.String("user") == "root":
		return usageErrorf("--user/--uid: give a user other than root to run the VM as")
	case gid == 0:
		return usageErrorf("--gid 0: that is root's group, whose files the VMM could then read; give another group")
	}
	if os.Geteuid() != 0 && c.Bool("jail") {
		return usageErrorf("--jail needs smolvmm to be started as root (it runs as uid %d): creating mount and PID namespaces takes CAP_SYS_ADMIN", os.Geteuid())
	}
	if os.Geteuid() != 0 && (c.String("user") != "" || uid >= 0) {
		return usageErrorf("--user and --uid need smolvmm to be started as root (it runs as uid %d); started by another user, the VMM runs as that user, and drops any capabilities it was given before its guest runs", os.Geteuid())
	}
	if os.Geteuid() != 0 && c.String("chroot") != "" {
		return usageErrorf("--chroot needs smolvmm to be started as root (it runs as uid %d): changing the root directory takes CAP_SYS_CHROOT", os.Geteuid())
	}
	if u := c.String("user"); u != "" {
		cr, err := sandbox.LookupUser(u)
		if err != nil {
			return usageErrorf("%v", userFlagError(u, err))
		}
		if cr.UID == 0 {
			return usageErrorf("--user %s: that is root; give a user other than root to run the VM as", u)
		}
		if cr.GID == 0 {
			return usageErrorf("--user %s: its group is root's (gid 0), whose files the VMM could then read; give a user of another group, or --uid and --gid", u)
		}
	}
	if c.String("user") != "" || uid >= 0 {
		if missing := dropCapsMissing(effectiveCaps()); missing != "" {
			given, without := "--user "+c.String("user"), "--user"
			if c.String("user") == "" {
				given, without = fmt.Sprintf("--uid %d --gid %d", uid, gid), "--uid and --gid"
			}
			return usageErrorf("%s: changing the VMM's user takes CAP_SETUID and CAP_SETGID, and smolvmm was started as root without %s "+
				"(a service's CapabilityBoundingSet, a container's dropped capabilities); start it as root with %s, or without %s",
				given, missing, missing, without)
		}
	}
	// Checked before the VM is set up, and again when the VMM enters it.
	if dir := c.String("chroot"); dir != "" {
		if err := sandbox.CheckChrootDir(dir); err != nil {
			return fmt.Errorf("--chroot: %w", err)
		}
	}
	return nil
}

// effectiveCaps is the low word of the calling thread's effective
// capabilities (CAP_SETUID and CAP_SETGID are in it). Should capget fail,
// it says all are there: the drop, after the setup, then says what the
// kernel refused.
func effectiveCaps() uint32 {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return ^uint32(0)
	}
	return data[0].Effective
}

// dropCapsMissing names the capabilities that sandbox.DropPrivileges
// takes (setgroups and setresgid, CAP_SETGID; setresuid, CAP_SETUID)
// and effective, the low word of the effective set, lacks: "" when it
// has both. Root started without them (setpriv --bounding-set -setuid, a
// service's CapabilityBoundingSet) failed after the whole VM setup.
// CAP_SETPCAP is not among them: without it the bounding set is kept.
func dropCapsMissing(effective uint32) string {
	var missing []string
	if effective&(1<<unix.CAP_SETUID) == 0 {
		missing = append(missing, "CAP_SETUID")
	}
	if effective&(1<<unix.CAP_SETGID) == 0 {
		missing = append(missing, "CAP_SETGID")
	}
	return strings.Join(missing, " and ")
}

// nameJailed names the jailed VMM "smolvmm" on every thread, first
// thing: jail.go starts it as /proc/self/exe, which the kernel named
// "exe" (pgrep -x smolvmm, pidof and top missed it, and the kernel's
// log of a seccomp kill said exe). A name is no reason to fail a VM.
func nameJailed() {
	if _, ok := os.LookupEnv(jailEnv); ok {
		_ = sandbox.SetName("smolvmm")
	}
}

// userFlagError is sandbox.LookupUser's refusal of --user u, which
// names the user as "user u: ": the flag names it, once.
func userFlagError(u string, err error) error {
	msg, _ := strings.CutPrefix(err.Error(), "user "+u+": ")
	switch {
	case msg == "no such user":
		msg += " (give a user of this host's user database, or --uid and --gid)"
	case errors.Is(err, sandbox.ErrNoPasswdEntry):
		msg += " (give its group too, with --uid and --gid)"
	}
	return &fileError{"--user " + u + ": " + msg, err}
}

// dropTo returns the credentials --user or --uid/--gid give the running
// VMM, or nil when it keeps its own.
func dropTo(c *cli.Context) (*sandbox.Credentials, error) {
	switch {
	case hasFlag(c, "user") && c.String("user") != "":
		cr, err := sandbox.LookupUser(c.String("user"))
		if err != nil {
			return nil, userFlagError(c.String("user"), err)
		}
		if cr.UID == 0 {
			return nil, usageErrorf("--user %s: that is root; give a user other than root to run the VM as", c.String("user"))
		}
		return &cr, nil
	case hasFlag(c, "uid") && c.Int("uid") > 0:
		return &sandbox.Credentials{UID: c.Int("uid"), GID: c.Int("gid")}, nil
	}
	return nil, nil
}

// snapDirFD is the number the snapshot's directory had in the VMM
// before the broker took it over, for the test hook (testhook.go).
var snapDirFD = -1

// brokerStarted is brokerStart's outcome.
type brokerStarted struct {
	b   *broker
	err error
}

// testHookEnv names a test-only hook, compiled in only with the build tag
// smolvmm_testhook (the tests' build of smolvmm): after the VM is set up,
// on the vCPU thread when the guest prints its first byte (as a
// compromised device model would), the VMM attempts "open:PATH",
// "exec:PATH", "unlinkat:PATH" or "renameat:FROM:TO" (relative to the
// descriptor the snapshot's directory had, snapDirFD) or
// "connect:PATH" (a Unix socket), or "unappend" (clear standard error's
// O_APPEND, then write at its offset 0), and reports the outcome on
// stderr. It stands for code a guest took over. "snapshot-full" instead has the
// snapshot at ready fail as on a full file system (ENOSPC).
const testHookEnv = "SMOLVMM_TEST_AFTER_SETUP"

// contain makes cfg contain the VMM before its guest runs, as the flags
// say: chroot, then the user to run as, then the seccomp filter (unless
// --no-seccomp). term is the saved state of the console's terminal fd
// (nil off a terminal), restored if a refused call stops the process. What must be
// resolved by name (the user) is resolved now. snap is the run's
// --snapshot target, nil without one. With the filter, renaming snap's
// snapshots into place is the broker's (broker.go): the VMM's filter
// allows no rename or removal. A shared network's redial stays the
// VMM's: a broker per VM would cost more memory than the VM.
func contain(c *cli.Context, cfg *vmm.Config, snap *snapshot.Target, fd int, term *unix.Termios) error {
	creds, err := dropTo(c)
	if err != nil {
		return err
	}
	userNet := hasFlag(c, "net") && c.String("net") == "user"
	sharedNet := hasFlag(c, "net") && isSharedNet(c.String("net"))
	filter := sandbox.Filter{
		Ioctls: vmm.RunIoctls(),
		// The user network's NAT and forwards, and a ready port's probe
		// (on a shared network they are the hub's: no IP socket here).
		Sockets: cfg.ReadyAddr != "" || userNet,
		// A shared network's socket, dialled again when its hub
		// returns. Any Unix socket the VMM's user may reach is then
		// reachable (the filter cannot see the path), and any abstract
		// one of its network namespace: a broker that dialled for it
		// would more than double the VM's memory.
		UnixSockets: sharedNet,
		// Emptying a snapshot's temporary before it is written again;
		// the broker renames it into place.
		Truncate: snap != nil,
		// A snapshot sets a writable image's too recent time back
		// (futimens) so that its restore need not read the image. Only
		// a run with --snapshot snapshots; without the option the call
		// fails (EPERM), and the restore would read the image.
		SetFileTimes: snap != nil,
		Prefix:       "smolvmm: ",
		Advice:       noSeccompAdvice(userCommand(c)),
	}
	if term != nil {
		filter.Terminal = &sandbox.Terminal{FD: fd,
			Termios: unsafe.Slice((*byte)(unsafe.Pointer(term)), unsafe.Sizeof(*term))}
	}
	chroot, verbose := c.String("chroot"), c.Bool("verbose")
	// Jailed on a shared network, the VMM has a network namespace of its
	// own unless a ready port is probed on the host's loopback (jail.go).
	readyPort := hasFlag(c, "ready-port") && c.Int("ready-port") != 0
	hostAbstract := sharedNet && (!jailed || readyPort)
	var prepared *sandbox.Prepared
	if !c.Bool("no-seccomp") {
		// Assembled while New sets the VM up, off the path to the
		// guest's first run.
		prepared = sandbox.Prepare(filter)
	}
	// The broker (broker.go) renames the snapshots for the contained
	// VMM: started while New sets the VM up, outside the chroot. It does
	// so without the filter too (--no-seccomp), which then only turns
	// the filters off, the broker's with the VMM's.
	var brokerReady chan brokerStarted
	if snap != nil {
		brokerReady = make(chan brokerStarted, 1)
		d, files, ok := snap.Names()
		if !ok {
			return fmt.Errorf("--snapshot %s: closed before the VM ran", snap.Path())
		}
		a := brokerArgs{files: files, command: userCommand(c)}
		snapDirFD = int(d.Fd())
		// A copy of its own for the start: the Target closes its
		// descriptor if the setup fails meanwhile, and the number
		// could then name another file by the time it is passed.
		fd, err := unix.FcntlInt(d.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("--snapshot %s: its directory: %w", snap.Path(), err)
		}
		dir := os.NewFile(uintptr(fd), d.Name())
		go func() {
			b, err := brokerStart(a, dir, creds, prepared != nil)
			dir.Close() // the broker's is its own
			brokerReady <- brokerStarted{b, err}
		}()
	}
	// -v's lines are the log's: by BeforeRun the console may have the
	// terminal raw, where a bare "\n" starts the next line where this
	// one ended (console.go: rawLogWriter).
	vlog := cfg.Log
	if vlog == nil {
		vlog = newRawLogWriter(os.Stderr)
	}
	prev := cfg.BeforeRun
	cfg.BeforeRun = func() error {
		if prev != nil {
			if err := prev(); err != nil {
				return err
			}
		}
		if brokerReady != nil {
			r := <-brokerReady
			if r.err != nil {
				return r.err
			}
			snap.UseRenamer(brokerRenamer{r.b}) // closes the VMM's descriptor of the directory
			if verbose {
				fmt.Fprintln(vlog, "smolvmm: a broker process renames the snapshots for the VMM")
			}
		}
		if chroot != "" {
			if err := sandbox.Chroot(chroot); err != nil {
				return fmt.Errorf("--chroot: %w", err)
			}
			if verbose {
				fmt.Fprintf(vlog, "smolvmm: root directory is now %s\n", chroot)
			}
		}
		if creds != nil {
			// Asked first: the drop takes CAP_SETPCAP away.
			kept, err := sandbox.DropKeepsBoundingSet()
			if err == nil {
				err = sandbox.DropPrivileges(*creds)
			}
			if err != nil {
				if c.String("user") == "" {
					return fmt.Errorf("--uid %d --gid %d: %w", creds.UID, creds.GID, err)
				}
				return fmt.Errorf("--user %s: %w", c.String("user"), err)
			}
			if verbose {
				fmt.Fprintf(vlog, "smolvmm: %s\n", droppedLine(*creds, kept))
			}
			if jailed { // jail.go: the kernel forgot it with the credentials
				if err := sandbox.DieWithParent(); err != nil {
					return fmt.Errorf("--jail: %w", err)
				}
			}
		} else if os.Geteuid() != 0 {
			// Started by an ordinary user with capabilities (setpriv,
			// a service's AmbientCapabilities, file capabilities for a
			// tap), it kept them while the guest ran. Root keeps its
			// own without --user (docs/containment.md).
			had, bounding, err := sandbox.DropCapabilities(execForbidden(prepared != nil))
			if errors.Is(err, sandbox.ErrCapsOnEveryThread) {
				return fmt.Errorf("%w (start smolvmm without capabilities, or use a build with CGO_ENABLED=0, as make build does%s)", err, capsAdviceNoSeccomp(prepared == nil))
			}
			if err != nil {
				return err
			}
			if verbose && had != 0 {
				fmt.Fprintf(vlog, "smolvmm: %s\n", capsDroppedLine(had, bounding, sandbox.KeepsInheritable))
			}
		}
		if prepared == nil {
			if verbose {
				fmt.Fprintln(vlog, "smolvmm: no seccomp filter (--no-seccomp): the VMM may make any system call")
			}
			return nil
		}
		inst, err := prepared.Install()
		if err != nil {
			return fmt.Errorf("%w (%s --no-seccomp runs without the filter)", err, commandPrefix(userCommand(c)))
		}
		if verbose {
			fmt.Fprintf(vlog, "smolvmm: %s installed on every thread\n", inst)
			if hostAbstract {
				fmt.Fprintf(vlog, "smolvmm: %s\n", abstractLine(jailed))
			}
		}
		return nil
	}
	installTestHook(cfg) // testhook*.go
	return nil
}

// userCommand is the command the user typed that runs c: bench for the
// hidden boot child it runs for each measured boot.
func userCommand(c *cli.Context) string {
	if c.Command.Hidden && c.Command.Name == "boot" {
		return "bench"
	}
	return c.Command.Name
}

// noSeccompAdvice ends the report of a call the filter refused. The
// option goes after the command (smolvmm run --no-seccomp): before it,
// smolvmm refuses it as an unknown flag.
func noSeccompAdvice(command string) string {
	return " (" + commandPrefix(command) + " --no-seccomp turns the filter off; please report the call)"
}

// abstractLine is -v's line on a shared network in the host's network
// namespace, jailed or not (jailed: with --ready-port).
func abstractLine(jailed bool) string {
	line := "on a shared network the VMM may connect to any abstract Unix socket of the host's network namespace, whatever --user and --chroot say (such a socket has no permissions and no path); "
	if jailed {
		return line + "--jail gives it a network namespace of its own, without them, unless --ready-port probes the host's loopback"
	}
	return line + "--jail gives it a network namespace of its own, without them"
}

// droppedLine is -v's line on the user the VMM runs as; kept is why the
// bounding set was kept (sandbox.DropKeepsBoundingSet, asked before the
// drop). Only a cgo build started with CAP_SETPCAP is told how to empty
// it: without CAP_SETPCAP a build without cgo keeps it too.
func droppedLine(creds sandbox.Credentials, kept sandbox.BoundingSetKept) string {
	line := fmt.Sprintf("running as uid %d gid %d, with no other groups and no capabilities", creds.UID, creds.GID)
	switch kept {
	case 0:
	case sandbox.KeptByCgo:
		line += " (the capability bounding set is kept whole: a build linked with cgo cannot empty it on every thread; build with CGO_ENABLED=0 for an empty one)"
	case sandbox.KeptWithoutSetpcap:
		line += " (the capability bounding set is kept: emptying it takes CAP_SETPCAP, which smolvmm was started without; with no_new_privs on every thread it grants nothing)"
	default:
		line += " (the capability bounding set is kept whole: emptying it takes CAP_SETPCAP, which smolvmm was started without, and a build linked with cgo cannot empty it on every thread either)"
	}
	return line
}

// execForbidden is what the VMM and its broker tell
// sandbox.DropCapabilities: whether the filter they install next
// (filterOn; off with --no-seccomp) forbids execve. Inheritable
// capabilities a cgo build keeps only then: else an exec of a program
// with file capabilities would get them.
func execForbidden(filterOn bool) bool { return filterOn }

// capsAdviceNoSeccomp is what a refusal to keep capabilities adds under
// --no-seccomp (noSeccomp): without the filter, a cgo build refuses even
// inheritable ones alone, which it keeps under the filter.
func capsAdviceNoSeccomp(noSeccomp bool) string {
	if !noSeccomp {
		return ""
	}
	return "; with only inheritable capabilities, run it without --no-seccomp"
}

// capsDroppedLine is -v's line on the capabilities had (a bit mask) that
// an ordinary user's VMM dropped; bounding says whether it emptied its
// bounding set too (it takes CAP_SETPCAP); keptInheritable, that a cgo
// build kept them, as it does only inheritable ones.
func capsDroppedLine(had uint64, bounding, keptInheritable bool) string {
	if keptInheritable { // DropCapabilities refuses any other set
		return fmt.Sprintf("inheritable capabilities %#x kept: a build linked with cgo cannot clear them on every thread; with none effective or permitted they grant nothing unless a program with file capabilities is executed, which the seccomp filter forbids", had)
	}
	line := fmt.Sprintf("capabilities %#x dropped on every thread: the VMM runs as uid %d with none", had, os.Geteuid())
	if !bounding {
		line += " (its bounding set is kept: emptying it takes CAP_SETPCAP)"
	}
	return line
}
