package vmm_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestSnapshotExitLeavesQueuedWrite: the vblk guest ("queued") has a
// write of sector 2 in its disk's ring, not taken, when the snapshot is
// taken. A machine that exits with its snapshot (Config.SnapshotExit,
// Machine.SnapshotAndExit) leaves it there, even when its device is
// woken for it as the snapshot ends (ServeAfterSnapshots, as a worker's
// notification that waited for the snapshot is): the image stays as the
// snapshot recorded it, a restore accepts it, and the restored guest's
// write is made, once.
func TestSnapshotExitLeavesQueuedWrite(t *testing.T) {
	tests := []struct {
		name string
		// call: SnapshotAndExit from a goroutine the ready event
		// starts, instead of Config.SnapshotOnReady with SnapshotExit.
		call bool
	}{
		{"Config.SnapshotExit", false},
		{"Machine.SnapshotAndExit", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			needKVM(t)
			disk, img := diskImage(t)
			path := filepath.Join(t.TempDir(), "vblk.snap")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var out, log guests.Console
			var m *vmm.Machine
			var snapErr error
			snapped := make(chan struct{})
			cfg := vmm.Config{Kernel: guest(t, "vblk"), Append: "queued", MemoryMiB: 32,
				Disks: []blk.Spec{{Path: disk}}, Console: &out, Log: &log}
			if tt.call {
				cfg.OnEvent = func(e vmm.Event) {
					if e.Phase == vmm.PhaseReady {
						go func() {
							defer close(snapped)
							_, snapErr = m.SnapshotAndExit(f)
						}()
					}
				}
			} else {
				cfg.SnapshotOnReady, cfg.SnapshotExit = f, true
				cfg.OnSnapshot = func(_ vmm.SnapshotInfo, err error) {
					defer close(snapped)
					snapErr = err
				}
			}
			m, err = vmm.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			t.Cleanup(vmm.ServeAfterSnapshots(m))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			e, err := m.Run(ctx)
			if err != nil || e.Reason != vmm.ExitSnapshot {
				t.Fatalf("Run: exit %v, %v, want %v\n%s\nlog:\n%s", e, err, vmm.ExitSnapshot, out.String(), log.String())
			}
			<-snapped
			if snapErr != nil {
				t.Fatalf("snapshot: %v", snapErr)
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
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
			var out, log guests.Console
			var m *vmm.Machine
			var snapErr error
			snapped := make(chan struct{})
			cfg := vmm.Config{Kernel: guest(t, "vblk"), Append: "queued", MemoryMiB: 32,
				Disks: []blk.Spec{{Path: disk}}, Console: &out, Log: &log}
			if tt.failing {
				cfg.OnEvent = func(e vmm.Event) {
					if e.Phase == vmm.PhaseReady {
						go func() {
							defer close(snapped)
							_, snapErr = m.SnapshotAndExit(&cutWriter{n: 1 << 20})
						}()
					}
				}
			} else {
				cfg.SnapshotOnReady = new(bytes.Buffer)
				cfg.OnSnapshot = func(_ vmm.SnapshotInfo, err error) {
					defer close(snapped)
					snapErr = err
				}
			}
			var err error
			m, err = vmm.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			t.Cleanup(vmm.ServeAfterSnapshots(m))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			e, err := m.Run(ctx)
			<-snapped
			if tt.failing != (snapErr != nil) {
				t.Fatalf("snapshot: %v; want it to fail: %v", snapErr, tt.failing)
			}
			if err != nil {
				t.Fatalf("Run: %v\n%s\nlog:\n%s", err, out.String(), log.String())
			}
			wantDebugExit(t, e, err, 0)
			wantLines(t, out.String(), "vblk: queued write status 0\r\n", "vblk: ok\r\n")
		})
	}
}
