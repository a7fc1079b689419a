package vmm_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/vmm"
)

// queuedRun is what runQueued saw: Run's exit and error, the snapshot's
// result, Close's error and the console's output.
type queuedRun struct {
	e                         vmm.Exit
	runErr, snapErr, closeErr error
	out                       string
}

// runQueued runs the vblk guest ("queued") on disk, snapshotted at ready
// to w: by Machine.SnapshotAndExit, called from a goroutine the ready
// event starts, when call; else by Config.SnapshotOnReady, with
// Config.SnapshotExit as exit. Its devices are woken as each snapshot ends
// (ServeAfterSnapshots), as a worker's notification that waited for the
// snapshot is. It returns once Run has and the snapshot's result is in.
func runQueued(t *testing.T, disk string, w io.Writer, call, exit bool) queuedRun {
	t.Helper()
	var out, log guests.Console
	var m *vmm.Machine
	var r queuedRun
	snapped := make(chan struct{})
	cfg := vmm.Config{Kernel: guest(t, "vblk"), Append: "queued", MemoryMiB: 32,
		Disks: []blk.Spec{{Path: disk}}, Console: &out, Log: &log}
	if call {
		cfg.OnEvent = func(e vmm.Event) {
			if e.Phase == vmm.PhaseReady {
				go func() {
					defer close(snapped)
					_, r.snapErr = m.SnapshotAndExit(w)
				}()
			}
		}
	} else {
		cfg.SnapshotOnReady, cfg.SnapshotExit = w, exit
		cfg.OnSnapshot = func(_ vmm.SnapshotInfo, err error) {
			defer close(snapped)
			r.snapErr = err
		}
	}
	m, err := vmm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	t.Cleanup(vmm.ServeAfterSnapshots(m))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r.e, r.runErr = m.Run(ctx)
	<-snapped
	r.closeErr = m.Close()
	r.out = out.String()
	if r.runErr != nil {
		t.Logf("log:\n%s", log.String())
	}
	return r
}

// TestSnapshotExitLeavesQueuedWrite: the vblk guest ("queued") has a
// write of sector 2 in its disk's ring, not taken, when the snapshot is
// taken. A machine that exits with its snapshot (Config.SnapshotExit,
// Machine.SnapshotAndExit) leaves it there, even when its device is
// woken for it as the snapshot ends: the image stays as the snapshot
// recorded it, a restore accepts it, and the restored guest's write is
// made, once.
func TestSnapshotExitLeavesQueuedWrite(t *testing.T) {
	for _, call := range []bool{false, true} {
		name := "Config.SnapshotExit"
		if call {
			name = "Machine.SnapshotAndExit"
		}
		t.Run(name, func(t *testing.T) {
			needKVM(t)
			disk, img := diskImage(t)
			path := filepath.Join(t.TempDir(), "vblk.snap")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			r := runQueued(t, disk, f, call, true)
			if r.runErr != nil || r.e.Reason != vmm.ExitSnapshot {
				t.Fatalf("Run: exit %v, %v, want %v\n%s", r.e, r.runErr, vmm.ExitSnapshot, r.out)
			}
			if r.snapErr != nil || r.closeErr != nil {
				t.Fatalf("snapshot: %v; Close: %v", r.snapErr, r.closeErr)
			}
			if b, err := os.ReadFile(disk); err != nil || !bytes.Equal(b, img) {
				t.Fatalf("the exiting machine wrote its image after the snapshot (%v): sector 2 %q...", err, b[2*512:2*512+8])
			}

			got, e, err := restoreRun(t, vmm.Config{}, path)
			wantDebugExit(t, e, err, 0)
			wantLines(t, got, "vblk: queued write status 0\r\n", "vblk: ok\r\n")
			b, err := os.ReadFile(disk)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b[2*512:3*512], bytes.Repeat([]byte{'Q'}, 512)) {
				t.Error("the restored guest's queued write is not in sector 2")
			}
		})
	}
}

// cutWriter takes n bytes, then fails, as a full disk does.
type cutWriter struct{ n int }

func (w *cutWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		k := w.n
		w.n = 0
		return k, errors.New("disk full")
	}
	w.n -= len(p)
	return len(p), nil
}

// TestSnapshotWithoutExitServesOn: a machine whose snapshot does not end
// it keeps its devices serving once the snapshot is over: a snapshot at
// ready without SnapshotExit, and a SnapshotAndExit whose writer fails
// (the machine runs on, as its godoc says). The vblk guest's write queued
// at the snapshot is made and the guest ends well; held devices would
// leave it waiting for its write.
func TestSnapshotWithoutExitServesOn(t *testing.T) {
	tests := []struct {
		name string
		// failing: SnapshotAndExit to a writer that fails after 1 MiB,
		// instead of Config.SnapshotOnReady without SnapshotExit.
		failing bool
	}{
		{"SnapshotOnReady without exit", false},
		{"SnapshotAndExit that fails", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			needKVM(t)
			disk, _ := diskImage(t)
			var w io.Writer = new(bytes.Buffer)
			if tt.failing {
				w = &cutWriter{n: 1 << 20}
			}
			r := runQueued(t, disk, w, tt.failing, false)
			if tt.failing != (r.snapErr != nil) {
				t.Fatalf("snapshot: %v; want it to fail: %v", r.snapErr, tt.failing)
			}
			if r.runErr != nil {
				t.Fatalf("Run: %v\n%s", r.runErr, r.out)
			}
			wantDebugExit(t, r.e, r.runErr, 0)
			wantLines(t, r.out, "vblk: queued write status 0\r\n", "vblk: ok\r\n")
		})
	}
}
