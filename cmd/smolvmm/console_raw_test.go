package main

import (
	"bytes"
	"os"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// openPTY opens a new pseudo-terminal and returns its terminal side.
func openPTY(t *testing.T) *os.File {
	t.Helper()
	_, pts := openPTYPair(t) // snapshotsafe_test.go
	return pts
}

func termiosOf(t *testing.T, f *os.File) unix.Termios {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return *tio
}

func termiosBytes(tio *unix.Termios) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(tio)), unsafe.Sizeof(*tio))
}

// TestConsoleRawMode: on a terminal the console switches to raw mode
// (no line editing, echo, signals, CR/NL translation or output
// processing; 8-bit bytes one at a time), keeps the state it found as the
// kernel's termios for the seccomp filter's handler, and restore puts that
// state back, once.
func TestConsoleRawMode(t *testing.T) {
	pts := openPTY(t)
	before := termiosOf(t, pts)
	if before.Lflag&unix.ICANON == 0 || before.Oflag&unix.OPOST == 0 {
		t.Fatalf("a new pseudo-terminal is not cooked: %+v", before)
	}
	c, err := openConsole(pts, pts, true)
	if err != nil {
		t.Fatal(err)
	}
	defer c.restore()
	raw := termiosOf(t, pts)
	for _, f := range []struct {
		name string
		on   bool
	}{
		{"ICANON", raw.Lflag&unix.ICANON != 0}, {"ECHO", raw.Lflag&unix.ECHO != 0},
		{"ISIG", raw.Lflag&unix.ISIG != 0}, {"IEXTEN", raw.Lflag&unix.IEXTEN != 0},
		{"ICRNL", raw.Iflag&unix.ICRNL != 0}, {"IXON", raw.Iflag&unix.IXON != 0},
		{"OPOST", raw.Oflag&unix.OPOST != 0}, {"PARENB", raw.Cflag&unix.PARENB != 0},
	} {
		if f.on {
			t.Errorf("raw mode left %s on", f.name)
		}
	}
	if raw.Cflag&unix.CSIZE != unix.CS8 || raw.Cc[unix.VMIN] != 1 || raw.Cc[unix.VTIME] != 0 {
		t.Errorf("raw mode: CSIZE %#x VMIN %d VTIME %d, want CS8, 1, 0", raw.Cflag&unix.CSIZE, raw.Cc[unix.VMIN], raw.Cc[unix.VTIME])
	}
	if c.termios == nil || !bytes.Equal(termiosBytes(c.termios), termiosBytes(&before)) {
		t.Errorf("the state kept for the filter's handler is %+v, want the terminal's before raw mode %+v", c.termios, before)
	}
	if _, ok := c.in.(*escapeReader); !ok {
		t.Errorf("input on a terminal is a %T, want the escape reader", c.in)
	}

	c.restore()
	if after := termiosOf(t, pts); !bytes.Equal(termiosBytes(&after), termiosBytes(&before)) {
		t.Errorf("restored to %+v, want %+v", after, before)
	}
	// Only the first restore writes: a later one must not undo what came
	// after it (a shell's own mode).
	changed := before
	changed.Lflag &^= unix.ECHO
	if err := unix.IoctlSetTermios(int(pts.Fd()), unix.TCSETS, &changed); err != nil {
		t.Fatal(err)
	}
	c.restore()
	if after := termiosOf(t, pts); after.Lflag&unix.ECHO != 0 {
		t.Error("a second restore wrote the terminal again")
	}
}

// TestConsoleNotATerminal: off a terminal the input passes through as it
// is and there is nothing to restore.
func TestConsoleNotATerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	c, err := openConsole(r, w, true)
	if err != nil {
		t.Fatal(err)
	}
	c.restore()
	if c.in != r || c.saved != nil || c.termios != nil {
		t.Errorf("console on a pipe: input %v, saved %v, termios %v; want the pipe itself and no terminal state", c.in, c.saved, c.termios)
	}
}

// TestConsoleRestoreJoinsQuitWatch: restore returns once the watch of
// SIGQUIT and SIGCONT has ended, so no goroutine of the console outlives
// it.
func TestConsoleRestoreJoinsQuitWatch(t *testing.T) {
	// Counted, not required absent: another test's console may be open.
	watches := func() int {
		buf := make([]byte, 1<<20)
		return strings.Count(string(buf[:runtime.Stack(buf, true)]), ".(*console).watch(")
	}
	for range 5 {
		before := watches()
		c, err := openConsole(openPTY(t), openPTY(t), false)
		if err != nil {
			t.Fatal(err)
		}
		c.restore()
		if n := watches(); n > before {
			t.Fatalf("%d signal watches after restore, %d before openConsole: restore did not wait for its own", n, before)
		}
	}
}
