package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
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
	in     io.Reader
	out    io.Writer
	onQuit func()
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
	// quit gets SIGQUIT and cont SIGCONT while the terminal is raw;
	// done ends their watch (watch), which closes watched when it has
	// returned.
	quit    chan os.Signal
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
	saved, err := term.MakeRaw(c.fd)
	if err != nil {
		return nil, fmt.Errorf("terminal raw mode: %w", err)
	}
	c.saved, c.termios = saved, t
	if c.raw, err = unix.IoctlGetTermios(c.fd, unix.TCGETS); err != nil {
		_ = term.Restore(c.fd, saved)
		return nil, fmt.Errorf("terminal raw mode: %w", err)
	}
	c.pgrp = unix.Getpgrp() // before the filter, which has no getpgrp
	// Go's SIGQUIT (its stack dump, status 2) runs no deferred function:
	// the terminal is put back first, as the seccomp filter's SIGSYS
	// handler does.
	c.quit, c.cont = make(chan os.Signal, 1), make(chan os.Signal, 1)
	c.done, c.watched = make(chan struct{}), make(chan struct{})
	signal.Notify(c.quit, unix.SIGQUIT)
	signal.Notify(c.cont, unix.SIGCONT)
	go func() {
		c.watch()
		close(c.watched)
	}()
	e := &escapeReader{r: stdin, help: os.Stderr, quit: func() {
		if c.onQuit != nil {
			c.onQuit()
		}
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

// restore puts the terminal back as openConsole found it (only the first
// call does) and returns once the watch of SIGQUIT and SIGCONT has ended.
func (c *console) restore() {
	c.restoreTerminal()
	if c.watched != nil {
		<-c.watched
	}
}

// restoreTerminal is restore without the wait, for watch itself.
func (c *console) restoreTerminal() {
	c.once.Do(func() {
		if c.saved != nil {
			c.mu.Lock()
			_ = term.Restore(c.fd, c.saved)
			c.restored = true
			c.mu.Unlock()
			// Only now: a SIGQUIT until then still restores.
			signal.Stop(c.quit)
			signal.Stop(c.cont)
			close(c.done)
		}
	})
}

// watch waits, while the terminal is raw, for SIGQUIT and SIGCONT. On
// SIGQUIT it restores the terminal and sends SIGQUIT again, to be Go's
// default: the stack dump and status 2 the README promises. On SIGCONT
// (a shell's fg or bg after a stop, which put the shell's own mode back
// meanwhile: Ctrl-C then killed the VMM) it sets raw mode again once the
// process is in the foreground: at once after fg; after bg, when a later
// fg brings it there, which sends no signal to a running job, so it
// looks every rawPoll until then. The seccomp filter allows all of it
// (TCSETS, TIOCGPGRP, the runtime's timers, and kill of the process
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
		case <-c.quit:
			c.restoreTerminal()
			signal.Reset(unix.SIGQUIT)
			_ = unix.Kill(os.Getpid(), unix.SIGQUIT)
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
			return
		}
	}
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
	fg, err := unix.IoctlGetInt(c.fd, unix.TIOCGPGRP)
	if err != nil {
		return true
	}
	if fg != c.pgrp {
		return false
	}
	_ = unix.IoctlSetTermios(c.fd, unix.TCSETS, c.raw)
	return true
}

// escapeHelp is what Ctrl-A h prints, as QEMU's does: lines ended with
// CR LF, since the terminal is in raw mode.
// The C-a s line is left out for a command without --snapshot (demo),
// where the key does nothing.
func escapeHelp(snapshot bool) string {
	s := "\r\nC-a h    print this help\r\n" +
		"C-a x    quit smolvmm (the guest is stopped: exit status 130)\r\n"
	if snapshot {
		s += "C-a s    write a snapshot of the VM to the --snapshot file now\r\n"
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
	r        io.Reader
	quit     func()
	snapshot func()    // nil: Ctrl-A s is dropped
	help     io.Writer // the console's stderr; nil: no help
	pending  bool
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
				e.quit()
				return len(out), io.EOF
			case 's', 'S':
				if e.snapshot != nil {
					e.snapshot()
				}
			case escapeByte:
				out = append(out, b)
			case 'h', 'H', '?':
				if e.help != nil {
					io.WriteString(e.help, escapeHelp(e.snapshot != nil))
				}
			}
		case b == escapeByte:
			e.pending = true
		default:
			out = append(out, b)
		}
	}
	return len(out), err
}
