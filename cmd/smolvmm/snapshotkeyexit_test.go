package main

import (
	"io"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/vmm"
)

// methodSnapshot is a machine that records which of its snapshot methods
// a Ctrl-A s called, and fails it, having written nothing.
type methodSnapshot struct{ called chan string }

func (m methodSnapshot) Snapshot(io.Writer) (vmm.SnapshotInfo, error) {
	m.called <- "Snapshot"
	return vmm.SnapshotInfo{}, vmm.ErrNotRunning
}

func (m methodSnapshot) SnapshotAndExit(io.Writer) (vmm.SnapshotInfo, error) {
	m.called <- "SnapshotAndExit"
	return vmm.SnapshotInfo{}, vmm.ErrNotRunning
}

// TestSnapshotKeyExit: with --snapshot-exit, Ctrl-A s takes the snapshot
// that stops the machine (vmm.Machine.SnapshotAndExit), as the snapshot at
// ready does; without it, one after which the guest runs on.
func TestSnapshotKeyExit(t *testing.T) {
	for _, tt := range []struct {
		exit bool
		want string
	}{{false, "Snapshot"}, {true, "SnapshotAndExit"}} {
		run, _, _ := keyRun(t) // snapshotkey_test.go
		run.exit = tt.exit
		m := methodSnapshot{make(chan string, 1)}
		snapshotKey(run, m)()
		run.waitKeys()
		if got := <-m.called; got != tt.want {
			t.Errorf("snapshot-exit %v: Ctrl-A s called %s, want %s", tt.exit, got, tt.want)
		}
	}
}

// TestCLISnapshotKeyExit: with --snapshot-exit, a Ctrl-A s snapshot of a
// guest that never becomes ready (no --ready, and it does not write the
// boot-timer port) stops the VM once written: smolvmm ends by itself with
// status 0, no Ctrl-A x typed, the file a snapshot. It kept running, its
// devices serving on, until a Ctrl-A x (status 130).
func TestCLISnapshotKeyExit(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	dir := t.TempDir()
	snap := keep(t, dir, "e.snap") // snapshotsafe_test.go
	r := startOnPTY(t, "run", "-k", readySpinKernel(t), "-m", "16", "--net", "none", "--snapshot", snap, "--snapshot-exit")
	waitSpinning(t, r)
	if _, err := r.ptm.Write([]byte("\x01s")); err != nil {
		t.Fatal(err)
	}
	exitedWith(t, r, 0, "Ctrl-A s with --snapshot-exit") // snapshotkey_test.go
	stderr := r.stderr.String()
	if !strings.Contains(stderr, "smolvmm: snapshot "+snap+": 16.0 MiB written") || strings.Contains(stderr, "warning") || strings.Contains(stderr, "guest stopped") {
		t.Fatalf("stderr:\n%s\nwant the snapshot written, no warning and no \"guest stopped\"", stderr)
	}
	checkOnlySnapshot(t, dir, snap) // snapshotsafe_test.go
}
