package vmm_test

import (
	"context"
	"io"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/vmm"
)

// TestRunDoneInterruptsSnapshotBeforeRun: Run with a context already done
// stops the machine, so a snapshot taken before the guest first runs to a
// pipe nobody reads is interrupted (the pipe's write deadline) instead of
// staying blocked after Run returned.
func TestRunDoneInterruptsSnapshotBeforeRun(t *testing.T) {
	needKVM(t)
	m, err := vmm.New(vmm.Config{Kernel: "exit", KernelImage: exitGuest(), MemoryMiB: 8, Console: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	// The smallest pipe: the snapshot cannot fit and blocks.
	if _, err := unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, 4096); err != nil {
		t.Fatal(err)
	}
	type result struct {
		info vmm.SnapshotInfo
		err  error
	}
	snapped := make(chan result, 1)
	go func() { info, err := m.Snapshot(w); snapped <- result{info, err} }()
	if _, err := r.Read(make([]byte, 1)); err != nil { // the snapshot is being written
		t.Fatal(err)
	}
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if e, err := m.Run(done); err != nil || e.Reason != vmm.ExitStopped {
		t.Errorf("Run: %+v, %v; want ExitStopped", e, err)
	}
	select {
	case res := <-snapped:
		if res.err == nil {
			t.Errorf("the snapshot to a pipe nobody reads succeeded (%+v)", res.info)
		}
		t.Logf("Snapshot: %+v, %v", res.info, res.err)
	case <-time.After(5 * time.Second):
		t.Fatal("the snapshot before Run stayed blocked after Run with a done context returned")
	}
}
