package imagebuilder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"github.com/smolvmm/smolvmm/imagebuilder/internal/hostdir"
	"github.com/smolvmm/smolvmm/internal/filekind"
	"github.com/smolvmm/smolvmm/internal/staledir"
	"github.com/smolvmm/smolvmm/internal/termsafe"
	"github.com/smolvmm/smolvmm/service"
	"golang.org/x/sys/unix"
)

// PostinstPath is the only environment a postinst script gets.
const PostinstPath = "PATH=/usr/bin:/bin:/usr/sbin:/sbin"

// PostinstUmask is the umask a postinst script runs with, whatever the
// builder's: what a script makes is 0644 or 0755 in the image, as under
// the usual umask, not 0600 when the build ran under umask 077, nor when
// TMPDIR has a default ACL (see dropACLs).
const PostinstUmask = 0o022

// postinstShell runs the script $0 under PostinstUmask: a umask is a
// process's own, which os/exec cannot set in the child, and setting the
// builder's own would change it for its other goroutines too.
var postinstShell = fmt.Sprintf(`umask %03o && exec /bin/sh "$0"`, PostinstUmask)

// identity is the user a script runs as.
type identity struct {
	uid, gid uint32
	drop     bool // switch to uid/gid before running the script
	// When drop, the ids the script has inside the user namespace it
	// runs in, mapped to uid and gid: nobody's (see nobodyIDs).
	inUID, inGID uint32
	noUserNS     bool // no user namespace could be made: run as uid/gid
}

// scriptUser is the invoking user, or, when that is root, a user and
// group of their own (see buildIDs), which the script sees as nobody's
// (see runScript): a script from a service directory never runs as root
// on the build host, nor as a user whose processes could reach into this
// build or a later one, or outlive it (see killUser).
func scriptUser() (identity, error) {
	if os.Geteuid() != 0 {
		return identity{uid: uint32(os.Geteuid()), gid: uint32(os.Getegid())}, nil
	}
	id, err := buildIDs()
	if err != nil {
		return identity{}, fmt.Errorf("running as root and no user id is free to run postinst scripts as (they never run as root): %w", err)
	}
	inUID, inGID := nobodyIDs()
	return identity{uid: id, gid: id, drop: true, inUID: inUID, inGID: inGID}, nil
}

// RunPostinst runs the service's postinst/*.sh scripts (see
// service.Service.Postinst), in name order, on a staging copy of t in a
// temporary directory, and writes to log a warning naming the other files
// of postinst/, which do not run: working directory at its
// root, environment PATH only (PostinstPath), umask 022 (PostinstUmask),
// as the invoking user (when that is root, an id of the build's own: see
// scriptUser), so that they cannot
// set owners: what they make belongs to root:wheel in the image (or keeps
// the owner of the path it replaces), and a chown to another user fails
// (the failure says so; etc/rc can chown at boot). What the scripts add,
// change or remove is merged back into t;
// device nodes, which an unprivileged script cannot see or make, are kept
// as they were, over anything a script left at their paths (see
// restoreSkipped: a file a redirection such as >dev/null made is dropped
// quietly, anything else with a warning). A file is staged with its setuid and setgid bits (in a
// directory only the scripts' user and root may enter), readable and writable by its
// owner (a script may change a file of mode 0444, as root may) and with
// the sticky bit (see stagedPerm), a directory without setuid and setgid,
// readable, writable and searchable; one whose mode the scripts did not
// set gets its own mode back (a file's setuid and setgid as the scripts
// left them, so chmod u-s drops one, and none when they changed its data,
// as a write by a user other than root drops them), a file a symbolic
// chmod changed, or a copy that kept its mode (cp -p, sed -i), its own
// mode changed as the staged one was (see filePerm: a copy, whose owner
// the image cannot keep, never setuid or setgid), any other keeps the
// mode they left, without the sticky bit for a file (which NetBSD lets
// only root set on one). A set
// file the scripts renamed or linked elsewhere is still that file (its
// owner, and its mode as above), and a set directory renamed elsewhere
// that directory (held open meanwhile, see holdDirs); one they made is never a set file they
// removed. Files and directories are staged with the set's modification
// times; one a script set (touch -d, cp -p, tar x), or a set's that
// stayed, reaches the image, and one the build's clock gave (a write, a
// new entry) does not: such an entry takes the image's timestamp (see
// stageClock), and a set's entry whose time alone the clock gave (touch
// without -d) stays as it was. A
// script that fails, or leaves a hard link to a file outside the root or
// a socket, makes the whole step fail and t unchanged. Script output goes
// to log; a failure shows its last 2000 bytes. A log that fails to take
// it is written no more and fails the step once the script has ended
// (the script's own failure first, else a *ScriptLogError), the output
// still read to its end. Each script runs in a
// process group of its own, killed when the script ends, or when ctx is
// done (the step then fails with an error matching ctx's): what a script
// put in the background neither holds the build up nor outlives it.
// When root builds, the script runs in a user namespace of its own in
// which it is nobody (see runScript), and every process of the build's
// id, what left the group (setsid) too, is killed when it ends (see
// killUser). The staging directory is removed however the step ends;
// one that a build killed (SIGKILL) left is removed by the next, which
// first kills what the dead build's scripts left running when it was
// root (see removeDeadStaging).
//
// The scripts run on the host, without a chroot (NetBSD binaries do not
// run there), so a symlink of t is staged so that following it never
// leaves the staging root: one whose target is absolute, or climbs with
// "..", points at the staging path the guest would resolve it to (".." at
// the root stays there, t's own symlinks along the way are followed). Such
// a symlink gets its own target back if the scripts left it as staged; a
// target a script writes that names a path under the staging root becomes
// that path in the image. Any other target, absolute ones included, is
// kept as written: the guest resolves it inside the image.
func RunPostinst(ctx context.Context, t *fstree.Tree, s *service.Service, log io.Writer) error {
	scripts, err := s.Postinst()
	if err != nil {
		return err
	}
	warnIgnored(s, log)
	removeDeadStaging()
	if len(scripts) == 0 {
		return nil
	}
	id, err := scriptUser()
	if err != nil {
		return err
	}
	// Locked for the build's life, with the scripts' user recorded in
	// it: see removeDeadStaging.
	var note []byte
	if id.drop {
		note = buildNote(id.uid)
	}
	tmp, removeStage, err := staledir.Make(stagePrefix+"*", note)
	if err != nil {
		return &StageDirError{TempDir: os.TempDir(), Err: err}
	}
	defer removeStage()
	if err := dropACLs(tmp); err != nil {
		return fmt.Errorf("postinst staging: %w", err)
	}
	// One absolute path without symlinks, for staging, the scripts'
	// working directory and the recognition of staging paths in the
	// symlinks they write: a shell's pwd prints the resolved path, and
	// the kernel checks search permission on the path as given.
	if tmp, err = filepath.Abs(tmp); err == nil {
		tmp, err = filepath.EvalSymlinks(tmp)
	}
	if err != nil {
		return fmt.Errorf("postinst staging: %w", err)
	}
	// The tree is staged in gate, which belongs to the scripts' user and
	// lets no other user in (see stageDirMode).
	gate := filepath.Join(tmp, "gate")
	stage, keep := filepath.Join(gate, "root"), filepath.Join(tmp, "keep")
	var clock stageClock
	if clock.start, err = fsNow(tmp, 0700); err != nil {
		return fmt.Errorf("postinst staging: %w", err)
	}
	if duringStaging != nil {
		duringStaging(tmp)
	}
	// The builder's, mode 0700: the scripts' user, when it is another,
	// can neither reach in nor, in tmp, rename it.
	if err := os.Mkdir(keep, 0700); err != nil {
		return fmt.Errorf("postinst staging: %w", err)
	}
	if err := os.Mkdir(gate, 0700); err != nil {
		return fmt.Errorf("postinst staging: %w", err)
	}
	if err := os.Lchown(gate, int(id.uid), int(id.gid)); err != nil {
		return fmt.Errorf("postinst staging: %w", err)
	}
	// Staged by path, as root: while tmp is still 0700, no process of
	// the scripts' user (one a script of an earlier build left running)
	// can reach in and swap a directory it owns for a symlink that the
	// next write, chown or chmod would follow.
	skipped, stamps, err := stageTree(t, stage, keep, id)
	if err != nil {
		return fmt.Errorf("postinst staging in %s: %w", stage, err)
	}
	release, err := holdDirs(stage, stamps)
	if err != nil {
		return fmt.Errorf("postinst staging: %w", err)
	}
	defer release()
	if err := clockPast(tmp, stamps, id); err != nil {
		return fmt.Errorf("postinst staging: %w", err)
	}
	if id.drop {
		if err := checkReachable(stage, id); err != nil {
			return err
		}
	}
	for _, name := range scripts {
		if err := runScript(ctx, s, name, tmp, stage, &id, log); err != nil {
			return err
		}
	}
	if clock.end, err = fsNow(tmp, stageDirMode(id)); err != nil {
		return fmt.Errorf("postinst staging: %w", err)
	}
	root, err := mergeStage(ctx, t, stage, keep, stamps, clock)
	if err != nil {
		return fmt.Errorf("service %s postinst: %w", s.Name, err)
	}
	merged := &fstree.Tree{Root: root}
	replaced, err := restoreSkipped(merged, skipped)
	if err != nil {
		return fmt.Errorf("service %s postinst: %w", s.Name, err)
	}
	if len(replaced) > 0 && log != nil {
		warn(log, fmt.Sprintf("service %s: postinst scripts made %s where the image has device nodes, which stay: what they made there is not in the image", s.Name, strings.Join(replaced, ", ")))
	}
	t.Root = root
	return nil
}

