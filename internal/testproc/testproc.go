// Package testproc starts the test binary itself as a child process that
// holds something (a lock, a file being written) until it is killed, for
// tests of what a process killed mid-work leaves behind.
package testproc

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// StartHolder runs the test binary (whose TestMain dispatches on env)
// with env added, and returns it and the first line it writes to its
// standard output (what it holds), once written. The child is to hold
// until its standard input ends; the test's cleanup kills and reaps it.
func StartHolder(t testing.TB, env ...string) (*exec.Cmd, string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		stdin.Close()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("the child process said nothing of what it holds: %v", err)
	}
	return cmd, strings.TrimSuffix(line, "\n")
}
