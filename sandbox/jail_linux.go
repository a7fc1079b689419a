package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A Go process cannot move itself into new namespaces once its runtime has
// started threads: unshare(CLONE_NEWNS) is refused to a process whose
// threads share their file system state, CLONE_NEWPID only applies to
// children, and a network namespace would hold the calling thread alone.
// So, as Firecracker's jailer does, the process starts a copy of itself in
// them (Jail) and that copy, the jailed VMM, finishes the job (EnterJail).

// Jail says which namespaces a jailed process gets. Mount, PID, IPC and UTS
// namespaces are always new.
type Jail struct {
	// Net gives the process a network namespace of its own, holding only
	// a loopback interface that is down: no route anywhere. Descriptors
	// opened before (a tap) keep working.
	Net bool
	// Stopped, when set, is called by Run in job control's stop (see
	// Run), once the jailed process is stopped and before the caller
	// stops; Continued each time Run continues the jailed process: once
	// both run again after such a stop, and on any other SIGCONT.
	Stopped, Continued func()
}

// Flags are the clone flags of the namespaces j asks for.
func (j Jail) Flags() uintptr {
	f := uintptr(unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS)
	if j.Net {
		f |= unix.CLONE_NEWNET
	}
	return f
}

// String names the namespaces, for messages.
func (j Jail) String() string {
	if j.Net {
		return "mount, PID, IPC, UTS and network namespaces"
	}
	return "mount, PID, IPC and UTS namespaces"
}

// ErrNamespaces is wrapped when the kernel refuses to create the
// namespaces (no CAP_SYS_ADMIN, a container that forbids them, a limit
// reached).
var ErrNamespaces = errors.New("the kernel refused to create the namespaces")

// ForwardedSignals are the signals Run passes on to the jailed process:
// those a terminal, a service manager or a user sends to stop it. SIGUSR1,
// SIGUSR2 and SIGALRM are not among them: a Go program ignores them unless
// it asks for them, and the jailed VMM, like the unjailed one, does not.
// SIGHUP is left out when it was ignored at exec (nohup): Run neither
// catches it, which would undo the ignore the jailed process inherits,
// nor passes it on.
var ForwardedSignals = forwardedSignals(signal.Ignored(syscall.SIGHUP))

// forwardedSignals is ForwardedSignals when SIGHUP was ignored at exec or
// not. Read once, at the start: signal.Notify clears the ignore for good.
func forwardedSignals(hupIgnored bool) []os.Signal {
	sigs := []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT}
	if !hupIgnored {
		sigs = append(sigs, syscall.SIGHUP)
	}
	return sigs
}

// Exit is how a process ended: its exit code, or the signal that killed
// it.
type Exit struct {
	// Code is the process's exit code when no signal killed it.
	Code int
	// Signal is the signal that killed the process, or 0.
	Signal syscall.Signal
}

// Status is the exit status as a shell reports it: Code, or 128+n when
// signal n killed the process.
func (e Exit) Status() int {
	if e.Signal != 0 {
		return 128 + int(e.Signal)
	}
	return e.Code
}

// jobSignals are the signals of job control, which Run proxies: the
// jailed process, PID 1 of its namespace, ignores those whose default
// action is to stop it (the kernel drops them), SIGSTOP from outside
// its namespace excepted.
var jobSignals = []os.Signal{syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGCONT}