// dropACLs removes the POSIX ACLs dir took from TMPDIR's default ACL,
// before the staging tree is made in it. Where a default ACL applies,
// Linux ignores the umask: what the scripts make would take that ACL's
// modes (0600 and 0700, or 0666 and 0777), not PostinstUmask's. Its
// access ACL goes too, so that dir's mode alone decides who reaches in:
// where it has one, a chmod sets its mask and not its group's entry,
// which can leave the scripts' group (see stageDirMode) without search.
// None to remove (ENODATA) or a file system without ACLs (EOPNOTSUPP,
// which is ENOTSUP on Linux) leaves the umask in force. The lock file
// staledir made in dir first took the ACL too; its mode 0600 left the
// ACL's mask empty, so it grants no one more than that mode does.
func dropACLs(dir string) error {
	for _, name := range []string{"system.posix_acl_default", "system.posix_acl_access"} {
		err := removexattr(dir, name)
		if err != nil && !errors.Is(err, unix.ENODATA) && !errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("removing the ACL the staging directory inherited: %w", &os.PathError{Op: "removexattr " + name, Path: dir, Err: err})
		}
	}
	return nil
}

// removexattr is unix.Removexattr; tests replace it to fail.
var removexattr = unix.Removexattr

// stagePrefix begins the name of a postinst staging directory in
// os.TempDir().
const stagePrefix = "smolvmm-postinst-"

// removeDeadStaging removes the staging directories that builds of this
// user left when they were killed (see staledir: each build holds its
// own locked). A root build's scripts ran as an id of that build's own
// (see buildIDs), which it recorded in the directory with the boot and
// the user namespace it ran in (see buildNote): the processes of that
// id in that namespace, or in one made below it (a script's), are what
// the dead build's scripts left running (in their group or not), and
// are killed first, by the /proc scan killUser makes (no process need
// take that id, as kill(-1) would). Only when the id can still be no
// one else's (see deadBuildUID): a directory can outlive a reboot (a
// TMPDIR on disk), after which the id may be a new account's, and
// another namespace's ids are not this one's. A build that is not root
// records nothing: its scripts ran as the builder, whose other
// processes are no build's; its script's shell died with it (Pdeathsig).
func removeDeadStaging() {
	staledir.RemoveDead(stagePrefix, 0o022, func(_ string, note []byte) {
		if os.Geteuid() != 0 {
			return
		}
		if uid, ns, ok := deadBuildUID(note); ok {
			killUser(uid, &ns)
		}
	})
}

// warnIgnored writes to log one warning naming the files of the
// service's postinst/ that are no scripts and do not run (see
// service.Service.IgnoredPostinst), if there are any.
func warnIgnored(s *service.Service, log io.Writer) {
	ignored, err := s.IgnoredPostinst()
	if err != nil || len(ignored) == 0 || log == nil {
		return
	}
	for i, name := range ignored {
		ignored[i] = termsafe.Printable(name)
	}
	warn(log, fmt.Sprintf("service %s: %s not run: postinst/ runs only its *.sh scripts", s.Name, strings.Join(ignored, ", ")))
}

// StageDirError is the error of RunPostinst (and BuildTree) when the
// postinst staging directory could not be made in the temporary
// directory (os.TempDir: $TMPDIR, else /tmp): one the build may not
// write, say, or that does not exist.
type StageDirError struct {
	TempDir string // the temporary directory
	Err     error  // the system's error, an *fs.PathError
}

// Error names the temporary directory and why nothing could be made in it.
func (e *StageDirError) Error() string {
	return fmt.Sprintf("cannot make the postinst staging directory in the temporary directory %s (TMPDIR, else /tmp): %v", e.TempDir, errnoText(e.Err))
}

// Unwrap is the system's error.
func (e *StageDirError) Unwrap() error { return e.Err }

// StageUnreachableError is the error of RunPostinst (and BuildTree) when
// the user the postinst scripts run as (the build's own, when root
// builds) could not reach the staging directory, made in the temporary
// directory (os.TempDir): a directory on the way does not let that user
// search it.
type StageUnreachableError struct {
	Dir          string      // the staging directory, absolute, symlinks resolved
	UID          uint32      // the user the scripts run as
	Blocked      string      // the directory on the way that user may not search
	Mode         fs.FileMode // Blocked's permission bits
	Owner, Group uint32      // Blocked's owner and group
}

// Error names the staging directory, the user and the directory in the way.
func (e *StageUnreachableError) Error() string {
	return fmt.Sprintf("the postinst staging directory %s is not reachable by uid %d, the user the scripts run as: %s (mode %#o, owner %d:%d) does not let that user search it",
		e.Dir, e.UID, e.Blocked, e.Mode.Perm(), e.Owner, e.Group)
}

