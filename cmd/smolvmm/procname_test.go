package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
			for pid, name := range want {
				comms, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/comm", pid))
				if err != nil || len(comms) == 0 {
					t.Fatalf("threads of %d: %v %v", pid, comms, err)
				}
				for _, p := range comms {
					b, err := os.ReadFile(p)
					if err != nil {
						t.Fatal(err)
					}
					// kvm-nx-lpage-recovery is the kernel's own
					// worker in the VMM's thread group.
					if got := strings.TrimSpace(string(b)); got != name && !strings.HasPrefix(got, "kvm-") {
						t.Errorf("%s is %q, want %q", p, got, name)
					}
				}
			}
		})
	}
}
