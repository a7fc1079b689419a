package bench

import (
	"errors"
	"testing"
)

// TestCheckOwn: a VMM's own VM is refused when a task limit cannot hold
// the tasks it will have in all with its guest running, the limit's
// count taken without those it has already (it is in that count); its
// descriptors are not its check's.
func TestCheckOwn(t *testing.T) {
	tests := []struct {
		name        string
		have, tasks uint64
		limits      hostLimits
		refused     string // the limit; "" none
		used        uint64 // others' tasks, as refused
		why         string
	}{
		{"cgroup full", 5, 9, hostLimits{cgroupPids: 16, cgroupPidsUsed: 14, cgroup: "/rl"}, "pids.max of cgroup /rl", 9,
			"pids.max of cgroup /rl is 16, with 9 tasks in it besides this VMM, which takes 9 with its guest running"},
		{"cgroup just room", 5, 9, hostLimits{cgroupPids: 18, cgroupPidsUsed: 14, cgroup: "/rl"}, "", 0, ""},
		{"nproc full", 5, 9, hostLimits{nproc: 23, nprocUsed: 20}, "RLIMIT_NPROC", 15,
			"RLIMIT_NPROC is 23, with 15 processes and threads of the user it runs as besides this VMM, which takes 9 with its guest running"},
		{"nproc just room", 5, 9, hostLimits{nproc: 24, nprocUsed: 20}, "", 0, ""},
		{"threads-max", 4, 10, hostLimits{threadsMax: 100, pidMax: 1000, tasks: 95}, "kernel.threads-max", 91,
			"kernel.threads-max is 100, with 91 tasks on the host besides this VMM, which takes 10 with its guest running"},
		{"descriptors not checked", 5, 9, hostLimits{nofile: 10, nofileUsed: 10}, "", 0, ""},
		{"count below own (read apart)", 8, 9, hostLimits{cgroupPids: 8, cgroupPidsUsed: 6, cgroup: "/rl"}, "pids.max of cgroup /rl", 0,
			"pids.max of cgroup /rl is 8, with 0 tasks in it besides this VMM, which takes 9 with its guest running"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkOwn(tt.have, tt.tasks, tt.limits)
			if tt.refused == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var le *LimitError
			if !errors.As(err, &le) || !errors.Is(err, ErrHostLimit) {
				t.Fatalf("err %v, want a LimitError", err)
			}
			if !le.Own || le.N != 1 || le.Limit != tt.refused || le.Used != tt.used || le.PerVM != tt.tasks || le.Max != 0 {
				t.Errorf("%+v, want Own, N 1, Limit %q, Used %d, PerVM %d, Max 0", *le, tt.refused, tt.used, tt.tasks)
			}
			if le.Why() != tt.why || err.Error() != "the VM: "+tt.why {
				t.Errorf("Why %q, Error %q; want %q", le.Why(), err.Error(), tt.why)
			}
		})
	}
}
