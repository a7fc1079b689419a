package vmm_test

import (
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/vmm"
)

// TestStopInterruptsSnapshotBeforeRun: a stop of the machine (Run with a
// context already done, or Close) interrupts a snapshot taken before the
// guest first runs to a pipe nobody reads (the pipe's write deadline):
// the snapshot fails with ErrNotRunning and a zero SnapshotInfo. Run with
// a done context used to return without stopping it, leaving it blocked,
// and a snapshot cut by a stop wrapped no sentinel and gave the bytes
// written.
func TestStopInterruptsSnapshotBeforeRun(t *testing.T) {
	needKVM(t)
	for _, tt := range []struct {
		name string
		stop func(t *testing.T, m *vmm.Machine)
	}{
		{"Run with a done context", func(t *testing.T, m *vmm.Machine) {
			done, cancel := context.WithCancel(context.Background())
			cancel()
			if e, err := m.Run(done); err != nil || e.Reason != vmm.ExitStopped {
				t.Errorf("Run: %+v, %v; want ExitStopped", e, err)
			}
		}},
		{"Close", func(t *testing.T, m *vmm.Machine) {
			go m.Close() // returns once the snapshot has
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
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
			// The smallest pipe: the snapshot cannot fit and blocks. Set
			// through SyscallConn: Fd would make the pipe blocking, and
			// its deadlines then interrupt nothing.
			rc, err := w.SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var perr error
			if err := rc.Control(func(fd uintptr) { _, perr = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, 4096) }); err != nil || perr != nil {
				t.Fatal(err, perr)
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
			tt.stop(t, m)
			select {
			case res := <-snapped:
				t.Logf("Snapshot: %+v, %v", res.info, res.err)
				if !errors.Is(res.err, vmm.ErrNotRunning) || res.info != (vmm.SnapshotInfo{}) {
					t.Errorf("Snapshot: %+v, %v; want a zero SnapshotInfo and ErrNotRunning", res.info, res.err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("the snapshot before Run stayed blocked after the stop")
			}
		})
	}
}
