package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/smolvmm/smolvmm/vmm"
)

// console connects the guest's serial port to the process's terminal. On a
// terminal it switches to raw mode (so Ctrl-C reaches the guest), again
// when continued after a stop (a shell puts its own mode back meanwhile),
// and reads the escape sequence Ctrl-A x to quit, as QEMU's -nographic
// does. restore puts the terminal back and is safe to call on every exit
// path.
type console struct {
	in  io.Reader
	out io.Writer
	// onQuit serves Ctrl-A x, as escapeReader's quit (run.go: quitKey).
	onQuit func() (now bool)
	// onSnapshot, when set, serves Ctrl-A s (snapshot.go).
	onSnapshot func()

	fd int
	// saved is the terminal's state before raw mode (nil off a
	// terminal); termios is the same state as the kernel's struct, which
	// the seccomp filter's trap handler writes back itself (x/term's
	// State is opaque).
	saved   *term.State
	termios *unix.Termios
	// raw is raw mode's state, set again on SIGCONT; pgrp is the
	// process's group, 0 where its PID namespace does not show it
	// (--jail).
	raw  *unix.Termios
	pgrp int
	once sync.Once
	// mu orders raw mode set again against restore: once restored
	// (restored set), the terminal is left as it was found.
	mu       sync.Mutex
	restored bool
	// fatal gets fatalSignals and cont SIGCONT while the terminal is
	// raw; done ends their watch (watch), which closes watched when it
	// has returned.
	fatal   chan os.Signal
	cont    chan os.Signal
	done    chan struct{}
	watched chan struct{}
}

const escapeByte = 0x01 // Ctrl-A

// openConsole puts a terminal stdin in raw mode with the Ctrl-A escapes;
// snapshots says whether the command has --snapshot, for Ctrl-A s.
func openConsole(stdin, stdout *os.File, snapshots bool) (*console, error) {
	c := &console{out: stdout, fd: int(stdin.Fd())}
	t, err := unix.IoctlGetTermios(c.fd, unix.TCGETS)
	if err != nil {
		// Not a terminal: pass input through untouched.
		c.in = stdin
		return c, nil
	}
	// Go's end on fatalSignals runs no deferred function: the terminal
	// is put back first, as the seccomp filter's SIGSYS handler does.
	// Caught before raw mode (watch serves one caught meanwhile once it
	// starts): one between raw mode and the Notify ended the process
	// with the terminal left raw.
	c.fatal, c.cont = make(chan os.Signal, len(fatalSignals)), make(chan os.Signal, 1)
	c.done, c.watched = make(chan struct{}), make(chan struct{})
	signal.Notify(c.fatal, fatalSignals...)
	signal.Notify(c.cont, unix.SIGCONT)
	// Set first: a line in "\r\n" on a terminal still cooked is the
	// same line, one in "\n" on a raw one a staircase.
	terminalRaw.Store(true)
	saved, err := term.MakeRaw(c.fd)
	if err != nil {
		terminalRaw.Store(false)
		c.unnotify()
		return nil, fmt.Errorf("terminal raw mode: %w", err)
	}
	c.saved, c.termios = saved, t
	if c.raw, err = unix.IoctlGetTermios(c.fd, unix.TCGETS); err != nil {
		_ = term.Restore(c.fd, saved)
		terminalRaw.Store(false)
		c.unnotify()
		return nil, fmt.Errorf("terminal raw mode: %w", err)
	}
	c.pgrp = unix.Getpgrp() // before the filter, which has no getpgrp
	go func() {
		c.watch()
		close(c.watched)
	}()
	e := &escapeReader{r: stdin, help: newRawLogWriter(os.Stderr), quit: func() bool {
		if c.onQuit != nil {
			return c.onQuit()
		}
		return true
	}}
	if snapshots {
		e.snapshot = func() {
			if c.onSnapshot != nil {
				c.onSnapshot()
			}
		}
	}
	c.in = e
	return c, nil
}

// unnotify undoes openConsole's signal.Notify when raw mode failed: a
// fatal signal caught meanwhile is sent again, to be Go's default.
func (c *console) unnotify() {
	signal.Stop(c.fatal)
	signal.Stop(c.cont)
	for {
		select {
		case sig := <-c.fatal:
			if sig != unix.SIGPIPE {
				signal.Reset(sig)
				_ = unix.Kill(os.Getpid(), sig.(syscall.Signal))
			}
		default:
			return
		}
	}
}

// fatalSignals are the signals on which Go's runtime ends the process
// without running deferred functions, and which another process may send
// or a write cause: SIGQUIT, SIGABRT and SIGTRAP (a stack dump, status 2)
// and SIGPIPE (a write to a standard output or error whose reader went
// away: status 141).
var fatalSignals = []os.Signal{unix.SIGQUIT, unix.SIGABRT, unix.SIGTRAP, unix.SIGPIPE}

// restore puts the terminal back as openConsole found it (only the first
// call does) and returns once the watch of fatalSignals and SIGCONT has
// ended: one of them received before it is served first.
func (c *console) restore() {
	c.restoreTerminal()
	if c.watched != nil {
		<-c.watched
	}
}

