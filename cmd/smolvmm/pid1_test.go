package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPID1BrokenPipe: a VMM that is PID 1 of its PID namespace without
// --jail (a container's entrypoint: unshare --pid --fork smolvmm demo |
// head -1) ended with status 2, saying nothing, when its output's reader
// went away, not the README's 141: the kernel ignores the SIGPIPE that Go
// raises at itself in PID 1. It ends with 141, as the jailed VMM does;
// on a terminal, which it had raw, put back first.
func TestPID1BrokenPipe(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("no unshare to start the VMM as PID 1 of a PID namespace")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for unshare --pid")
	}
	kernel := chattyKernel(t) // console_pipe_test.go: writes for ever
	for _, terminal := range []bool{false, true} {
		t.Run(map[bool]string{false: "stdin /dev/null", true: "stdin a terminal"}[terminal], func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			// --kill-child: the VMM ends with unshare, killed by the
			// test's cleanup.
			cmd := exec.Command(unshare, "--pid", "--kill-child", smolvmmBin(t), "run", "-k", kernel, "-m", "16", "--net", "none")
			var stderr lockedBuffer // contain_test.go
			cmd.Stdout, cmd.Stderr = w, &stderr
			var pts *os.File
			var before unix.Termios
			if terminal {
				_, pts = openPTYPair(t) // snapshotsafe_test.go
				before = termiosOf(t, pts)
				cmd.Stdin = pts
			}
			waited := startReaped(t, cmd) // console_pipe_test.go
			w.Close()
			// As head -c 1: one byte, then gone.
			if _, err := r.Read(make([]byte, 1)); err != nil {
				t.Fatalf("no output: %v; stderr:\n%s", err, stderr.String())
			}
			r.Close()
			err = exitWithin(t, waited, "its reader went away", &stderr)
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("exit: %v; want status 141; stderr:\n%s", err, stderr.String())
			}
			// unshare ends with its child's status, or, for a child
			// killed by a signal, of that signal itself.
			ws := ee.Sys().(syscall.WaitStatus)
			if ws.ExitStatus() != 141 && (!ws.Signaled() || ws.Signal() != unix.SIGPIPE) {
				t.Errorf("exit: %v; want status 141 (SIGPIPE); stderr:\n%s", err, stderr.String())
			}
			if strings.Contains(stderr.String(), "standard output") {
				t.Errorf("a broken pipe said as lost output:\n%s", stderr.String())
			}
			if terminal {
				if after := termiosOf(t, pts); !bytes.Equal(termiosBytes(&after), termiosBytes(&before)) {
					t.Errorf("terminal left as %+v, want as it was: %+v", after, before)
				}
			}
		})
	}
}
