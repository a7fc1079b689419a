package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRawLogLineEnds: the -v log (the boot plan, the seccomp note, a port
// no device answers, the network's lines) ends its lines "\r\n" while a
// console has the terminal raw, where a bare "\n" left each line starting
// where the last ended; before and after, and off a terminal, it is
// written as given.
func TestRawLogLineEnds(t *testing.T) {
	tests := []struct {
		name     string
		raw, tty bool
		in, want string
	}{
		{"raw", true, true, "smolvmm: boot: multiboot\nsmolvmm: seccomp: on\n", "smolvmm: boot: multiboot\r\nsmolvmm: seccomp: on\r\n"},
		{"raw, no line end", true, true, "part", "part"},
		{"raw, already CR LF", true, true, "a\r\nb\n", "a\r\nb\r\n"},
		{"raw, empty lines", true, true, "\n\n", "\r\n\r\n"},
		{"cooked", false, true, "a\nb\n", "a\nb\n"},
		{"raw, not a terminal", true, false, "a\nb\n", "a\nb\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer terminalRaw.Store(terminalRaw.Load())
			terminalRaw.Store(tt.raw)
			var out bytes.Buffer
			w := &rawLogWriter{w: &out, tty: tt.tty}
			n, err := w.Write([]byte(tt.in))
			if err != nil || n != len(tt.in) {
				t.Errorf("Write(%q) = %d, %v; want %d, nil", tt.in, n, err, len(tt.in))
			}
			if out.String() != tt.want {
				t.Errorf("wrote %q, want %q", out.String(), tt.want)
			}
		})
	}
}

// TestConsoleRawSetsLogLineEnds: a console on a terminal turns the log's
// "\r\n" on while it has the terminal raw, and off once restored.
func TestConsoleRawSetsLogLineEnds(t *testing.T) {
	c, err := openConsole(openPTY(t), openPTY(t), false)
	if err != nil {
		t.Fatal(err)
	}
	raw := terminalRaw.Load()
	c.restore()
	if !raw || terminalRaw.Load() {
		t.Errorf("log line ends raw: %v with the console open, %v after restore; want true, false", raw, terminalRaw.Load())
	}
}

// TestCLIVerboseLogOnRawTerminal: run -v on a terminal ends every line
// of its own "\r\n": the boot plan that Config.Log gets and the
// containment's lines (the seccomp note or --no-seccomp's, the chroot,
// the user dropped to, the snapshot broker) written as the terminal is
// raw, where a bare "\n" left each line starting where the last ended,
// and those written before raw mode or after the restore, which the
// terminal's own output processing ends so.
func TestCLIVerboseLogOnRawTerminal(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	tests := []struct {
		name string
		args func(t *testing.T) []string
		root bool     // --user, --chroot and --jail are tried as root only
		want []string // lines of -v's that the run must have written
	}{
		{"seccomp", func(*testing.T) []string { return nil }, false,
			[]string{"smolvmm: boot protocol ", "smolvmm:   loaded ", " BPF instructions ", " installed on every thread"}},
		{"no seccomp", func(*testing.T) []string { return []string{"--no-seccomp"} }, false,
			[]string{"smolvmm: no seccomp filter (--no-seccomp)"}},
		{"chroot, user", func(t *testing.T) []string {
			nobodyUser(t) // contain_test.go
			return []string{"--chroot", t.TempDir(), "--user", "nobody"}
		}, true, []string{"smolvmm: root directory is now ", "smolvmm: running as uid ", " installed on every thread"}},
		// The jail's line is written before the console has the terminal raw.
		{"jail", func(*testing.T) []string { return []string{"--jail"} }, true,
			[]string{"smolvmm: jailed: the VMM is PID 1 ", " installed on every thread"}},
		{"snapshot broker", func(t *testing.T) []string {
			return []string{"--snapshot", filepath.Join(t.TempDir(), "s.snap")}
		}, false, []string{"smolvmm: a broker process renames the snapshots", " installed on every thread"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && os.Geteuid() != 0 {
				t.Skip("needs root")
			}
			out := verboseOnTerminal(t, append([]string{"run", "-v", "-k", spinKernel(t), "-m", "16", "--net", "none"}, tt.args(t)...), tt.want)
			for _, line := range strings.SplitAfter(out, "\n") {
				if strings.Contains(line, "smolvmm") && strings.HasSuffix(line, "\n") && !strings.HasSuffix(line, "\r\n") {
					t.Errorf("line ended by a bare LF on the terminal: %q", line)
				}
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("no line with %q", w)
				}
			}
			if t.Failed() {
				t.Logf("terminal:\n%q", out)
			}
		})
	}
}

// verboseOnTerminal runs smolvmm with args on a new terminal until each of
// want is on it, ends it with Ctrl-A x and returns what it wrote there.
func verboseOnTerminal(t *testing.T, args, want []string) string {
	t.Helper()
	ptm, pts := openPTYPair(t)
	cmd := exec.Command(smolvmmBin(t), args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, pts, pts
	waited := startReaped(t, cmd) // console_pipe_test.go

	var term lockedBuffer // contain_test.go
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		buf := make([]byte, 4096)
		for {
			n, err := ptm.Read(buf)
			term.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	seen := func() bool {
		for _, w := range want {
			if !strings.Contains(term.String(), w) {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(20 * time.Second); !seen(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not all of %q in 20 s; terminal:\n%q", want, term.String())
		}
	}
	if _, err := ptm.Write([]byte{0x01, 'x'}); err != nil {
		t.Fatal(err)
	}
	exitWithin(t, waited, "Ctrl-A x", &term)
	// What it wrote last (after the restore): read until the terminal
	// has nothing more, its last writer gone.
	pts.Close()
	select {
	case <-copied:
	case <-time.After(10 * time.Second):
		t.Fatalf("terminal not at its end 10 s after the command's; terminal:\n%q", term.String())
	}
	return term.String()
}