// checkReachable returns a *StageUnreachableError when a directory from
// the root to dir (absolute, without symlinks: the path the kernel
// traverses) does not let id's user search it:
// the script's start would fail as "fork/exec /bin/sh: permission
// denied", which names neither. Without supplementary groups (the
// scripts get none), the mode bits decide; a directory with an access
// ACL is left to the kernel.
func checkReachable(dir string, id identity) error {
	for p := dir; ; p = filepath.Dir(p) {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			return fmt.Errorf("postinst staging: %w", &os.PathError{Op: "stat", Path: p, Err: err})
		}
		bit := uint32(0o001)
		switch {
		case st.Uid == id.uid:
			bit = 0o100
		case st.Gid == id.gid:
			bit = 0o010
		}
		if st.Mode&bit == 0 {
			if n, err := unix.Getxattr(p, "system.posix_acl_access", nil); err != nil || n == 0 {
				return &StageUnreachableError{Dir: dir, UID: id.uid, Blocked: p, Mode: fs.FileMode(st.Mode & 0o777), Owner: st.Uid, Group: st.Gid}
			}
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// startScript starts a script's command; tests replace it to refuse the
// user namespace, as a host without one does.
var startScript = (*exec.Cmd).Start

// noUserNamespace reports whether err, the failure to start a script in
// a user namespace of its own, says that none can be made here: none
// allowed (user.max_user_namespaces 0 or reached: ENOSPC, EUSERS past
// the nesting limit), or refused to this process (EPERM, EACCES: a
// container's seccomp filter or an LSM), or unknown to the kernel
// (EINVAL).
func noUserNamespace(err error) bool {
	for _, e := range []error{syscall.EPERM, syscall.EACCES, syscall.EINVAL, syscall.ENOSPC, syscall.EUSERS} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func runScript(ctx context.Context, s *service.Service, name, tmp, stage string, id *identity, log io.Writer) error {
	body, err := fs.ReadFile(s.FS, name)
	if err != nil {
		return fmt.Errorf("service %s: %w", s.Name, err)
	}
	// A copy outside the staging tree, readable by the script's user.
	sp := filepath.Join(tmp, "script-"+filepath.Base(name))
	if err := os.WriteFile(sp, body, 0644); err != nil {
		return err
	}
	if err := os.Chmod(sp, 0644); err != nil {
		return err
	}
	out := &tailBuffer{max: outputTail}
	w := &scriptOutput{tail: out, log: log}
	command := func(userns bool) *exec.Cmd {
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", postinstShell, sp)
		cmd.Dir = stage
		cmd.Env = []string{PostinstPath}
		cmd.Stdout, cmd.Stderr = w, w // one writer: one pipe, one copy
		// A group of its own, killed when the script ends or ctx is
		// done: a job the script put in the background would otherwise
		// hold its output (and the build) open, or run on after it, in
		// a deleted staging directory.
		// Pdeathsig: a build killed (SIGKILL, the OOM killer) takes the
		// script's shell with it; what the shell started is then killed
		// by the next build (see removeDeadStaging). The signal follows
		// the death of the thread that started the shell, which the Go
		// runtime does not end while the process runs (none is locked).
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if id.drop {
			// No supplementary groups: root's would stay the script's.
			cmd.SysProcAttr.Credential = &syscall.Credential{Uid: id.uid, Gid: id.gid, Groups: []uint32{}}
		}
		if userns {
			// In a user namespace of its own that maps nobody's ids
			// alone, to the build's: the script is nobody to itself,
			// so what looks its user up (ssh-keygen, whoami, id -un)
			// finds one, and the build's id to every other process.
			// It is no root inside, so it keeps no capability past
			// its exec. Setgroups stays allowed for the child to drop
			// root's groups before it execs; the script cannot call
			// it without CAP_SETGID.
			cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWUSER
			cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: int(id.inUID), HostID: int(id.uid), Size: 1}}
			cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: int(id.inGID), HostID: int(id.gid), Size: 1}}
			cmd.SysProcAttr.GidMappingsEnableSetgroups = true
			cmd.SysProcAttr.Credential = &syscall.Credential{Uid: id.inUID, Gid: id.inGID, Groups: []uint32{}}
		}
		cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
		// A process that left the group (setsid) and holds the output
		// is not waited for longer than this.
		cmd.WaitDelay = outputWait
		return cmd
	}
	userns := id.drop && !id.noUserNS
	cmd := command(userns)
	err = startScript(cmd)
	if err != nil && userns && noUserNamespace(err) {
		// The script runs as the build's id itself, which names no
		// user: it stays the only one with that id, and killUser still
		// ends what it leaves.
		id.noUserNS = true
		if log != nil {
			warn(log, fmt.Sprintf("service %s: no user namespace can be made here (%v), so the postinst scripts run as uid %d, which names no user: a command that looks its user up (ssh-keygen, whoami, id -un) fails", s.Name, err, id.uid))
		}
		cmd = command(false)
		err = startScript(cmd)
	}
	if err != nil {
		return fmt.Errorf("service %s: %s: %w", s.Name, name, err)
	}
	// Killed once the script has ended, before it is reaped: its id,
	// the group's, is then no other process's. (Should that wait fail,
	// the group is killed after the reap: its id stays in use while a
	// process of the group lives.) The processes of the build's own user
	// are killed then too, those that left the group (setsid) among
	// them: no other process has that id.
	var kerr error
	exited := waitExit(cmd.Process.Pid) == nil
	if exited {
		killGroup(cmd.Process.Pid)
		if id.drop {
			kerr = killUser(id.uid, nil)
		}
	}
	err = cmd.Wait()
	if !exited {
		killGroup(cmd.Process.Pid)
		if id.drop {
			kerr = killUser(id.uid, nil)
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("service %s: %s stopped: %w", s.Name, name, ctxError(ctx))
	}
	if kerr != nil {
		return fmt.Errorf("service %s: %s: %w", s.Name, name, kerr)
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		return fmt.Errorf("service %s: %s (as uid %d) left a process running outside its process group that still held its output %v after it ended: %w", s.Name, name, id.uid, outputWait, err)
	}
	if err != nil {
		return &ScriptError{Service: s.Name, Script: name, UID: id.uid, Err: err, Output: out.String(), Logged: log != nil && w.logErr == nil}
	}
	if w.logErr != nil {
		return &ScriptLogError{Service: s.Name, Script: name, UID: id.uid, Err: w.logErr, Output: out.String()}
	}
	return nil
}

// ScriptError is a postinst script that failed: how it ended and the
// tail of what it printed.
type ScriptError struct {
	Service string // the service's name
	Script  string // the script, "postinst/NAME.sh"
	UID     uint32 // the user it ran as
	Err     error  // how it ended (an *exec.ExitError) or why it did not run
	Output  string // its output's last bytes, after "..." when it printed more
	Logged  bool   // all the output went to the build's log as it came (false when the log failed)
}

// Error is one line: the script, its user and how it ended, and what its
// output says of owners it could not set; Detail has the output. (The
// output is a script's: it is not put in a line meant to be one.)
func (e *ScriptError) Error() string {
	return fmt.Sprintf("service %s: %s failed (as uid %d, in the staging root): %v%s", e.Service, e.Script, e.UID, e.Err, notPermitted(e.Output))
}

// Detail is the tail of the script's output, to print after Error, or ""
// when the build's log had it already: it is not shown twice.
func (e *ScriptError) Detail() string {
	if e.Logged {
		return ""
	}
	return e.Output
}

// Unwrap returns how the script ended.
func (e *ScriptError) Unwrap() error { return e.Err }

