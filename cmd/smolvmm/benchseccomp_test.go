package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBenchNoSeccomp: bench boots smolvmm under its seccomp filter, and
// without it with --no-seccomp, so that the rows "without the filter" are
// what they say: the flag was passed to each boot's process untested (a
// bench that dropped it passed every test). The guest never gets ready:
// its process is looked at while it runs, then the bench interrupted.
func TestBenchNoSeccomp(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := readySpinKernel(t)
	for _, tt := range []struct {
		name    string
		flags   []string
		seccomp string // /proc/PID/status: 2 filtered, 0 not
	}{
		{"filter", nil, "2"},
		{"--no-seccomp", []string{"--no-seccomp"}, "0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"bench", "-k", kernel, "--net", "none", "-n", "1", "--warmup", "0",
				"--ready", "^never", "--timeout", "1m", "--console"}, tt.flags...)
			// A guest that never runs fails the test in a minute, not
			// at the test binary's deadline: killed, bench takes its
			// boot with it (Pdeathsig), and stderr ends.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, smolvmmBin(t), args...)
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stdout = io.Discard
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				cmd.Process.Kill()
				cmd.Wait()
			}()
			// "R" on the console: the guest runs, the filter (if any)
			// is on.
			readUntilRan(t, stderr)
			vms := childPIDs(t, cmd.Process.Pid) // bench_test.go
			if len(vms) != 1 {
				t.Fatalf("VM processes under bench: %v, want one", vms)
			}
			status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", vms[0]))
			if err != nil {
				t.Fatal(err)
			}
			if want := "\nSeccomp:\t" + tt.seccomp + "\n"; !strings.Contains(string(status), want) {
				_, line, _ := strings.Cut(string(status), "\nSeccomp:")
				line, _, _ = strings.Cut(line, "\n")
				t.Errorf("the boot's process has Seccomp: %s, want %s", strings.TrimSpace(line), tt.seccomp)
			}
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, stderr)
			if err := cmd.Wait(); err == nil {
				t.Error("the interrupted bench exited 0")
			}
		})
	}
}
