package bench

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestTaskLimitsCountsUserOnlyNearLimit: the user's tasks under
// RLIMIT_NPROC are counted (a read of every process's status, 30-70 ms
// for a user who may not read others', before every run's first
// KVM_RUN) only where the host's tasks and the need could reach the
// limit; further from it, the host's tasks stand for the user's.
func TestTaskLimitsCountsUserOnlyNearLimit(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("sets RLIMIT_NPROC, which only root's tasks ignore")
	}
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NPROC, &old); err != nil {
		t.Fatal(err)
	}
	defer unix.Setrlimit(unix.RLIMIT_NPROC, &old)
	host := taskLimits(os.Getuid(), false, 0).tasks
	if host == 0 {
		t.Skip("no task count in /proc/loadavg")
	}
	uid := 3999992 // a user without tasks: a count gives 0
	tests := []struct {
		name  string
		limit uint64
		need  uint64
		used  uint64 // what nprocUsed must be
	}{
		{"far from the limit", 100 * host, 20, host},
		{"need reaches it", host + 10, 1 << 20, 0},
		{"host past it", host / 2, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := unix.Setrlimit(unix.RLIMIT_NPROC, &unix.Rlimit{Cur: tt.limit, Max: old.Max}); err != nil {
				t.Fatal(err)
			}
			l := taskLimits(uid, true, tt.need)
			// The host's count moves between reads: far from the
			// limit, it is what nprocUsed holds, near it the user's 0.
			if l.nproc != tt.limit || (tt.used == 0) != (l.nprocUsed == 0) || tt.used != 0 && l.nprocUsed != l.tasks {
				t.Errorf("nproc %d, used %d (host tasks %d); want %d, %s", l.nproc, l.nprocUsed, l.tasks, tt.limit,
					map[bool]string{true: "the host's tasks", false: "the user's 0"}[tt.used != 0])
			}
		})
	}
	if l := taskLimits(uid, false, 1); l.nproc != 0 {
		t.Errorf("not enforced: nproc %d, want 0 (not checked)", l.nproc)
	}
}