// notPermitted is what a failed script's output tail says of owners when
// a command in it was refused EPERM, most often a chown, or a chown or
// chgrp was refused EINVAL (in a root build's user namespace, which maps
// no id but nobody's, another is no id at all): the scripts do not run
// as root, so no owner they set reaches the image.
func notPermitted(output string) string {
	refused := false
	for _, line := range strings.Split(strings.ToLower(output), "\n") {
		if strings.Contains(line, syscall.EPERM.Error()) {
			refused = true
		}
		if strings.Contains(line, syscall.EINVAL.Error()) && (strings.Contains(line, "chown") || strings.Contains(line, "chgrp") || strings.Contains(line, "ownership") || strings.Contains(line, "changing group")) {
			refused = true
		}
	}
	if !refused {
		return ""
	}
	return "; postinst scripts do not run as root, so they cannot give files other owners (chown, chgrp) or make device nodes: a file they make belongs to root in the image, and etc/rc can set owners at boot"
}

// ctxError is ctx's error, after its cause when that says more (a signal).
func ctxError(ctx context.Context) error {
	if c := context.Cause(ctx); c != nil && c != ctx.Err() {
		return fmt.Errorf("%w (%w)", ctx.Err(), c)
	}
	return ctx.Err()
}

// outputTail is how much of a script's output (its end) a failure shows.
const outputTail = 2000

// outputWait is how long, once a script has ended and its process group
// been killed, its output is still read: only a process that left the
// group can still hold it.
const outputWait = 2 * time.Second

// killGroup kills the process group pgid.
func killGroup(pgid int) error {
	err := syscall.Kill(-pgid, syscall.SIGKILL)
	if err == syscall.ESRCH {
		return nil
	}
	return err
}

// waitExit returns once process pid has ended, leaving it unreaped
// (WNOWAIT): until exec's Wait reaps it, its id, that of its process
// group, is not reused.
func waitExit(pid int) error {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return err
		}
	}
}

// tailBuffer keeps the last max bytes written to it, in at most 2*max of
// memory, however much is written.
type tailBuffer struct {
	max   int
	buf   []byte
	total int64
}

// Write keeps p's end; it never fails.
func (b *tailBuffer) Write(p []byte) (int, error) {
	b.total += int64(len(p))
	if len(p) >= b.max {
		b.buf = append(b.buf[:0], p[len(p)-b.max:]...)
		return len(p), nil
	}
	if len(b.buf)+len(p) > 2*b.max {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-(b.max-len(p)):]...)
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// String is the last max bytes, after "..." when more was written.
func (b *tailBuffer) String() string {
	t := b.buf[max(len(b.buf)-b.max, 0):]
	if b.total > int64(len(t)) {
		return "..." + string(t)
	}
	return string(t)
}

