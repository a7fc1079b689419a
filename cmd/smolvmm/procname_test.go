package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestProcessNames: the processes smolvmm starts as /proc/self/exe, the
// jailed VMM and the snapshots' broker, are named smolvmm and
// smolvmm-broker on every thread; the kernel named them exe, which
// pgrep -x smolvmm, pidof and top missed and a seccomp kill's log named.
func TestProcessNames(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	for _, tt := range []struct {
		name  string
		jail  bool
		extra []string
	}{
		{"jailed", true, []string{"--jail"}},
		{"broker", false, []string{"--snapshot"}},
		{"jailed broker", true, []string{"--jail", "--snapshot"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.jail {
				needJail(t) // jail_test.go
			}
			var args []string
			for _, a := range tt.extra {
				args = append(args, a)
				if a == "--snapshot" {
					args = append(args, filepath.Join(t.TempDir(), "s.snap"))
				}
			}
			cmd, stderr := runningVM(t, nil, args...)
			want := map[int]string{cmd.Process.Pid: "smolvmm"}
			vmm := cmd.Process.Pid
			if tt.jail {
				vmm = jailedPID(t, cmd.Process.Pid)
				want[vmm] = "smolvmm"
			}
			if strings.Contains(tt.name, "broker") {
				kids := childrenOf(vmm) // broker_test.go
				if len(kids) != 1 {
					t.Fatalf("the VMM has children %v; want its broker alone\nstderr:\n%s", kids, stderr)
				}
				want[kids[0]] = "smolvmm-broker"
			}
			// The broker names itself first thing, but the VM may be
			// running before its runtime has started: wait for it.
			deadline := time.Now().Add(10 * time.Second)
			for {
				wrong := misnamedThreads(t, want)
				if len(wrong) == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after 10 s:\n%s", strings.Join(wrong, "\n"))
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// misnamedThreads lists the threads of each pid in want not named as want
// says.
func misnamedThreads(t *testing.T, want map[int]string) []string {
	t.Helper()
	var wrong []string
	for pid, name := range want {
		comms, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/comm", pid))
		if err != nil || len(comms) == 0 {
			t.Fatalf("threads of %d: %v %v", pid, comms, err)
		}
		for _, p := range comms {
			b, err := os.ReadFile(p)
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
				continue // a thread that ended, as the page release's does
			}
			if err != nil {
				t.Fatal(err)
			}
			// kvm-nx-lpage-recovery is the kernel's own worker in the
			// VMM's thread group.
			if got := strings.TrimSpace(string(b)); got != name && !strings.HasPrefix(got, "kvm-") {
				wrong = append(wrong, fmt.Sprintf("%s is %q, want %q", p, got, name))
			}
		}
	}
	return wrong
}
