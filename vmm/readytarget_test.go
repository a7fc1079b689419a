package vmm_test

import (
	"context"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/snapshot"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestReadyTargetWithoutOnSnapshot: a snapshot.TargetWriter given as
// SnapshotOnReady with no OnSnapshot to call its Finish is finished by
// the machine: the snapshot is committed, and the Target's Close returns.
// (Run reported the snapshot written, nothing was committed, and Close
// waited for a Finish that never came.)
func TestReadyTargetWithoutOnSnapshot(t *testing.T) {
	tests := []struct {
		name string
		exit bool // SnapshotExit
		want vmm.ExitReason
	}{
		{"SnapshotExit", true, vmm.ExitSnapshot},
		{"the guest runs on", false, vmm.ExitDebug},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			needKVM(t)
			path := filepath.Join(t.TempDir(), "demo.snap")
			target, err := snapshot.OpenTarget(path)
			if err != nil {
				t.Fatal(err)
			}
			m, err := vmm.New(vmm.Config{Kernel: "demo", KernelImage: guests.Demo, MemoryMiB: 16,
				Ready: regexp.MustCompile("^smolvmm-demo: hello"), SnapshotOnReady: target.NewWriter(), SnapshotExit: tt.exit})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			e, err := m.Run(ctx)
			if err != nil || e.Reason != tt.want {
				t.Fatalf("Run = %+v, %v; want %v", e, err, tt.want)
			}
			m.Close()
			closed := make(chan bool, 1)
			go func() { closed <- target.Close() }()
			select {
			case committed := <-closed:
				if !committed {
					t.Fatal("no snapshot committed")
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Target.Close still waits for the snapshot's Finish")
			}
			f, err := snapshot.Open(path)
			if err != nil {
				t.Fatalf("the committed snapshot: %v", err)
			}
			f.Close()
		})
	}
}
