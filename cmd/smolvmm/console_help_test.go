package main

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestCLIEscapeHelp: Ctrl-A h typed on the terminal of a running VM
// prints the escape keys' help there (run's stderr, the terminal), C-a s
// among them (run has --snapshot; without it the key says to give it),
// and the VM runs on until Ctrl-A x. TestEscapeHelp tests the reader
// alone: a console built without its help writer printed nothing and
// every test passed.
func TestCLIEscapeHelp(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := spinKernel(t)
	tests := []struct {
		name  string
		flags []string
	}{
		{"run", nil},
		{"run --no-seccomp", []string{"--no-seccomp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ptm, pts := openPTYPair(t)
			args := append([]string{"run", "-k", kernel, "-m", "16", "--net", "none"}, tt.flags...)
			cmd := exec.Command(smolvmmBin(t), args...)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, pts, pts
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				cmd.Process.Kill()
				cmd.Wait()
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
			waitFor := func(what string, done func() bool) {
				t.Helper()
				for deadline := time.Now().Add(20 * time.Second); !done(); time.Sleep(20 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("%s: not within 20 s; terminal:\n%q", what, term.String())
					}
				}
			}
			// The console reads keys once the terminal is raw and the
			// process filtered (when it is): the guest runs. The help is
			// written under the filter too.
			seccomp := "2"
			if len(tt.flags) > 0 {
				seccomp = "0"
			}
			waitFor("the VM's start", func() bool {
				status, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/status")
				return termiosOf(t, pts).Lflag&unix.ICANON == 0 && strings.Contains(string(status), "\nSeccomp:\t"+seccomp+"\n")
			})
			if _, err := ptm.Write([]byte{0x01, 'h'}); err != nil {
				t.Fatal(err)
			}
			waitFor("the help", func() bool { return strings.Contains(term.String(), "C-a C-a  send C-a to the guest\r\n") })
			help := term.String()
			for _, line := range []string{"C-a h    print this help\r\n", "C-a x    quit smolvmm (the guest is stopped: exit status 130)\r\n",
				"C-a s    write a snapshot of the VM to the --snapshot file now\r\n"} {
				if !strings.Contains(help, line) {
					t.Errorf("the help lacks %q:\n%q", line, help)
				}
			}
			time.Sleep(100 * time.Millisecond)
			if status, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/status"); err != nil || strings.Contains(string(status), "\nState:\tZ") {
				t.Fatalf("the VM ended on Ctrl-A h; terminal:\n%q", term.String())
			}
			if _, err := ptm.Write([]byte{0x01, 'x'}); err != nil {
				t.Fatal(err)
			}
			// Waited for in a goroutine: t.Cleanup's Kill cannot run
			// while the test is blocked in Wait.
			waited := make(chan error, 1)
			go func() { waited <- cmd.Wait() }()
			var err error
			select {
			case err = <-waited:
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				<-waited
				t.Fatalf("smolvmm still ran 20 s after Ctrl-A x; terminal:\n%q", term.String())
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 130 {
				t.Errorf("after Ctrl-A x: %v, want status 130; terminal:\n%q", err, term.String())
			}
		})
	}
}
