package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/smolvmm/smolvmm/vmm"
)

// console connects the guest's serial port to the process's terminal. On a
// terminal it switches to raw mode (so Ctrl-C reaches the guest) and reads
// the escape sequence Ctrl-A x to quit, as QEMU's -nographic does. restore
// puts the terminal back and is safe to call on every exit path.
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
	once    sync.Once
	// quit gets SIGQUIT while the terminal is raw; done ends its
	// watch (passQuit), which closes watched when it has returned.
	quit    chan os.Signal
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
	// Go's SIGQUIT (its stack dump, status 2) runs no deferred function:
	// the terminal is put back first, as the seccomp filter's SIGSYS
	// handler does.
	c.quit, c.done, c.watched = make(chan os.Signal, 1), make(chan struct{}), make(chan struct{})
	signal.Notify(c.quit, unix.SIGQUIT)
	go func() {
		c.passQuit()
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
// call does) and returns once the SIGQUIT watch has ended.
func (c *console) restore() {
	c.restoreTerminal()
	if c.watched != nil {
		<-c.watched
	}
}

// restoreTerminal is restore without the wait, for passQuit itself.
func (c *console) restoreTerminal() {
	c.once.Do(func() {
		if c.saved != nil {
			_ = term.Restore(c.fd, c.saved)
			// Only now: a SIGQUIT until then still restores.
			signal.Stop(c.quit)
			close(c.done)
		}
	})
}

// passQuit waits, while the terminal is raw, for SIGQUIT; on it, it
// restores the terminal and sends SIGQUIT again, to be Go's default:
// the stack dump and status 2 the README promises. The seccomp filter
// allows both (TCSETS, and kill of the process itself).
func (c *console) passQuit() {
	select {
	case <-c.quit:
		c.restoreTerminal()
		signal.Reset(unix.SIGQUIT)
		_ = unix.Kill(os.Getpid(), unix.SIGQUIT)
	case <-c.done:
	}
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
