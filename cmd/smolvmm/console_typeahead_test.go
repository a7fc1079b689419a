package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestCLIEscapeAfterTypeahead: Ctrl-A x quits a VM whose guest reads no
// input (here a guest that spins; a hung kernel) however much was typed
// or pasted before it: past the UART's 4,096 bytes the console was read no
// more and the key was never seen.
func TestCLIEscapeAfterTypeahead(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := spinKernel(t)
	for _, typed := range []int{4000, 5000, 20000} {
		t.Run(strconv.Itoa(typed), func(t *testing.T) {
			ptm, pts := openPTYPair(t)
			cmd := exec.Command(smolvmmBin(t), "run", "-k", kernel, "-m", "16", "--net", "none")
			var stderr lockedBuffer // contain_test.go
			cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, pts, &stderr
			waited := startReaped(t, cmd) // console_pipe_test.go
			// Keys are read under the filter, once the terminal is raw.
			for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				status, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/status")
				if termiosOf(t, pts).Lflag&unix.ICANON == 0 && strings.Contains(string(status), "\nSeccomp:\t2\n") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the VM did not start; stderr:\n%s", stderr.String())
				}
			}
			// Written on its own: the terminal takes no more than its
			// buffer until smolvmm reads.
			go ptm.Write(append(bytes.Repeat([]byte{'a'}, typed), 0x01, 'x'))
			err := exitWithin(t, waited, strconv.Itoa(typed)+" bytes and Ctrl-A x", &stderr)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 130 {
				t.Errorf("after Ctrl-A x: %v, want status 130; stderr:\n%s", err, stderr.String())
			}
		})
	}
}
