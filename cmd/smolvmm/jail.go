package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/sandbox"
)

// jailEnv marks the process runJailed started in the namespaces: the
// jailed VMM. Its value is the descriptor of the tap opened for it in the
// host's network namespace, or "-".
const jailEnv = "SMOLVMM_JAILED"

// jailForEnv names, in the jailed VMM's environment, the command the
// user gave when the VMM runs another (up, whose VM is run's): the jailed
// VMM's errors are said as that command's.
const jailForEnv = "SMOLVMM_JAILED_FOR"

// jailed is set in the jailed VMM.
var jailed bool

// jailedFor is, in a jailed VMM, the command its errors, warnings and
// counters are said as (jailForEnv), "" for its own: see commandSaid.
var jailedFor string

// commandSaid is the command the user gave, which the VMM's lines name
// (smolvmm up: ...): in a VMM jailed for another command (up's VM, which
// is run's), that command, else c's.
func commandSaid(c *cli.Context) string {
	if jailedFor != "" {
		return jailedFor
	}
	return c.Command.Name
}

// jailTapFD is the inherited tap descriptor of a jailed VMM (-1: none),
// taken by openBackend.
var jailTapFD = -1

// runJailed runs the VMM in namespaces of its own when --jail is given: it
// starts args (this program's command line for that VM) again in new
// mount, PID, IPC and UTS namespaces, and a network namespace unless the
// VM needs the host's (jailsNetwork); a tap is opened here, in the
// host's, and handed down. It passes signals on, waits, and ends
// as the jailed VMM ended. ran reports that it did all that, or failed:
// the caller returns err. Without --jail, and in the jailed VMM itself
// (which first enters its jail here), ran is false and the caller goes on.
func runJailed(c *cli.Context, args []string) (ran bool, err error) {
	ran, _, err = jailRun(c, args)
	return ran, err
}

// jailRun is runJailed, and says whether the jailed VMM's process
// started: when it did not (a flag refused, a tap that cannot be opened,
// no namespaces, a jail that failed to start), no VM ever existed.
func jailRun(c *cli.Context, args []string) (ran, started bool, err error) {
	if !hasFlag(c, "jail") || !c.Bool("jail") {
		return false, false, nil
	}
	if v, ok := os.LookupEnv(jailEnv); ok {
		if err := sandbox.EnterJail(); err != nil {
			return true, false, fmt.Errorf("--jail: %w (%s is set by smolvmm for the VMM it jails; unset it)", err, jailEnv)
		}
		os.Unsetenv(jailEnv)
		// Its console cannot tell the background (its PID namespace
		// shows no process group) and puts the terminal back at its
		// end, there too: a TCSETS that had the kernel send SIGTTOU
		// to the job (the process outside stopping it, see Jail.Run)
		// instead of letting it end. Ignored, the TCSETS is done. The
		// process outside starts it in the foreground only.
		signal.Ignore(syscall.SIGTTOU)
		jailed = true
		if v := os.Getenv(jailForEnv); v != "" && commandName([]string{"", v}) == v {
			jailedFor = v
		}
		os.Unsetenv(jailForEnv)
		if hasFlag(c, "verbose") && c.Bool("verbose") {
			fmt.Fprintf(os.Stderr, "smolvmm: jailed: the VMM is PID %d of a PID namespace of its own\n", os.Getpid())
		}
		if fd, err := strconv.Atoi(v); err == nil {
			jailTapFD = fd
		}
		return false, false, nil
	}
	if err := checkRunFlags(c); err != nil {
		return true, false, err
	}
	jail := sandbox.Jail{Net: true} // commands without --net have no network card
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = args
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// The user's own SMOLVMM_JAILED_FOR is dropped: only this process
	// says which command the jailed VMM speaks as.
	cmd.Env = append(withoutEnv(os.Environ(), jailForEnv), jailEnv+"=-")
	if hasFlag(c, "net") {
		kind, name, _ := strings.Cut(c.String("net"), ":")
		switch kind {
		case "none":
		case "tap":
			tap, err := netback.OpenTap(name)
			if err != nil {
				return true, false, err
			}
			// Closed once the VMM holds its copy (Jail.Run); a tap
			// OpenTap created goes away with the VMM's.
			defer tap.Close()
			cmd.ExtraFiles = []*os.File{tap.File()}
			cmd.Env[len(cmd.Env)-1] = jailEnv + "=3"
		}
		jail.Net = jailsNetwork(c.String("net"), hasFlag(c, "ready-port") && c.Int("ready-port") != 0)
	}
	if hasFlag(c, "ready-fd") && c.Int("ready-fd") > 2 {
		// bench's ready report (bench.Target.ReadyFlag) is the jailed
		// VMM's to write: it gets the descriptor under a number of its
		// own, after the tap's.
		cmd.ExtraFiles = append(cmd.ExtraFiles, os.NewFile(uintptr(c.Int("ready-fd")), "ready"))
		cmd.Args = withFlagValue(cmd.Args, "--ready-fd", strconv.Itoa(2+len(cmd.ExtraFiles)))
	}
	if command := commandName(cmd.Args); command != c.Command.Name {
		cmd.Env = append(cmd.Env, jailForEnv+"="+c.Command.Name)
	}
	// The jailed VMM sets the console's raw mode and restores it; if it
	// is killed, this puts the terminal back, in the foreground only (in
	// the background the terminal is the shell's, and a TCSETS would
	// have the kernel stop this process with SIGTTOU).
	if t, err := unix.IoctlGetTermios(int(os.Stdin.Fd()), unix.TCGETS); err == nil {
		jt := &jailTerminal{fd: int(os.Stdin.Fd())}
		if !inForeground(jt.fd, unix.Getpgrp()) {
			// Started in the background (&): stopped until fg, as
			// the unjailed VMM is when it sets raw mode, which the
			// jailed one would set on the shell's terminal.
			sandbox.StopSelf(syscall.SIGTTOU)
		}
		jail.Stopped, jail.Continued = jt.stopped, jt.continued
		defer func() {
			jt.end()
			if inForeground(jt.fd, unix.Getpgrp()) {
				_ = unix.IoctlSetTermios(jt.fd, unix.TCSETS, t)
			}
		}()
	}
	end, err := jail.Run(cmd)
	if errors.Is(err, sandbox.ErrNamespaces) {
		return true, false, fmt.Errorf("--jail: %w (smolvmm needs CAP_SYS_ADMIN, and a kernel or container that lets it create namespaces; run without --jail otherwise)", err)
	}
	if err != nil {
		return true, false, fmt.Errorf("--jail: %w", err)
	}
	if end.Signal != 0 {
		// Killed, it said nothing itself: the status alone was all.
		fmt.Fprintln(os.Stderr, errorLine(c.Command.Name, killedBy(end.Signal)))
	}
	if status := end.Status(); status != 0 {
		return true, true, cli.Exit("", status)
	}
	return true, true, nil
}

