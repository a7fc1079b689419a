package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/smolvmm/smolvmm/sandbox"
)

// TestFilterKeepsStderrAppend: a VMM taken over (the test hook, on the
// vCPU thread once the guest prints) whose standard error is a log opened
// to append (2>>log) clears O_APPEND with fcntl(F_SETFL) to write over
// the log's earlier lines: the filter stops it at the fcntl, status
// sandbox.ExitStatus and a line naming fcntl, and the earlier line is
// intact, run as root or with --user. Without the filter the same hook
// writes over it (and the hook's own report, at the descriptor's offset
// 0 once O_APPEND is gone, does too): the test sees an overwritten log.
func TestFilterKeepsStderrAppend(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	bin := smolvmmBin(t)
	const earlier = "an earlier VM's line\n"
	for _, tt := range []struct {
		name   string
		args   []string
		root   bool // --user needs smolvmm started as root
		status int
		kept   bool
		want   string
	}{
		{"filter", nil, false, sandbox.ExitStatus, true, "smolvmm: seccomp: the VMM attempted the forbidden fcntl (system call 72) and was stopped"},
		{"filter --user nobody", []string{"--user", "nobody"}, true, sandbox.ExitStatus, true, "smolvmm: seccomp: the VMM attempted the forbidden fcntl (system call 72) and was stopped"},
		{"--no-seccomp", []string{"--no-seccomp"}, false, 0, false, "smolvmm-test: unappend: <nil>"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && os.Geteuid() != 0 {
				t.Skip("needs root")
			}
			if tt.root {
				nobodyUser(t)
			}
			log := filepath.Join(t.TempDir(), "log")
			if err := os.WriteFile(log, []byte(earlier), 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			cmd := exec.Command(bin, append([]string{"demo"}, tt.args...)...)
			cmd.Env = append(os.Environ(), testHookEnv+"=unappend")
			// The descriptor itself, as 2>>log gives it.
			cmd.Stderr = f
			status := exitStatus(t, cmd.Run()) // snapshotsafe_test.go
			got, err := os.ReadFile(log)
			if err != nil {
				t.Fatal(err)
			}
			if status != tt.status || !bytes.Contains(got, []byte(tt.want)) {
				t.Errorf("status %d, want %d and %q in the log:\n%s", status, tt.status, tt.want, got)
			}
			if kept := bytes.HasPrefix(got, []byte(earlier)); kept != tt.kept {
				t.Errorf("earlier line kept %v, want %v; log:\n%s", kept, tt.kept, got)
			}
		})
	}
}
