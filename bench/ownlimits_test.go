package bench

import (
	"errors"
	"testing"
)

// TestCheckOwn: a VMM's own VM is refused only when a task limit cannot
// hold the fewest tasks it runs its guest with (least), and warned of
// (tight) when it holds those but not the tasks it likely has (likely),
// the limit's count taken without those it has already (it is in that
// count); its descriptors are not its check's.
func TestCheckOwn(t *testing.T) {
	tests := []struct {
		name                string
		have, least, likely uint64
		limits              hostLimits
		limit               string // the limit refused or warned of; "" none
		tight               bool   // a warning, not a refusal
		used                uint64 // others' tasks
		why                 string
	}{
		{"cgroup below least", 5, 8, 9, hostLimits{cgroupPids: 16, cgroupPidsUsed: 14, cgroup: "/rl"}, "pids.max of cgroup /rl", false, 9,
			"pids.max of cgroup /rl is 16, with 9 tasks in it besides this VMM, which cannot run its guest with fewer than 8"},
		{"cgroup holds least", 5, 8, 9, hostLimits{cgroupPids: 17, cgroupPidsUsed: 14, cgroup: "/rl"}, "pids.max of cgroup /rl", true, 9,
			"pids.max of cgroup /rl is 17, with 9 tasks in it besides this VMM, which may take 9 with its guest running (it runs with 8 at the least)"},
		{"cgroup holds likely", 5, 8, 9, hostLimits{cgroupPids: 18, cgroupPidsUsed: 14, cgroup: "/rl"}, "", false, 0, ""},
		{"nproc below least", 5, 8, 9, hostLimits{nproc: 22, nprocUsed: 20}, "RLIMIT_NPROC", false, 15,
			"RLIMIT_NPROC is 22, with 15 processes and threads of the user it runs as besides this VMM, which cannot run its guest with fewer than 8"},
		{"nproc holds least", 5, 8, 9, hostLimits{nproc: 23, nprocUsed: 20}, "RLIMIT_NPROC", true, 15,
			"RLIMIT_NPROC is 23, with 15 processes and threads of the user it runs as besides this VMM, which may take 9 with its guest running (it runs with 8 at the least)"},
		{"nproc holds likely", 5, 8, 9, hostLimits{nproc: 24, nprocUsed: 20}, "", false, 0, ""},
		{"threads-max", 4, 9, 10, hostLimits{threadsMax: 99, pidMax: 1000, tasks: 95}, "kernel.threads-max", false, 91,
			"kernel.threads-max is 99, with 91 tasks on the host besides this VMM, which cannot run its guest with fewer than 9"},
		{"refusal before a warning", 4, 9, 10, hostLimits{nproc: 29, nprocUsed: 24, cgroupPids: 8, cgroupPidsUsed: 4, cgroup: "/rl"}, "pids.max of cgroup /rl", false, 0,
			"pids.max of cgroup /rl is 8, with 0 tasks in it besides this VMM, which cannot run its guest with fewer than 9"},
		{"likely below least", 5, 8, 6, hostLimits{cgroupPids: 8, cgroupPidsUsed: 5, cgroup: "/rl"}, "", false, 0, ""},
		{"descriptors not checked", 5, 8, 9, hostLimits{nofile: 10, nofileUsed: 10}, "", false, 0, ""},
		{"count below own (read apart)", 8, 8, 9, hostLimits{cgroupPids: 7, cgroupPidsUsed: 6, cgroup: "/rl"}, "pids.max of cgroup /rl", false, 0,
			"pids.max of cgroup /rl is 7, with 0 tasks in it besides this VMM, which cannot run its guest with fewer than 8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tight, err := checkOwn(tt.have, tt.least, tt.likely, tt.limits)
			got := err
			if tight != nil {
				got = tight
			}
			if tt.limit == "" {
				if got != nil {
					t.Fatalf("refused or warned: %v", got)
				}
				return
			}
			if tt.tight && (err != nil || tight == nil) || !tt.tight && (err == nil || tight != nil) {
				t.Fatalf("tight %v, err %v; want tight %v", tight, err, tt.tight)
			}
			var le *LimitError
			if !errors.As(got, &le) || !errors.Is(got, ErrHostLimit) {
				t.Fatalf("%v, want a LimitError", got)
			}
			if !le.Own || le.Tight != tt.tight || le.N != 1 || le.Limit != tt.limit || le.Used != tt.used || le.PerVM != tt.likely || le.Least != tt.least || le.Max != 0 {
				t.Errorf("%+v, want Own, Tight %v, N 1, Limit %q, Used %d, PerVM %d, Least %d, Max 0", *le, tt.tight, tt.limit, tt.used, tt.likely, tt.least)
			}
			prefix := "the VM: "
			if tt.tight {
				prefix = "the VM may run out of tasks: "
			}
			if le.Why() != tt.why || got.Error() != prefix+tt.why {
				t.Errorf("Why %q, Error %q; want %q", le.Why(), got.Error(), tt.why)
			}
		})
	}
}