// jailTerminal sets the console's raw mode again for the jailed VMM,
// which cannot tell the foreground from the background (its PID
// namespace shows neither process group) and leaves the shell's mode
// after a stop. The process that waits for it can: stopped in the
// foreground (sandbox.Jail.Stopped), it reads the VMM's mode; continued
// (Continued), it sets that mode again once in the foreground: at once
// after fg; after bg, when a later fg brings it there, which sends no
// signal to a running job, so it looks every rawPoll until then.
type jailTerminal struct {
	fd   int
	mu   sync.Mutex
	raw  *unix.Termios // the VMM's mode at its last stop in the foreground
	poll *time.Ticker  // set while continued in the background
	stop chan struct{} // closed by stopPoll: the poll's goroutine returns
	done bool          // the VMM has ended: the terminal is left alone
}

// stopped is Jail.Stopped: the jailed VMM has stopped; in the foreground
// the terminal's mode is still the VMM's, kept to set again.
func (j *jailTerminal) stopped() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.stopPoll()
	if inForeground(j.fd, unix.Getpgrp()) {
		if t, err := unix.IoctlGetTermios(j.fd, unix.TCGETS); err == nil {
			j.raw = t
		}
	}
}

// continued is Jail.Continued: the mode is set again now if in the
// foreground, else by a goroutine that looks every rawPoll.
func (j *jailTerminal) continued() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.raw == nil || j.done || j.poll != nil || j.rawAgain() {
		return
	}
	j.poll, j.stop = time.NewTicker(rawPoll), make(chan struct{}) // rawPoll: console.go
	go func(tick <-chan time.Time, stop <-chan struct{}) {
		for {
			select {
			case <-stop:
				return
			case <-tick:
				j.mu.Lock()
				if j.rawAgain() {
					j.stopPoll()
				}
				j.mu.Unlock()
			}
		}
	}(j.poll.C, j.stop)
}

