package vmm_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
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
			case <-time.After(20 * time.Second):
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

// failingWriter refuses every write, as a full disk does.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

// TestReadySnapshotFailureLogged: a SnapshotOnReady snapshot that fails,
// with neither OnSnapshot nor SnapshotExit to report it, is logged to Log
// whatever the writer: its write failing, as its commit's failure was.
// (A write that failed was discarded without a word.)
func TestReadySnapshotFailureLogged(t *testing.T) {
	needKVM(t)
	var log guests.Console
	out, e, err := boot(t, vmm.Config{Kernel: "demo", KernelImage: guests.Demo, MemoryMiB: 16, Log: &log,
		Ready: regexp.MustCompile("^smolvmm-demo: hello"), SnapshotOnReady: failingWriter{}}, 30*time.Second)
	if err != nil || e.Reason != vmm.ExitDebug {
		t.Fatalf("Run = %+v, %v; the guest should run on; output:\n%s", e, err, out)
	}
	if got := log.String(); !strings.Contains(got, "snapshot on ready: ") || !strings.Contains(got, "no space left on device") {
		t.Errorf("log:\n%s\nwant the failed snapshot's error", got)
	}
}

// TestReadyTargetCommitFails: the machine's Finish of a TargetWriter whose
// commit fails (its temporary was removed under it) fails the snapshot:
// Run returns the error with SnapshotExit, and Log has it otherwise.
func TestReadyTargetCommitFails(t *testing.T) {
	tests := []struct {
		name string
		exit bool // SnapshotExit
	}{
		{"SnapshotExit", true},
		{"the guest runs on", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			needKVM(t)
			dir := t.TempDir()
			target, err := snapshot.OpenTarget(filepath.Join(dir, "demo.snap"))
			if err != nil {
				t.Fatal(err)
			}
			defer target.Close()
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			var log guests.Console
			out, e, err := boot(t, vmm.Config{Kernel: "demo", KernelImage: guests.Demo, MemoryMiB: 16, Log: &log,
				Ready: regexp.MustCompile("^smolvmm-demo: hello"), SnapshotOnReady: target.NewWriter(), SnapshotExit: tt.exit}, 30*time.Second)
			if tt.exit {
				if !errors.Is(err, snapshot.ErrMoved) {
					t.Fatalf("Run = %+v, %v; want the commit's failure (ErrMoved); output:\n%s", e, err, out)
				}
				return
			}
			if err != nil || e.Reason != vmm.ExitDebug {
				t.Fatalf("Run = %+v, %v; the guest should run on; output:\n%s", e, err, out)
			}
			if got := log.String(); !strings.Contains(got, "snapshot on ready: ") || !strings.Contains(got, "removed") {
				t.Errorf("log:\n%s\nwant the failed commit's error", got)
			}
		})
	}
}