// stageTree writes t under dir (owned by id's user, so the script can
// change it) and returns the device nodes and FIFOs it left out, and the
// stamps of the files and directories it wrote, by path. Each regular
// file also gets a hard link in keep, an existing directory on dir's file
// system that the scripts cannot reach, named in its stamp: while the link
// is there, the file's inode is not freed, so no file a script makes can
// get its number (see mergeStage). A script sees each file's link count
// one higher than the set's.
func stageTree(t *fstree.Tree, dir, keep string, id identity) (map[string]*fstree.Node, map[string]stageStamp, error) {
	skipped := map[string]*fstree.Node{}
	var staged []string // files and directories, stamped last
	first := map[*fstree.Node]string{}
	// A regular file's name in keep, by the path it was first staged at.
	kept := map[string]string{}
	var dirs []*fstree.Node // chmod-ed last, dirs[i] at host path paths[i]
	var paths []string
	err := t.Walk(func(p string, n *fstree.Node) error {
		hp := filepath.Join(dir, filepath.FromSlash(p))
		switch n.Type {
		case fstree.Dir:
			if err := os.Mkdir(hp, 0700); err != nil {
				return err
			}
			staged = append(staged, p)
			dirs, paths = append(dirs, n), append(paths, hp)
			return os.Lchown(hp, int(id.uid), int(id.gid))
		case fstree.Regular:
			staged = append(staged, p)
			if fp, ok := first[n]; ok {
				return os.Link(filepath.Join(dir, filepath.FromSlash(fp)), hp)
			}
			first[n] = p
			if err := stageFile(hp, n); err != nil {
				return err
			}
			kept[p] = strconv.Itoa(len(kept))
			if err := os.Link(hp, filepath.Join(keep, kept[p])); err != nil {
				return err
			}
		case fstree.Symlink:
			if err := os.Symlink(stageTarget(t, p, n.Target, dir), hp); err != nil {
				return err
			}
			return os.Lchown(hp, int(id.uid), int(id.gid))
		default:
			skipped[p] = n
			return nil
		}
		if err := os.Lchown(hp, int(id.uid), int(id.gid)); err != nil {
			return err
		}
		if err := os.Chmod(hp, hostMode(stagedPerm(n))); err != nil {
			return err
		}
		return stageMtime(hp, n)
	})
	if err != nil {
		return nil, nil, err
	}
	// Directory modes and times last, so read-only directories could be
	// filled, and what was made in them did not change their times.
	for i, n := range dirs {
		if err := os.Chmod(paths[i], hostMode(stagedPerm(n))); err != nil {
			return nil, nil, err
		}
		if err := stageMtime(paths[i], n); err != nil {
			return nil, nil, err
		}
	}
	// Stamped once all is written: a hard link made, or an entry added,
	// changes the status of what was written before.
	stamps := make(map[string]stageStamp, len(staged))
	for _, p := range staged {
		st, err := hostdir.LstatPath(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil {
			return nil, nil, err
		}
		n, _ := t.Get(p)
		stamps[p] = stageStamp{dev: st.Dev, ino: st.Ino, ctime: st.Ctim, mtime: st.Mtim, keep: kept[first[n]]}
	}
	return skipped, stamps, nil
}

// stageStamp is what a staged file or directory was when the scripts
// started: its inode, and its status change time, which a chmod sets even
// when it sets the mode the entry already has. With it, mergeStage tells
// a directory's mode a script left as staged from one a script set to the
// staged value (chmod 0775 on a setgid directory staged 0775, to drop the
// bit), except after a new time or a rename, which change the status
// too (see stagedNode); a file's tells by its sticky bit (see stagedPerm).
type stageStamp struct {
	dev, ino     uint64
	ctime, mtime hostdir.Timespec
	keep         string // a regular file's hard link in the keep directory
	held         bool   // a directory held open while the scripts ran (see holdDirs)
}

// holdReserve is the descriptors holdDirs leaves free below the soft
// limit: what the build has open besides, and what running the scripts
// and merging their tree open.
const holdReserve = 512

// same reports whether st is the entry stamped s (the same inode).
func (s stageStamp) same(st *hostdir.Stat) bool { return s.dev == st.Dev && s.ino == st.Ino }

// untouched reports whether the staged entry now of status st is the one
// stamped s, its mode never set since: the same inode, with the same
// status change time. A directory's status change time also moves when
// an entry is added, removed or renamed in it, which sets its
// modification time to the same instant; one whose two times are equal
// last changed that way and counts as untouched too (a chmod followed by
// such a change in the same directory is then not seen).
func (s stageStamp) untouched(st *hostdir.Stat) bool {
	if !s.same(st) {
		return false
	}
	return s.ctime == st.Ctim || st.Mode&unix.S_IFMT == unix.S_IFDIR && st.Ctim == st.Mtim
}

// holdDirs opens each staged directory of stamps under stage (before
// the scripts run, while no other process can reach it) and marks its
// stamp held: a directory a script removes keeps its inode while it is
// open, so no directory a script makes gets the number of a removed one
// and is taken for it, renamed (see mergeStage). Beyond its budget of
// descriptors (holdReserve) the directories left are not held, and are
// recognised at their own path only. release closes them all.
func holdDirs(stage string, stamps map[string]stageStamp) (release func(), err error) {
	var fds []int
	release = func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	// Descriptors are held up to the soft limit less a reserve: the
	// scripts' fork and exec, and the merge, open files after this.
	budget := 0
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil && lim.Cur > holdReserve {
		budget = int(min(lim.Cur-holdReserve, 1<<20))
	}
	for p, s := range stamps {
		if p == "" {
			continue // the root cannot be renamed by a script
		}
		if len(fds) >= budget {
			break
		}
		fd, err := unix.Open(filepath.Join(stage, filepath.FromSlash(p)), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) {
			break
		}
		if errors.Is(err, unix.ENOTDIR) {
			continue // a regular file, held by its link in keep
		}
		if err != nil {
			release()
			return nil, &os.PathError{Op: "open", Path: p, Err: err}
		}
		if st, err := hostdir.Fstat(fd, p); err != nil || !s.same(&st) {
			unix.Close(fd)
			release()
			return nil, fmt.Errorf("%s changed while it was staged", p)
		}
		fds = append(fds, fd)
		s.held = true
		stamps[p] = s
	}
	return release, nil
}

// stageDirMode is the mode of tmp, the directory that holds the staging
// tree's parent (gate) and keep, while the scripts run. When they run as
// another user (the build's own, see scriptUser), tmp is given that
// user's group and mode 0710, so that the scripts may pass through it but
// not write it: the scripts' user can rename neither gate nor keep. gate
// is the scripts' user's own, mode 0700: no user but that one and root
// may enter it and run the setuid and setgid files staged below it (see
// stagedPerm); only the build's scripts run as that user.
// Run as the builder, the scripts need no more than the builder's own
// 0700.
func stageDirMode(id identity) fs.FileMode {
	if id.drop {
		return 0710
	}
	return 0700
}

// clockPast makes tmp, above the staging directory, searchable by the
// scripts' user id (see stageDirMode), changing its mode
// until its status change time is past every stamp's: a change a script
// makes then gets a time no stamp has, even where the file system's clock
// is coarser than the time staging took. A clock set back stops the wait
// after a second.
func clockPast(tmp string, stamps map[string]stageStamp, id identity) error {
	var last hostdir.Timespec
	for _, s := range stamps {
		if last.Before(s.ctime) {
			last = s.ctime
		}
	}
	if id.drop {
		if err := os.Chown(tmp, -1, int(id.gid)); err != nil {
			return err
		}
	}
	for i := 0; ; i++ {
		if err := os.Chmod(tmp, stageDirMode(id)); err != nil {
			return err
		}
		st, err := hostdir.StatPath(tmp)
		if err != nil {
			return err
		}
		if last.Before(st.Ctim) || i == 1000 {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
}

// stageMtime gives the staged file or directory hp the modification time
// of n, when it has one: a script sees the set's times (find -newer, make)
// and, one that copies them (cp -p), passes them on (see stageClock).
func stageMtime(hp string, n *fstree.Node) error {
	if !n.HasMtime() {
		return nil
	}
	t := hostdir.Timespec{Sec: n.Mtime}
	return hostdir.Lutimes(hp, t, t)
}

// stageFile writes regular file n at hp: its extents, over a file
// truncated to its size, so its holes stay holes (a 1 GiB file with one
// byte of data costs a block, not 1 GiB of memory and of disk).
func stageFile(hp string, n *fstree.Node) error {
	f, err := os.OpenFile(hp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0600)
	if err != nil {
		return err
	}
	err = f.Truncate(n.Size)
	for _, e := range n.Extents {
		if err != nil || e.Off >= n.Size {
			break
		}
		_, err = f.WriteAt(e.Data[:min(int64(len(e.Data)), n.Size-e.Off)], e.Off)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// readStaged reads the staged regular file f of size bytes with
// fstree.ReadSparse: a sparse file costs memory only for its data. A file
// found shorter than size changed after the scripts ended.
func readStaged(f *os.File, size int64) (*fstree.Node, error) {
	n, err := fstree.ReadSparse(f, size)
	var shrank *fstree.ShrankError
	if errors.As(err, &shrank) {
		return nil, fmt.Errorf("changed after the postinst scripts ended (did one leave a process running?): %w", err)
	}
	return n, err
}

// stageChunk is the unit sameContent compares in.
const stageChunk = fstree.ReadChunk

// sameContent reports whether regular files a and b hold the same bytes,
// comparing chunk by chunk, and skipping where both have holes, without
// ever holding a whole file.
func sameContent(a, b *fstree.Node) bool {
	if a.Size != b.Size {
		return false
	}
	ba, bb := make([]byte, min(stageChunk, a.Size)), make([]byte, min(stageChunk, a.Size))
	ea, eb := a.Extents, b.Extents
	for off := int64(0); off < a.Size; {
		ea, eb = extentsFrom(ea, off), extentsFrom(eb, off)
		next := a.Size
		if len(ea) > 0 {
			next = min(next, max(ea[0].Off, off))
		}
		if len(eb) > 0 {
			next = min(next, max(eb[0].Off, off))
		}
		if next > off {
			off = next // zeros in both up to next
			continue
		}
		w := min(int64(stageChunk), a.Size-off)
		if !bytes.Equal(fillChunk(ba[:w], ea, off), fillChunk(bb[:w], eb, off)) {
			return false
		}
		off += w
	}
	return true
}

// extentsFrom is es without the extents that end at or before off.
func extentsFrom(es []fstree.Extent, off int64) []fstree.Extent {
	for len(es) > 0 && es[0].Off+int64(len(es[0].Data)) <= off {
		es = es[1:]
	}
	return es
}

// fillChunk fills buf with the bytes at off of a file of extents es.
func fillChunk(buf []byte, es []fstree.Extent, off int64) []byte {
	clear(buf)
	end := off + int64(len(buf))
	for _, e := range es {
		if e.Off >= end {
			break
		}
		lo, hi := max(e.Off, off), min(e.Off+int64(len(e.Data)), end)
		if lo < hi {
			copy(buf[lo-off:hi-off], e.Data[lo-e.Off:hi-e.Off])
		}
	}
	return buf
}

// stagedPerm is the mode file or directory n is staged with; mergeStage
// gives n its own mode back when no script set a mode on it (see
// stageStamp and stagedNode).
// A file keeps its setuid and setgid bits, so that a script sees them
// (find -perm -4000) and a chmod u-s or g-s shows in the mode it leaves;
// the staged copy belongs to the scripts' user, and no other host user
// can reach it (see stageDirMode). A directory is staged without them: a
// setgid directory on the host would make the directories a script
// creates in it setgid too. Its owner may read and write a
// file, and read, write and search a directory: a build not run as root
// could not read back what it staged (mode 0000) otherwise, and a script
// could not change a file of mode 0444 or 0555 (echo x >> bin/test), as
// smolBSD's scripts, run as root, can. A file gets stageMarker; a
// directory keeps its sticky bit, which means something there (see
// stageStamp for how its mode is told apart).
func stagedPerm(n *fstree.Node) uint16 {
	if n.Type == fstree.Dir {
		return n.Perm&^06000 | 0700
	}
	return n.Perm&^stageMarker | 0600 | stageMarker
}

// stageMarker, the sticky bit, marks a staged file whose mode no script
// set: Linux ignores it on a file
// and lets its owner set it, a write
// keeps it, and a numeric chmod clears it, also one to the mode the file
// already has (chmod 0644 on a 0444 file staged 0644, before a write: a
// change of time alone cannot tell that from the write). A symbolic chmod
// keeps it but, to be seen, must change the mode (chmod u-s on a setuid
// file, staged setuid, does); one that changes nothing (u+w on a file
// staged writable) is as none. A mode a script
// sets, or a file it makes, never has it in the image: a copy that keeps
// the mode (cp -p, sed -i) carries it over, and is taken as a copy of a
// set's file (see filePerm).
const stageMarker = 01000

func hostMode(perm uint16) fs.FileMode {
	return fs.FileMode(perm&0777) | modeBits(perm)
}

func modeBits(perm uint16) fs.FileMode {
	var m fs.FileMode
	if perm&04000 != 0 {
		m |= fs.ModeSetuid
	}
	if perm&02000 != 0 {
		m |= fs.ModeSetgid
	}
	if perm&01000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// mergeStage reads the staging tree back. Nodes whose type, mode and
// content did not change are the original nodes (owner and mtime kept);
// changed or new ones belong to root:wheel, or to the original path's
// owner, and keep the modification time they have unless the build's
// clock gave it (see stageClock). A directory still untouched as
// stamped (stamps, by path) gets its original mode back; any other takes
// the mode it has, unless stagedNode can tell the mode was not set. A
// regular file is the set's file staged with its inode, wherever it is
// now: one a script only renamed or linked is the original node (mode,
// owner and times). An inode number means that file only while its hard
// link in keep (see stageTree) is still there: the inode of a file a
// script removed, freed, would be the next new file's (ext4 and tmpfs
// hand numbers out again at once), which would then take the removed
// file's owner and mode.
//
// Everything below dir belongs to the scripts' user, and a process they
// left running (or any other process of that user) can still change it:
// dir is opened once (this process made it, in a directory of the
// scripts' user, so it must still be the directory stamped), and each entry beneath it through its parent's
// descriptor, never following a symlink, with files read from the
// descriptor whose type and inode were checked (see hostdir). An entry
// found changed between the look and the read fails the step.
func mergeStage(ctx context.Context, orig *fstree.Tree, dir, keep string, stamps map[string]stageStamp, clock stageClock) (_ *fstree.Node, err error) {
	defer func() {
		if errors.Is(err, fs.ErrPermission) && !errors.Is(err, errUnreadable) {
			err = fmt.Errorf("%w: %w", err, errUnreadable)
		}
	}()
	out := fstree.New()
	byIno := map[uint64]*fstree.Node{}
	count := map[uint64]uint64{}
	nlink := map[uint64]uint64{}
	firstPath := map[uint64]string{}
	root, rst, err := hostdir.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	// dir's parent belongs to the scripts' user, who could put another
	// directory, or a symlink to one, in its place.
	if s, ok := stamps[""]; ok && !s.same(&rst) {
		return nil, fmt.Errorf("the staging directory %s changed after the postinst scripts ended (did one leave a process running?): it is not the directory staged", dir)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	// A path each staged file, still held in keep, was stamped at, by
	// inode: a file a script renamed or linked is found by it.
	stampedAt, err := keptFiles(keep, stamps)
	if err != nil {
		return nil, err
	}
	// The set's regular files by time and size, made when a copy that
	// kept a set file's mode and time (cp -p) first needs them.
	var byTime map[[2]int64][]*fstree.Node
	copyOf := func(n *fstree.Node) *fstree.Node {
		if byTime == nil {
			byTime = map[[2]int64][]*fstree.Node{}
			for p, s := range stamps {
				if on, err := orig.Get(p); err == nil && s.keep != "" && on.Type == fstree.Regular && on.HasMtime() {
					k := [2]int64{on.Mtime, on.Size}
					byTime[k] = append(byTime[k], on)
				}
			}
		}
		return copySource(n, byTime[[2]int64{n.Mtime, n.Size}])
	}
	// The path each staged directory held open (see holdDirs) was
	// stamped at, by inode: a directory a script renamed is found by it.
	dirAt := map[[2]uint64]string{}
	for p, s := range stamps {
		if s.held {
			dirAt[[2]uint64{s.dev, s.ino}] = p
		}
	}
	// put adds the staged entry p (name in d; d nil for the root), of
	// status st; f is the open file when it is a regular file.
	put := func(p string, d *hostdir.Dir, name string, st *hostdir.Stat, f *os.File) error {
		old, _ := orig.Get(p)
		if p == "" {
			old = orig.Root
		}
		how := stagedHow{clock: clock, copyOf: copyOf}
		if st.Mode&unix.S_IFMT == unix.S_IFREG {
			// The file staged with this inode, here or elsewhere, moved
			// or linked here, is that file, with its node.
			if q, found := stampedAt[[2]uint64{st.Dev, st.Ino}]; found {
				if on, err := orig.Get(q); err == nil && on.Type == fstree.Regular {
					old, how.staged = on, true
					s := stamps[q]
					how.untouched = s.untouched(st) && st.Mtim == s.mtime
				}
			}
		} else if s, ok := stamps[p]; ok && s.same(st) {
			how.staged = true
			how.untouched = s.untouched(st)
			_, set := clock.mtime(st)
			how.retimed = set && st.Mtim != s.mtime
		} else if q, found := dirAt[[2]uint64{st.Dev, st.Ino}]; found && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			// A staged directory a script renamed here: its inode was
			// held, so no new directory can have its number.
			if on, err := orig.Get(q); err == nil && on.Type == fstree.Dir {
				old, how.staged, how.moved = on, true, true
				_, set := clock.mtime(st)
				how.retimed = set && st.Mtim != stamps[q].mtime
			}
		}
		n, err := stagedNode(d, name, p, st, f, old, how, byIno, func(target string) string { return stageTarget(orig, p, target, dir) }, dir)
		if err != nil {
			return fmt.Errorf("/%s: %w", p, err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFREG {
			if count[st.Ino] == 0 {
				firstPath[st.Ino] = "/" + p
			}
			count[st.Ino]++
			nlink[st.Ino] = uint64(st.Nlink)
		}
		return out.Put(p, n)
	}
	visit := func(e hostdir.Entry) error {
		cp, err := fstree.Clean(e.Rel)
		if err != nil {
			return err
		}
		return put(cp, e.Dir, e.Name, e.St, e.File)
	}
	if err := put("", nil, "", &rst, nil); err != nil {
		return nil, err
	}
	if err := hostdir.Walk(ctx, root, visit, stageChanged, afterStageLstat); err != nil {
		return nil, err
	}
	kept := make(map[uint64]bool, len(stampedAt))
	for k := range stampedAt {
		kept[k[1]] = true
	}
	for ino, c := range count {
		if kept[ino] {
			c++ // its link in keep
		}
		if nlink[ino] > c {
			return nil, fmt.Errorf("%s is hard-linked to %d path(s) outside the staging root: refusing it", firstPath[ino], nlink[ino]-c)
		}
	}
	return out.Root, nil
}

// restoreSkipped puts back in t the nodes stageTree left out (skipped),
// and returns, sorted, the device paths where a script had made
// something other than a regular file, each with what it was.
//
// A device node comes back over whatever a script left at its path: the
// scripts cannot see or make one, and a regular file there is what a
// redirection the guest would send to the device (>dev/null) made, so it
// goes without a word; anything else (a directory, symlink or FIFO) was
// made on purpose, and is named. A FIFO comes back only where the scripts
// left nothing: they can make one, and may replace it. Nothing comes back
// where the scripts left no directory to hold it.
func restoreSkipped(t *fstree.Tree, skipped map[string]*fstree.Node) ([]string, error) {
	var replaced []string
	for p, n := range skipped {
		if cur, err := t.Get(p); err == nil {
			if n.Type != fstree.CharDev && n.Type != fstree.BlockDev {
				continue // the script put something else there
			}
			if cur.Type != fstree.Regular {
				replaced = append(replaced, fmt.Sprintf("/%s (%s)", termsafe.Printable(p), nodeKind(cur.Type)))
			}
			if err := t.Remove(p); err != nil {
				return nil, err
			}
		}
		parent := p[:max(strings.LastIndexByte(p, '/'), 0)]
		if pn, err := t.Get(parent); err == nil && pn.Type == fstree.Dir {
			if err := t.Put(p, n); err != nil {
				return nil, err
			}
		}
	}
	slices.Sort(replaced)
	return replaced, nil
}

// nodeKind names a type of entry a script can make, with its article.
func nodeKind(t fstree.Type) string {
	switch t {
	case fstree.Dir:
		return "a directory"
	case fstree.Symlink:
		return "a symlink"
	case fstree.FIFO:
		return "a FIFO"
	}
	return "a " + t.String()
}

// keptFiles returns a path each staged regular file of stamps was
// stamped at, by device and inode, for the files whose hard link in keep
// is still that file. The scripts' user cannot reach keep when it is
// another user than the builder's (when root builds); when it is the
// same, a script could remove a link there, and its file is then taken
// for a new one.
func keptFiles(keep string, stamps map[string]stageStamp) (map[[2]uint64]string, error) {
	at := map[[2]uint64]string{}
	var d *hostdir.Dir
	for p, s := range stamps {
		if s.keep == "" {
			continue
		}
		if d == nil {
			var err error
			if d, _, err = hostdir.OpenRoot(keep); err != nil {
				return nil, fmt.Errorf("postinst staging: %w", err)
			}
			defer d.Close()
		}
		st, err := d.Lstat(s.keep)
		if err == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && s.same(&st) {
			at[[2]uint64{s.dev, s.ino}] = p
		}
	}
	return at, nil
}

// errUnreadable is matched by the error of mergeStage for an entry the
// build may not read back (EACCES). Staged entries can all be read by the
// scripts' user (see stagedPerm), so a script took that away.
var errUnreadable = errors.New("a postinst script left it, or a directory above it, without read (for a directory, read and search) permission for the user the scripts ran as, so it cannot be read back")

// stageChanged is the error of mergeStage for the staged entry rel,
// which was seen as was and then could not be opened: err.
func stageChanged(rel string, was fs.FileMode, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("/%s, %s of mode %#o: %w: %w", rel, filekind.Of(was), was.Perm(), errUnreadable, err)
	}
	return fmt.Errorf("/%s changed after the postinst scripts ended (did one leave a process running?): it was %s: %w",
		rel, filekind.Of(was), err)
}

// duringStaging, when set (by tests), runs while the staging tree is
// written in tmp.
var duringStaging func(tmp string)

// afterStageLstat, when set (by tests), runs in mergeStage between
// looking at the staged entry p and reading it: there it can change the
// entry as a process the scripts left running could.
var afterStageLstat func(p string)

// readingStaged, when set (by tests), is told each staged regular file
// p that mergeStage reads back.
var readingStaged func(p string)

// stagedHow is what mergeStage knows of how a staged entry came to be
// where it is now.
type stagedHow struct {
	staged    bool                              // the inode staged for old, at its path or, for a regular file, elsewhere
	untouched bool                              // a directory's, or a staged regular file's, status unchanged since it was staged (see stageStamp)
	retimed   bool                              // a directory given a modification time other than the staged one, not the build's clock's (touch -d)
	moved     bool                              // a directory staged at another path, renamed here
	copyOf    func(n *fstree.Node) *fstree.Node // the set's file n, of a time a script set, is a mode-keeping copy of, or nil (see copySource)
	clock     stageClock                        // the build's span on the file system's clock
}

// stageClock is the span of the file system's clock from before staging
// to after the scripts ended. A staged entry's modification time inside
// it was given by the clock, by a write or the entry's creation during
// the build, and is none of the entry's own; one outside was set: the
// set's own, given back when staged (see stageTree), or one a script set
// (touch -d, cp -p, tar x), which the image keeps.
type stageClock struct{ start, end hostdir.Timespec }

// mtime returns st's modification time in Unix seconds, and whether it
// is one to keep: false for one inside c.
func (c stageClock) mtime(st *hostdir.Stat) (int64, bool) {
	if !st.Mtim.Before(c.start) && !c.end.Before(st.Mtim) {
		return 0, false
	}
	return st.Mtim.Sec, true
}

// fsNow is the file system's clock now, as the status change time a
// chmod of dir (to mode) sets: a write's time is the file system's, which
// may lag the system clock by a tick.
func fsNow(dir string, mode fs.FileMode) (hostdir.Timespec, error) {
	if err := os.Chmod(dir, mode); err != nil {
		return hostdir.Timespec{}, err
	}
	st, err := hostdir.StatPath(dir)
	return st.Ctim, err
}

// stagedNode builds the node for one staged path p, name in d, of status
// st, reusing the original node old when nothing about it changed; how
// says what is known of its history (see stagedHow). A regular file's content is read from f, opened beneath d
// and checked; a symlink's target is read beneath d: staged(T) is what a
// symlink of the original tree at p with target T was staged as, and a
// target under stage, the staging root's absolute path, is that path in
// the image.
func stagedNode(d *hostdir.Dir, name, p string, st *hostdir.Stat, f *os.File, old *fstree.Node, how stagedHow, byIno map[uint64]*fstree.Node, staged func(string) string, stage string) (*fstree.Node, error) {
	perm := uint16(st.Mode & 07777)
	// A mode never set since staging is the original's (see stagedPerm).
	// A time a script set (or the set's, staged) is kept; one the build's
	// clock gave is none.
	mtime, timed := how.clock.mtime(st)
	// A new time (touch -d, tar xp, cp -a) also changes the status, and
	// so does a rename: a directory found with its staged mode then is
	// taken as left alone (a chmod to its staged mode before either is
	// not seen).
	kept := func(t fstree.Type) bool {
		return old != nil && old.Type == t && perm == stagedPerm(old) &&
			(how.untouched || how.retimed || how.moved)
	}
	fresh := func(n *fstree.Node) *fstree.Node {
		n.Perm = perm
		if old != nil {
			n.UID, n.GID = old.UID, old.GID
		}
		if timed {
			n.Mtime, n.MtimeSet = mtime, true
		}
		return n
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if kept(fstree.Dir) {
			// Its mode as staged, its status changed only by entries
			// added or removed, or by a new time (touch -d) and no
			// chmod: its own mode.
			nd := fstree.NewDir(old.Perm)
			nd.UID, nd.GID, nd.Mtime, nd.MtimeSet = old.UID, old.GID, old.Mtime, old.MtimeSet
			if timed {
				nd.Mtime, nd.MtimeSet = mtime, true
			}
			return nd, nil
		}
		return fresh(fstree.NewDir(perm)), nil
	case unix.S_IFLNK:
		target, err := d.Readlink(name)
		if err != nil {
			return nil, fmt.Errorf("changed after the postinst scripts ended (did one leave a process running?): it was a symlink: %w", err)
		}
		if old != nil && old.Type == fstree.Symlink && (old.Target == target || staged(old.Target) == target) {
			return old, nil
		}
		if target == stage {
			target = "/"
		} else if rest, ok := strings.CutPrefix(target, stage+"/"); ok {
			target = "/" + filepath.ToSlash(rest)
		}
		if err := fstree.CheckSymlink(p, target); err != nil {
			return nil, err
		}
		return fresh(fstree.NewSymlink(target)), nil
	case unix.S_IFREG:
		if n := byIno[st.Ino]; n != nil {
			return n, nil
		}
		if how.untouched && old != nil && old.Type == fstree.Regular && old.Size == st.Size && perm == stagedPerm(old) {
			// Not written, chmod-ed, linked or renamed since it was
			// staged: each of those sets the status change time, which
			// only the clock gives (see clockPast), so it holds the set's
			// bytes and is not read back (which doubled a build's memory).
			byIno[st.Ino] = old
			return old, nil
		}
		if readingStaged != nil {
			readingStaged(p)
		}
		n, err := readStaged(f, st.Size)
		if err != nil {
			return nil, err
		}
		var src *fstree.Node
		if perm&stageMarker != 0 && !how.staged && timed && how.copyOf != nil {
			n.Perm, n.Mtime = perm, mtime // fresh sets both again
			src = how.copyOf(n)
		}
		perm = filePerm(perm, old, src, how.staged, func() bool { return timed && !sameContent(old, n) })
		n = fresh(n)
		if old != nil && old.Type == fstree.Regular && old.Perm == perm && sameContent(old, n) &&
			(!n.HasMtime() || old.HasMtime() && old.Mtime == n.Mtime) {
			n = old
		}
		byIno[st.Ino] = n
		return n, nil
	case unix.S_IFIFO:
		return fresh(&fstree.Node{Type: fstree.FIFO}), nil
	}
	return nil, fmt.Errorf("a postinst script left a %s (mode %#o): only files, directories, symlinks and FIFOs are allowed", fileKind(st.Mode), st.Mode)
}

// filePerm is the mode of a staged regular file found with mode perm,
// old the set's node for it (the file staged with its inode when staged,
// else the set's file at its path, if any), src the set's file it is a
// copy of, when known (see copySource); copied reports whether the
// file now holds other content than old's with a time a script set, as
// cp -p over it leaves it. A mode without stageMarker was set by a script (a
// numeric chmod) or is a new file's: it stays, setuid and setgid
// included. One with it was set by no script, or changed by a symbolic
// chmod only, on the set's file, or is a copy of a set's file that kept
// the mode (cp -p, sed -i): the change from the staged mode (a bit the
// script added or cleared) applies to the set's own mode. A copy's owner
// is not the set file's (the owner of its path, or root's), so it never
// keeps setuid or setgid (as GNU cp -p drops them when it cannot keep the
// owner); nor does a set's file that cp -p wrote over (new content, the
// copied time) get one it did not have: cp -p sets the copied mode as a
// symbolic chmod u+s after a write does, but only a copy sets the time.
func filePerm(perm uint16, old, src *fstree.Node, staged bool, copied func() bool) uint16 {
	if perm&stageMarker == 0 {
		return perm
	}
	if src != nil {
		return src.Perm &^ 06000
	}
	if old == nil || old.Type != fstree.Regular {
		return perm &^ (stageMarker | 06000)
	}
	sp := stagedPerm(old)
	if !staged {
		// A copy that kept the mode of the file at its path (sed -i, or
		// cp -p F F.new && mv F.new F) is a copy of that file.
		if perm&^06000 == sp&^06000 {
			return old.Perm &^ 06000
		}
		return perm &^ (stageMarker | 06000)
	}
	cleared, added := sp&^perm&06777, perm&^sp&06777
	if added&06000&^old.Perm != 0 && copied() {
		added &^= 06000
	}
	return old.Perm&^cleared | added
}

// copySource returns the one set's file of cands (files of n's time and
// size) that the new file n, of its staged mode with the marker, is a
// copy of: staged with n's mode and holding n's content. When several
// such files differ in their own mode, or none is found, it returns nil.
func copySource(n *fstree.Node, cands []*fstree.Node) *fstree.Node {
	var src *fstree.Node
	for _, c := range cands {
		if stagedPerm(c)&^06000 != n.Perm&^06000 || !sameContent(c, n) {
			continue
		}
		if src != nil && src.Perm&^06000 != c.Perm&^06000 {
			return nil
		}
		src = c
	}
	return src
}

// stageTarget is the target the staged copy of symlink p of t, whose
// target is target, gets in the staging root stage (an absolute host
// path). A relative target that neither climbs above the root nor climbs
// out of a symlink ("a/.." where a is one) stays inside the staging root
// as it is and is kept. Any other is resolved as the guest would, in t:
// from the root for an absolute target, ".." at the root staying there, t's
// symlinks before the last name followed. The result is the host path of
// that resolution under stage: it has no "..", so following it walks only
// stage's directories and t's symlinks, each staged the same way. A
// resolution that would loop gets a link to itself, which loops on the
// host too. One that climbs with ".." out of a name t does not have as a
// directory (/x/.. with no /x) fails in the guest, and gets a target that
// does not resolve either (see stageMissing), not the directory above.
func stageTarget(t *fstree.Tree, p, target, stage string) string {
	relative := !strings.HasPrefix(target, "/")
	if relative && !slices.Contains(strings.Split(target, "/"), "..") {
		return target
	}
	var cur []string
	if relative {
		cur = strings.Split(p, "/")
		cur = cur[:len(cur)-1]
	}
	pending := strings.Split(target, "/")
	hops, moved, broken := 0, false, false
	for len(pending) > 0 {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(cur) == 0 {
				moved = true // the guest stays at the root; the host would not
				continue
			}
			if n, err := t.Get(strings.Join(cur, "/")); err != nil || n.Type != fstree.Dir {
				broken = true // the guest's lookup fails here
			}
			cur = cur[:len(cur)-1]
			continue
		}
		if len(pending) > 0 {
			if n, err := t.Get(strings.Join(append(cur[:len(cur):len(cur)], c), "/")); err == nil && n.Type == fstree.Symlink {
				if hops++; hops > maxSymlinks {
					return path.Base(p)
				}
				moved = true
				if strings.HasPrefix(n.Target, "/") {
					cur = nil
				}
				pending = append(strings.Split(n.Target, "/"), pending...)
				continue
			}
		}
		cur = append(cur, c)
	}
	switch {
	case relative && !moved:
		return target // the host looks up the same names, in stage
	case broken:
		return filepath.Join(filepath.Dir(stage), stageMissing)
	}
	return filepath.Join(stage, filepath.FromSlash(strings.Join(cur, "/")))
}

// stageMissing is where, beside the staging root, a staged symlink points
// whose target does not resolve in the guest: a name in a directory that
// does not exist, so that following it fails, also to create a file.
const stageMissing = "missing/name"

func fileKind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFCHR, unix.S_IFBLK:
		return "device node"
	}
	return "special file"
}