// rawAgain sets the VMM's mode if the process is in the foreground, and
// reports whether the look for the foreground is over: the mode set, or
// a terminal that fails TIOCGPGRP (hung up), which none is set on. j.mu
// is held.
func (j *jailTerminal) rawAgain() bool {
	return rawIfForeground(j.fd, unix.Getpgrp(), j.raw)
}

// stopPoll ends the look for the foreground, and its goroutine; j.mu is
// held.
func (j *jailTerminal) stopPoll() {
	if j.poll != nil {
		j.poll.Stop()
		close(j.stop)
		j.poll, j.stop = nil, nil
	}
}

// end is called once the VMM has ended.
func (j *jailTerminal) end() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.done = true
	j.stopPoll()
}

// withoutEnv is env without the variable name.
func withoutEnv(env []string, name string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k != name {
			out = append(out, kv)
		}
	}
	return out
}

// jailsNetwork reports whether the jailed VMM of --net spec gets a network
// namespace of its own, readyPort whether --ready-port is given. The user
// network's NAT and forwards are the host's sockets. A shared network
// (user:NAME) is reached by its socket's path, which a network namespace
// does not hide, and a tap is opened before the jail: both work in one of
// its own. A ready port's probe needs the host's loopback (a new
// namespace's is down, and the probe would never succeed).
func jailsNetwork(spec string, readyPort bool) bool {
	kind, _, _ := strings.Cut(spec, ":")
	switch {
	case kind == "none":
		return true
	case kind == "tap", isSharedNet(spec):
		return !readyPort
	}
	return false
}

// killedBy says that signal sig killed the jailed VMM, and what that
// means for the signals a VMM does not get from a user.
func killedBy(sig syscall.Signal) string {
	msg := "the jailed VMM was killed by " + unix.SignalName(sig)
	switch sig {
	case syscall.SIGSYS:
		msg += " (a forbidden system call while SIGSYS was blocked)"
	case syscall.SIGKILL:
		msg += " (by a user, or the kernel out of memory)"
	case syscall.SIGSEGV, syscall.SIGBUS, syscall.SIGILL, syscall.SIGFPE, syscall.SIGABRT:
		msg += " (a crash: please report it)"
	}
	return msg
}

// openBackend opens the network backend nc asks for; a jailed VMM takes
// the tap opened for it in the host's network namespace.
func openBackend(nc netConfig) (netback.Backend, error) {
	if kind, name, _ := strings.Cut(nc.Spec, ":"); kind == "tap" && jailTapFD >= 0 {
		fd := jailTapFD
		jailTapFD = -1
		return netback.TapFromFD(name, fd)
	}
	return netback.OpenWith(nc.Spec, nc.Forwards, nc.MAC, openOptions(nc))
}

// openOptions are the backend's settings from nc: among them, for a
// shared network, the uid the VMM will run as (its join says so, so that
// the network lets it rejoin as that user with the privileged forwards it
// joined with as root).
func openOptions(nc netConfig) netback.OpenOptions {
	return netback.OpenOptions{Logf: nc.Logf, Notef: nc.Notef, Lasting: nc.Lasting, RunsAs: nc.RunsAs}
}

// upRunArgs is the command line of smolvmm run for the VM up boots: its
// kernel, its image as ld0 and the run flags given to up.
func upRunArgs(c *cli.Context, kernel, image string) []string {
	// Long names throughout: urfave/cli refuses -d beside --disk.
	args := []string{os.Args[0], "run", "--kernel", kernel, "--disk", image}
	runs := flagNames(append(append(runFlags(), netFlags()...), snapshotWriteFlags()...))
	for _, f := range c.Command.Flags {
		name := f.Names()[0]
		if !runs[name] || !c.IsSet(name) {
			continue
		}
		switch unwrapFlag(f).(type) { // flagnames.go
		case *cli.BoolFlag:
			args = append(args, "--"+name+"="+strconv.FormatBool(c.Bool(name)))
		case *cli.StringSliceFlag:
			for _, v := range c.StringSlice(name) {
				args = append(args, "--"+name, v)
			}
		default:
			args = append(args, "--"+name, fmt.Sprint(c.Value(name)))
		}
	}
	return args
}

// withFlagValue returns args with the value of flag (given as "--flag V"
// or "--flag=V") replaced by v.
func withFlagValue(args []string, flag, v string) []string {
	out := append([]string(nil), args...)
	for i, a := range out {
		switch {
		case a == flag && i+1 < len(out):
			out[i+1] = v
			return out
		case strings.HasPrefix(a, flag+"="):
			out[i] = flag + "=" + v
			return out
		}
	}
	return out
}
