package nestedkvm_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/internal/nestedkvm"
	"github.com/smolvmm/smolvmm/internal/realnetbsd"
)

// restoreScript types at a restored kernel that sits at its root device
// prompt: the prompt was printed before the snapshot, so "?" goes at once;
// then it waits for the device list before typing "halt".
var restoreScript = typingScript(`printf '?\r' && answer 'use one of: ' halt && answer 'has halted' ''`)

// TestNetBSDSnapshot snapshots the real NetBSD kernel on the rig's real
// KVM (paging on, its own interrupt handlers) at its root device prompt,
// then restores it twice from that one file: each restored kernel goes on
// at the prompt, without booting again, and answers what is typed. In the
// same rig boot, the clock subtests snapshot the counter guest and restore
// it after the file lay 2 s on disk: its TSC goes on from the snapshot's
// value, 1.1 s of guest time in and under a second in (this machine's own
// KVM ignores the TSC a VMM sets, so vmm.TestRestoreClocks can check only
// the RTC there).
func TestNetBSDSnapshot(t *testing.T) {
	nestedkvm.SkipIfOff(t)
	kernel, _ := realnetbsd.Files(t)
	stripped := stripKernel(t, kernel)
	counter := guests.ForTest(t, "counter")
	run := []string{"smolvmm", "run", "--net", "none", "--timings"}
	r := nestedkvm.Run(t, nestedkvm.Job{
		Files: []nestedkvm.File{
			{Path: "/root/netbsd.strip", Source: stripped, Mode: 0o644},
			{Path: "/root/restore.sh", Data: []byte(restoreScript), Mode: 0o755},
			{Path: "/root/counter.elf", Source: counter, Mode: 0o644},
		},
		Script: nestedkvm.Step("snapshot", append(run, "-v", "-m", "128", "-a", "console=com", "-k", "netbsd.strip",
			// No ^: NetBSD's console ends a line with "\n\r", so the
			// next one starts with the carriage return.
			"--ready", "root device: ", "--snapshot", "/root/nb.snap", "--snapshot-exit")...) +
			nestedkvm.Step("restore1", append([]string{"./restore.sh"}, append(run, "--restore", "/root/nb.snap")...)...) +
			nestedkvm.Step("restore2", append([]string{"./restore.sh"}, append(run, "--restore", "/root/nb.snap")...)...) +
			clockSteps(),
		Timeout: 4 * time.Minute,
	})
	snap := r.Step(t, "snapshot")
	t.Logf("snapshot's stderr:\n%s", snap.Stderr)
	if snap.Status != 0 || !strings.HasSuffix(crless(snap.Stdout), "root device: ") || !strings.Contains(snap.Stderr, "snapshot-written") {
		t.Fatalf("snapshot step: status %d, stdout ends %q, stderr:\n%s", snap.Status, tail(snap.Stdout), snap.Stderr)
	}
	for _, name := range []string{"restore1", "restore2"} {
		t.Run(name, func(t *testing.T) {
			s := r.Step(t, name)
			if s.Status != 0 {
				t.Errorf("status %d, want 0 (halt typed at the prompt); stderr:\n%s", s.Status, s.Stderr)
			}
			out := crless(s.Stdout)
			if !strings.HasPrefix(out, "?\nuse one of: md0[a-p] halt reboot\n") {
				t.Errorf("the restored kernel did not go on at its prompt: output starts %q", out[:min(len(out), 200)])
			}
			wantInOrder(t, out, "root device: halt\n", "The operating system has halted.\n")
			if strings.Contains(out, "NetBSD 5.99.15") {
				t.Errorf("the restored kernel booted again:\n%s", out)
			}
			if !strings.Contains(s.Stderr, "state-restored") {
				t.Errorf("--timings lacks the restore's phases:\n%s", s.Stderr)
			}
			// Emulated times: only their ratio means something.
			t.Logf("boot to the prompt %v; restore to halt after two answers %v; restore's stderr:\n%s", snap.Elapsed, s.Elapsed, s.Stderr)
		})
	}
	for _, cc := range clockCases {
		t.Run("clock-"+cc.name, func(t *testing.T) {
			snap, restored := r.Step(t, "clock-snapshot-"+cc.name), r.Step(t, "clock-restore-"+cc.name)
			if snap.Status != 0 || restored.Status != 1 {
				t.Fatalf("counter guest: snapshot status %d (want 0), restore status %d (want 1, debug-exit 0); stderr:\n%s\n%s", snap.Status, restored.Status, snap.Stderr, restored.Stderr)
			}
			c, err := guests.ParseCounterClock(snap.Stdout, restored.Stdout)
			if err != nil {
				t.Fatal(err)
			}
			// The guest counted PIT rounds (55 ms each) before its
			// snapshot point: a restored machine whose TSC started
			// again from 0 reads less after it than before.
			up := c.TSCDuration(c.Before)
			if up < cc.minUp || up > cc.maxUp {
				t.Fatalf("the guest's TSC read %v before its snapshot point, since its start at 0 (%q), want %v to %v", up, cc.args, cc.minUp, cc.maxUp)
			}
			jump := c.Across()
			t.Logf("TSC %.2f GHz (emulated); %v before the snapshot point, %v across the restore after %v on disk", float64(c.TSCPerPIT)*guests.PITHz/65535/1e9, up, jump, clockOnDisk)
			if jump <= 0 || jump > clockOnDisk/4 {
				t.Errorf("the restored guest's TSC went from %#x to %#x across the restore, %v, after %v on disk: want it to go on from the snapshot's value, forwards by much less than the time on disk", c.Before, c.After, jump, clockOnDisk)
			}
		})
	}
}

// clockCases are the counter guest's clock snapshots: one 1.1 s of guest
// time in, and one under a second in, whose TSC KVM before Linux 6.7
// (the rig's) takes for a vCPU synchronising when written once, keeping
// the fresh vCPU's (the restored guest's TSC went 746 ms backwards).
var clockCases = []struct {
	name         string
	args         string        // the counter guest's
	minUp, maxUp time.Duration // the guest time before the snapshot point
}{
	{"late", "clock calib=20", time.Second, 30 * time.Second},
	// At the first count, after one PIT round: well under the second.
	{"early", "clock calib=1 n=2 at=1", 50 * time.Millisecond, 900 * time.Millisecond},
}

// clockSteps snapshots the counter guest for each of clockCases and
// restores it after the file lay clockOnDisk on disk.
func clockSteps() string {
	var s string
	for _, cc := range clockCases {
		file := "/root/c-" + cc.name + ".snap"
		s += nestedkvm.Step("clock-snapshot-"+cc.name, "smolvmm", "run", "--net", "none", "-m", "16", "-k", "counter.elf",
			"-a", cc.args, "--snapshot", file, "--snapshot-exit") +
			fmt.Sprintf("sleep %d\n", clockOnDisk/time.Second) +
			nestedkvm.Step("clock-restore-"+cc.name, "smolvmm", "run", "--net", "none", "--restore", file)
	}
	return s
}

// clockOnDisk is how long the rig leaves the counter guest's snapshot on
// disk before restoring it.
const clockOnDisk = 2 * time.Second

func tail(s string) string { return s[max(0, len(s)-200):] }