// Run starts cmd in the namespaces j asks for, passes the signals of
// ForwardedSignals on to it until it ends (the process inherits an
// ignored SIGHUP), and returns how it ended (its exit code, or the
// signal that killed it). It proxies job control: on SIGTSTP, SIGTTIN or
// SIGTTOU (a shell's stop, a read or write of the terminal in the
// background) it stops the process with SIGSTOP, then stops the caller
// with the same signal (StopSelf), which its shell waits for; continued,
// it continues the process, as it does on any SIGCONT. cmd's SysProcAttr
// is set here; the process is killed if the caller dies. cmd.ExtraFiles
// are closed once the process holds its copies. An error means the
// process did not start.
func (j Jail) Run(cmd *exec.Cmd) (Exit, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: j.Flags(), Pdeathsig: syscall.SIGKILL}
	sigs := make(chan os.Signal, 8)
	// Caught before the start, so that none is lost nor kills the caller
	// while the jailed process runs; stopped after its end.
	signal.Notify(sigs, ForwardedSignals...)
	defer signal.Stop(sigs)
	jobs := make(chan os.Signal, 4)
	signal.Notify(jobs, jobSignals...)
	defer signal.Stop(jobs)
	if err := cmd.Start(); err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EUSERS) {
			return Exit{}, fmt.Errorf("%s for %s: %w: %w", j, cmd.Path, ErrNamespaces, err)
		}
		return Exit{}, fmt.Errorf("start %s in %s: %w", cmd.Path, j, err)
	}
	for _, f := range cmd.ExtraFiles {
		f.Close()
	}
	done := make(chan struct{})
	forwarded := make(chan struct{})
	go func() {
		defer close(forwarded)
		for {
			select {
			case s := <-sigs:
				_ = cmd.Process.Signal(s)
			case s := <-jobs:
				if s != syscall.SIGCONT {
					_ = cmd.Process.Signal(syscall.SIGSTOP)
					if j.Stopped != nil {
						j.Stopped()
					}
					StopSelf(s.(syscall.Signal))
				}
				// Also after a stop the kernel discarded (the
				// caller's process group orphaned).
				_ = cmd.Process.Signal(syscall.SIGCONT)
				if j.Continued != nil {
					j.Continued()
				}
			case <-done:
				return
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	<-forwarded
	st, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	switch {
	case ok && st.Signaled():
		return Exit{Signal: st.Signal()}, nil
	case ok && st.Exited():
		return Exit{Code: st.ExitStatus()}, nil
	case err != nil:
		return Exit{}, fmt.Errorf("wait for %s: %w", cmd.Path, err)
	}
	return Exit{Code: cmd.ProcessState.ExitCode()}, nil
}

// StopSelf stops the calling process with sig (SIGTSTP, SIGTTIN or
// SIGTTOU), as its default action does, and returns once the process is
// continued: its parent (a shell) sees it stopped by sig. Go's handler,
// which drops the signal once asked for (signal.Notify) unless someone
// gets it, is set aside meanwhile: sig is sent to the calling thread
// with the default action in place, and the kernel stops the process
// before the call returns. The kernel discards the signal, and the
// process goes on, when its process group is orphaned.
func StopSelf(sig syscall.Signal) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// A struct sigaction of any architecture's layout: zero is SIG_DFL,
	// no flags, no mask; the old one is put back as it was read.
	var dfl, old [8]uint64
	const sigsetSize = 8
	if _, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&dfl)), uintptr(unsafe.Pointer(&old)), sigsetSize, 0, 0); e != 0 {
		_ = unix.Kill(os.Getpid(), unix.SIGSTOP)
		return
	}
	_ = unix.Tgkill(os.Getpid(), unix.Gettid(), sig)
	_, _, _ = unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&old)), 0, sigsetSize, 0, 0)
}

// ErrNotJailed means EnterJail was called by a process that Run did not
// start: it is not the first process of a PID namespace of its own.
var ErrNotJailed = errors.New("not the first process of a new PID namespace")

// EnterJail is what the process Jail.Run started does first: it checks that
// it is the first process (PID 1) of its own PID namespace, makes every
// mount of its mount namespace private (MS_REC|MS_PRIVATE), so that no
// mount or unmount propagates between it and the host, mounts a /proc
// that shows that PID namespace only (mountProc), and takes over
// what PID 1 does not get for free (HandleSignalsAsPID1): for
// exitSignals a handler ends the process with 128+n itself, as the
// unjailed VMM ends (restore the terminal from the caller of Run, which
// outlives it). The signals the caller handles itself (signal.Notify)
// are its own; those Go ignores (SIGUSR1, SIGUSR2, SIGALRM) are ignored
// here too.
//
// PID 1 also inherits orphans to reap; a jailed VMM starts no process
// (its filter forbids it) and so has none.
func EnterJail() error {
	if os.Getpid() != 1 {
		return fmt.Errorf("enter jail: pid %d: %w", os.Getpid(), ErrNotJailed)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("enter jail: make / and the mounts below it private: %w", err)
	}
	if err := mountProc(); err != nil {
		return err
	}
	HandleSignalsAsPID1(nil)
	return nil
}

// pid1Once makes HandleSignalsAsPID1's first call its only one.
var pid1Once sync.Once

// HandleSignalsAsPID1 takes over, in a process that is PID 1 of its PID
// namespace (a container's entrypoint, unshare --pid --fork, a jail:
// EnterJail calls it), what the kernel does not do for PID 1: it ignores
// the signals for which PID 1 has no handler, so that the SIGPIPE Go
// raises to die of a write to a standard output or error without a
// reader is ignored, and Go exits with status 2, saying nothing. A
// handler ends the process with 128+n on exitSignals instead, as any
// other process ends (status 141 for SIGPIPE): for SIGPIPE only when poll
// shows standard output or error broken, as Go ignores one raised by a
// write to another descriptor (a socket's), and not while leave (if not
// nil) reports true: the caller then ends the process itself, once it
// has put back what it must (a terminal in raw mode); the write that
// raised the signal returns EPIPE to it. In any other process it does
// nothing; only its first call does anything.
func HandleSignalsAsPID1(leave func() bool) {
	if os.Getpid() != 1 {
		return
	}
	pid1Once.Do(func() {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, exitSignals...)
		go exitOn(sigs, func() bool { return (leave == nil || !leave()) && outputBroken(1, 2) }, os.Exit)
	})
}

