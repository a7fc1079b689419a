package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSIGQUITRestoresTerminal: SIGQUIT stops a run on a terminal as the
// README says (Go's stack dump, status 2), as do SIGABRT and SIGTRAP, and,
// like SIGTERM, leaves the terminal as it found it: the dump does not run
// deferred functions, so the console's raw mode stayed. Under the seccomp filter too, where the
// restore and the signal sent again must be calls it allows.
func TestSIGQUITRestoresTerminal(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	tests := []struct {
		name   string
		flags  []string
		sig    syscall.Signal
		status int
		dump   bool
	}{
		{"SIGQUIT", nil, unix.SIGQUIT, 2, true},
		{"SIGQUIT, no filter", []string{"--no-seccomp"}, unix.SIGQUIT, 2, true},
		{"SIGTERM", nil, unix.SIGTERM, 130, false},
		// Go's dump and status 2 as well: the terminal was left raw.
		{"SIGABRT", nil, unix.SIGABRT, 2, true},
		{"SIGTRAP", nil, unix.SIGTRAP, 2, true},
		{"SIGABRT, no filter", []string{"--no-seccomp"}, unix.SIGABRT, 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ptm, pts := openPTYPair(t)
			before := termiosOf(t, pts)
			args := append([]string{"run", "-k", spinKernel(t), "-m", "16", "--net", "none"}, tt.flags...)
			cmd := exec.Command(smolvmmBin(t), args...)
			cmd.Stdin, cmd.Stdout = pts, pts
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				cmd.Process.Kill()
				cmd.Wait()
			})
			go io.Copy(io.Discard, ptm)
			// The guest runs (under the filter, when there is one) once
			// the terminal is raw and the process is filtered.
			seccomp := "2"
			if len(tt.flags) > 0 {
				seccomp = "0"
			}
			deadline := time.Now().Add(20 * time.Second)
			for {
				raw := termiosOf(t, pts).Lflag&unix.ICANON == 0
				status, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/status")
				if raw && strings.Contains(string(status), "\nSeccomp:\t"+seccomp+"\n") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the VM did not start; stderr:\n%s", stderr.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond) // into the guest's run
			if err := cmd.Process.Signal(tt.sig); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tt.status {
				t.Errorf("exit: %v, want status %d; stderr:\n%s", err, tt.status, stderr.String())
			}
			if got := strings.Contains(stderr.String(), "goroutine "); got != tt.dump {
				t.Errorf("stack dump: %v, want %v; stderr:\n%s", got, tt.dump, stderr.String())
			}
			if after := termiosOf(t, pts); !bytes.Equal(termiosBytes(&after), termiosBytes(&before)) {
				t.Errorf("terminal left as %+v, want as it was: %+v", after, before)
			}
		})
	}
}
