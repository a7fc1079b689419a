package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/guests"
)

// TestCLIRestoreSnapshotTruncated: a snapshot file truncated under the VM
// restored from it is reported as that, with what not to do, status 1;
// not as a guest crash (status 2) with a register dump.
func TestCLIRestoreSnapshotTruncated(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	snap := filepath.Join(t.TempDir(), "counter.snap")
	// A counter that does not end by itself within the test.
	if _, stderr, status := runCLI(t, "run", "-k", guests.ForTest(t, "counter"), "-m", "16", "-a", "n=1000000000 at=100",
		"--net", "none", "--snapshot", snap, "--snapshot-exit"); status != 0 {
		t.Fatalf("snapshot run: status %d, stderr:\n%s", status, stderr)
	}
	cmd := exec.Command(smolvmmBin(t), "run", "--restore", snap, "--net", "none")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := new(lockedBuffer)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	s := bufio.NewScanner(stdout)
	if !s.Scan() || !strings.HasPrefix(s.Text(), "count 101") {
		t.Fatalf("the restored guest printed %q first (%v), want count 101; stderr:\n%s", s.Text(), s.Err(), stderr)
	}
	// Cut to the header: every page the guest has not written is gone.
	if err := os.Truncate(snap, 4096); err != nil {
		t.Fatal(err)
	}
	for s.Scan() {
	}
	err = cmd.Wait()
	status := cmd.ProcessState.ExitCode()
	msg := stderr.String()
	for _, want := range []string{
		"smolvmm run: the snapshot file " + snap + " backing guest memory was truncated (or replaced in place) while the VM ran",
		"do not modify a snapshot file a VM restored from is running on",
		"taking a new snapshot over it (--snapshot) is safe",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if status != 1 || strings.Contains(msg, "guest crashed") || strings.Contains(msg, "EIP=") {
		t.Errorf("status %d (%v), want 1 and no crash report", status, err)
	}
	if t.Failed() {
		t.Logf("stderr:\n%s", msg)
	}
}
