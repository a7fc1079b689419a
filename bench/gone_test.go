package bench

import (
	"errors"
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"
)

// TestReadMemoryGone: reading the memory of a process that has exited is
// ErrGone, whether it is a zombie (its smaps empty) or reaped (its /proc
// directory gone), so that the bench samples such a guest earlier.
func TestReadMemoryGone(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Skipf("no true to run: %v", err)
	}
	pid := cmd.Process.Pid
	// Waited for without reaping it: a zombie.
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
		t.Fatal(err)
	}
	reads := []struct {
		name string
		read func() error
	}{
		{"ReadMemory", func() error { _, err := ReadMemory(pid, fakeGuestBytes); return err }},
		{"ReadRestoredMemory", func() error { _, err := ReadRestoredMemory(pid, fakeGuestBytes, "/snap"); return err }},
		{"guestMapping", func() error { _, _, err := guestMapping(pid, fakeGuestBytes, "", 0); return err }},
		{"ReadRollup", func() error { _, err := ReadRollup(pid); return err }},
	}
	for _, state := range []string{"zombie", "reaped"} {
		if state == "reaped" {
			_ = cmd.Wait()
		}
		for _, r := range reads {
			if r.name == "ReadRollup" && state == "zombie" {
				continue // an empty smaps_rollup: not a sample's read
			}
			err := r.read()
			if !errors.Is(err, ErrGone) {
				t.Errorf("%s, %s: error %v, want one matching ErrGone", state, r.name, err)
			}
		}
	}
}