// restoreTerminal is restore without the wait, for watch itself. In the
// background (bg) it leaves the terminal alone: it is the shell's, which
// put its own mode back when the job stopped, and a TCSETS there would
// have the kernel send the group SIGTTOU, which stops the process instead
// of letting it exit.
func (c *console) restoreTerminal() {
	c.once.Do(func() {
		if c.saved != nil {
			c.mu.Lock()
			if c.foreground() {
				_ = term.Restore(c.fd, c.saved)
			}
			c.restored = true
			terminalRaw.Store(false)
			c.mu.Unlock()
			// Only now: a fatal signal until then still restores.
			// Stop returns once a signal sent before it is in
			// c.fatal, where watch finds it.
			signal.Stop(c.fatal)
			signal.Stop(c.cont)
			close(c.done)
		}
	})
}

// watch waits, while the terminal is raw, for fatalSignals and SIGCONT.
// On SIGQUIT, SIGABRT or SIGTRAP it restores the terminal and sends the
// signal again, to be Go's default: the stack dump and status 2 the
// README promises. For SIGPIPE it does what Go does, which asking for the
// signal turned off: it ends the process of SIGPIPE once a write to
// standard output or error has failed with EPIPE (brokenOut, brokenPipe),
// and ignores a SIGPIPE from any other descriptor. On SIGCONT (a shell's fg or bg after a stop, which
// put the shell's own mode back meanwhile: Ctrl-C then killed the VMM) it
// sets raw mode again once the process is in the foreground: at once
// after fg; after bg, when a later fg brings it there, which sends no
// signal to a running job, so it looks every rawPoll until then. A fatal
// signal received before restore is served when restore ends the watch
// (the guest's end and a write to a closed pipe race). The seccomp filter
// allows all of it (TCSETS, TIOCGPGRP, poll, the runtime's timers,
// rt_sigaction of these signals, and kill and tgkill of the process
// itself).
func (c *console) watch() {
	var ticker *time.Ticker
	var poll <-chan time.Time // nil but in the background
	defer func() {
		if ticker != nil {
			ticker.Stop()
		}
	}()
	for {
		select {
		case sig := <-c.fatal:
			if c.fatalSignal(sig.(syscall.Signal)) {
				return
			}
		case <-brokenOut.broken:
			c.restoreTerminal()
			brokenPipe(brokenOut.File())
			return
		case <-c.cont:
			if !c.rawAgain() && ticker == nil {
				ticker = time.NewTicker(rawPoll)
				poll = ticker.C
			}
		case <-poll:
			if c.rawAgain() {
				ticker.Stop()
				ticker, poll = nil, nil
			}
		case <-c.done:
			for {
				select {
				case sig := <-c.fatal:
					if c.fatalSignal(sig.(syscall.Signal)) {
						return
					}
				case <-brokenOut.broken:
					brokenPipe(brokenOut.File())
					return
				default:
					return
				}
			}
		}
	}
}

// fatalSignal serves sig, one of fatalSignals, and reports whether the
// watch is over: false for a SIGPIPE, which the watch serves only once a
// write to standard output or error has failed with EPIPE (brokenOut; it
// may return after the signal is here): Go ignores a SIGPIPE from any
// other descriptor (a socket of the network's).
func (c *console) fatalSignal(sig syscall.Signal) bool {
	if sig == unix.SIGPIPE {
		return false
	}
	c.restoreTerminal()
	signal.Reset(sig)
	_ = unix.Kill(os.Getpid(), sig)
	return true
}

// brokenPipe ends the process of SIGPIPE, status 141, as Go's runtime
// does for a write to f, a standard output or error without a reader,
// once no one asks for the signal: by such a write (the runtime sets the
// default action, unblocks and raises it; a kill would be ignored). A
// write that fails otherwise (EIO: a terminal hung up, whose poll says
// POLLHUP too) returns. Where another handler of SIGPIPE is left (a
// jailed VMM, PID 1 of its namespace, ends itself with 141 on SIGPIPE),
// the write returns EPIPE and the process ends with 141 here.
func brokenPipe(f *os.File) {
	if _, err := f.Write([]byte{'\n'}); errors.Is(err, syscall.EPIPE) {
		os.Exit(128 + int(unix.SIGPIPE))
	}
}

// foreground reports whether the process is in the terminal's foreground
// process group, or cannot tell: one whose PID namespace does not show its
// group (--jail: 0), or a terminal that fails TIOCGPGRP (hung up, where
// TCSETS fails too).
func (c *console) foreground() bool {
	return c.pgrp == 0 || inForeground(c.fd, c.pgrp)
}

// inForeground reports whether process group pgrp is the foreground one
// of terminal fd, or cannot tell (TIOCGPGRP fails: hung up).
func inForeground(fd, pgrp int) bool {
	fg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	return err != nil || fg == pgrp
}

// rawIfForeground sets mode raw on terminal fd if process group pgrp is
// its foreground one, and reports whether the wait for the foreground is
// over: the mode set, or a terminal that fails TIOCGPGRP (hung up), on
// which none is set.
func rawIfForeground(fd, pgrp int, raw *unix.Termios) bool {
	fg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	switch {
	case err != nil:
		return true
	case fg != pgrp:
		return false
	}
	_ = unix.IoctlSetTermios(fd, unix.TCSETS, raw)
	return true
}