// exitOn ends the process (exit) with 128+n on the first of sigs that
// Go would end it of: a SIGPIPE only when broken says standard output or
// error has lost its reader, as Go ignores one from any other descriptor
// (a socket of the network's, reset by its host).
func exitOn(sigs <-chan os.Signal, broken func() bool, exit func(int)) {
	for s := range sigs {
		if s == syscall.SIGPIPE && !broken() {
			continue
		}
		exit(128 + int(s.(syscall.Signal)))
		return
	}
}

// outputBroken reports whether poll says one of fds, a pipe or a socket,
// has lost its reader: a pipe's POLLERR, a socket's POLLHUP. A terminal's
// POLLHUP (hung up) is not that: its writes fail with EIO, and raise no
// SIGPIPE. fstat tells them apart (the seccomp filter allows it, not
// every ioctl).
func outputBroken(fds ...int) bool {
	pfds := make([]unix.PollFd, len(fds))
	for i, fd := range fds {
		pfds[i] = unix.PollFd{Fd: int32(fd), Events: unix.POLLOUT}
	}
	if n, err := unix.Poll(pfds, 0); err != nil || n == 0 {
		return false
	}
	for i, p := range pfds {
		if p.Revents&(unix.POLLERR|unix.POLLHUP) == 0 {
			continue
		}
		var st unix.Stat_t
		if unix.Fstat(fds[i], &st) != nil {
			continue
		}
		if t := st.Mode & unix.S_IFMT; t == unix.S_IFIFO || t == unix.S_IFSOCK {
			return true
		}
	}
	return false
}

// mountProc puts a procfs of the process's own PID namespace on /proc, in
// place of the host's (detached, not covered, so that no unmount brings
// it back): the host's listed every process of the host, their command
// lines and environments as far as the VMM's user may read them. What
// the VMM opens later (/proc/self/pagemap, /proc/self/fd, /proc/self/exe
// for the broker) then names the VMM as its namespace numbers it.
func mountProc() error {
	if err := unix.Unmount("/proc", unix.MNT_DETACH); err != nil && err != unix.EINVAL {
		return fmt.Errorf("enter jail: detach the host's /proc: %w", err)
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("enter jail: mount a /proc of its PID namespace: %w", err)
	}
	return nil
}

// DieWithParent has the kernel kill the process with SIGKILL when the
// process that started it ends, as Jail.Run asks; the kernel forgets that
// on a change of credentials (DropPrivileges), so a jailed process that
// drops them calls it again after.
func DieWithParent() error {
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_PDEATHSIG): %w", err)
	}
	return nil
}

// exitSignals are the signals that end a Go program by default (the
// runtime re-raising them) and which EnterJail makes end PID 1 too
// (SIGINT, SIGTERM and SIGHUP are left to the caller's handlers, SIGQUIT
// to the runtime's stack dump).
var exitSignals = []os.Signal{syscall.SIGPIPE}

// SetName sets the name the kernel gives the process and every thread of
// it (comm: what ps, top, pgrep and pidof match and show, and the
// kernel's log of a process it kills), which exec took from the
// program's file name: a process a program starts again as
// /proc/self/exe, as Jail.Run's caller does, is otherwise "exe". The
// kernel keeps 15 bytes of name; a longer one is refused. A process
// linked with cgo cannot make a call on all its threads: there only the
// calling thread, and those it starts, take the name.
func SetName(name string) error {
	if len(name) > 15 {
		return fmt.Errorf("process name %q: longer than the kernel's 15 bytes", name)
	}
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return fmt.Errorf("process name %q: %w", name, err)
	}
	_, _, errno := syscall.AllThreadsSyscall(syscall.SYS_PRCTL, unix.PR_SET_NAME, uintptr(unsafe.Pointer(p)), 0)
	if errno == syscall.ENOTSUP {
		err = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(p)), 0, 0, 0)
	} else if errno != 0 {
		err = errno
	}
	if err != nil {
		return fmt.Errorf("prctl(PR_SET_NAME, %q): %w", name, err)
	}
	return nil
}
