package main

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
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

// TestCLIVerboseLogOnRawTerminal: run -v on a terminal writes the boot
// plan that Config.Log gets with "\r\n", as the terminal is raw by then:
// no line ends in a bare "\n". (The containment's lines, the seccomp
// note among them, contain.go writes to standard error itself.)
func TestCLIVerboseLogOnRawTerminal(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	ptm, pts := openPTYPair(t)
	cmd := exec.Command(smolvmmBin(t), "run", "-v", "-k", spinKernel(t), "-m", "16", "--net", "none")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, pts, pts
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-waited
	})
	var term lockedBuffer // contain_test.go
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ptm.Read(buf)
			term.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		status, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/status")
		if strings.Contains(string(status), "\nSeccomp:\t2\n") && strings.Count(term.String(), "smolvmm:   loaded ") >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log under the filter in 20 s; terminal:\n%q", term.String())
		}
	}
	if _, err := ptm.Write([]byte{0x01, 'x'}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-waited:
		waited <- err
	case <-time.After(20 * time.Second):
		t.Fatalf("still running 20 s after Ctrl-A x; terminal:\n%q", term.String())
	}
	out := term.String()
	for _, line := range strings.SplitAfter(out, "\n") {
		plan := strings.Contains(line, "smolvmm: boot protocol ") || strings.Contains(line, "smolvmm:   loaded ")
		if plan && strings.HasSuffix(line, "\n") && !strings.HasSuffix(line, "\r\n") {
			t.Errorf("log line ended by a bare LF on the raw terminal: %q", line)
		}
	}
}