// rawPoll is how often a console continued in the background looks
// whether it is in the foreground again.
const rawPoll = 200 * time.Millisecond

// rawAgain sets raw mode again if the process is in the foreground, and
// reports whether that is done with: false while it is in the background
// (bg), where the terminal is the shell's. A terminal restored, or one
// that fails TIOCGPGRP (hung up), is done with. So is a process whose
// PID namespace does not show its group (--jail: 0), which cannot tell
// foreground from background and leaves the terminal alone: in the
// background its TCSETS would have the kernel send SIGTTOU to the group,
// which PID 1 of a namespace ignores, and restart the call, for good.
func (c *console) rawAgain() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.restored || c.pgrp == 0 {
		return true
	}
	return rawIfForeground(c.fd, c.pgrp, c.raw)
}

// terminalRaw is whether a console has the process's terminal in raw
// mode, where output processing is off: a line must end "\r\n" to start
// the next one at the left (rawLogWriter).
var terminalRaw atomic.Bool

// rawLogWriter is w, a terminal (tty) or not, for the -v log (Config.Log:
// the boot plan, the seccomp note, the ports no device answers; the
// network's lines): while terminalRaw, its writes to a terminal end each
// line "\r\n", as the command's own notices on a raw terminal do.
type rawLogWriter struct {
	w   io.Writer
	tty bool
}

// newRawLogWriter is the log writer for f.
func newRawLogWriter(f *os.File) *rawLogWriter {
	return &rawLogWriter{w: f, tty: term.IsTerminal(int(f.Fd()))}
}

func (l *rawLogWriter) Write(p []byte) (int, error) {
	if !l.tty || !terminalRaw.Load() || !bytes.Contains(p, []byte{'\n'}) {
		n, err := l.w.Write(p)
		brokenOut.note(l.w, err)
		return n, err
	}
	out := make([]byte, 0, len(p)+bytes.Count(p, []byte{'\n'}))
	for i, b := range p {
		if b == '\n' && (i == 0 || p[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, b)
	}
	if _, err := l.w.Write(out); err != nil {
		brokenOut.note(l.w, err)
		return 0, err
	}
	return len(p), nil
}

// escapeHelp is what Ctrl-A h prints, as QEMU's does: lines ended with
// CR LF, since the terminal is in raw mode.
// The C-a s line is left out for a command without --snapshot (demo),
// where the key does nothing. It says what --snapshot-exit makes of the
// key, which the console is not told.
func escapeHelp(snapshot bool) string {
	s := "\r\nC-a h    print this help\r\n" +
		"C-a x    quit smolvmm (the guest is stopped: exit status 130)\r\n"
	if snapshot {
		s += "C-a s    write a snapshot of the VM to the --snapshot file now\r\n" +
			"         (with --snapshot-exit, the VM then stops: exit status 0)\r\n"
	}
	return s + "C-a C-a  send C-a to the guest\r\n"
}

// escapeReader strips the Ctrl-A escape: Ctrl-A x quits, Ctrl-A s
// snapshots (when snapshot is set), Ctrl-A Ctrl-A
// sends one Ctrl-A, Ctrl-A h (or ?) writes the keys' help on help, and
// Ctrl-A followed by anything else is dropped. Each Read reads r once, and
// returns nothing when all it read was escapes: the VM then waits for stdin
// itself (vmm.FileInput) and reads it only when it has data, so no read of
// the terminal outlives the VM.
type escapeReader struct {
	r io.Reader
	// quit serves Ctrl-A x and reports whether the run stops now (Read
	// then returns io.EOF); false when it stops once a Ctrl-A s snapshot
	// is written (quitKey): Read then reads on, serving only Ctrl-A x
	// (quit again) and h, and drops what else is typed, which is no
	// longer meant for the guest.
	quit     func() (now bool)
	snapshot func()    // nil: Ctrl-A s is dropped
	help     io.Writer // the console's stderr; nil: no help
	pending  bool
	quitting bool // quit said false
}

var _ vmm.FileInput = (*escapeReader)(nil)

// File is the terminal the escapes are read from (nil if r is no file).
func (e *escapeReader) File() *os.File {
	f, _ := e.r.(*os.File)
	return f
}

func (e *escapeReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	out := p[:0]
	for _, b := range p[:n] {
		switch {
		case e.pending:
			e.pending = false
			switch b {
			case 'x', 'X':
				if e.quit() {
					return len(out), io.EOF
				}
				e.quitting = true
			case 's', 'S':
				if e.snapshot != nil && !e.quitting {
					e.snapshot()
				}
			case escapeByte:
				if !e.quitting {
					out = append(out, b)
				}
			case 'h', 'H', '?':
				if e.help != nil {
					io.WriteString(e.help, escapeHelp(e.snapshot != nil))
				}
			}
		case b == escapeByte:
			e.pending = true
		case !e.quitting:
			out = append(out, b)
		}
	}
	return len(out), err
}
