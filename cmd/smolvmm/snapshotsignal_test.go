package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/snapshot"
)

// TestCLISnapshotGroupSignal: SIGINT, SIGTERM, SIGHUP or SIGQUIT sent to
// a --snapshot run's whole process group (Ctrl-C off a terminal,
// timeout(1), a service manager's stop) reaches the broker too, which
// outlives the VMM and removes the temporaries: the directory holds only
// the snapshot at ready, or nothing when none was taken. Before, the
// signal killed the broker and the temporaries stayed.
func TestCLISnapshotGroupSignal(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	for _, sig := range []unix.Signal{unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT} {
		for _, ready := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/snapshot at ready %v", sig, ready), func(t *testing.T) {
				dir := t.TempDir()
				snap := filepath.Join(dir, "g.snap")
				extra := []string{"--snapshot", snap}
				if ready {
					extra = append(extra, "--ready", "vblk: flush ok")
				}
				cmd, stderr := runningVMWith(t, func(cmd *exec.Cmd) {
					cmd.SysProcAttr = &unix.SysProcAttr{Setpgid: true}
				}, nil, extra...)
				want := []string(nil)
				if ready {
					want = []string{"g.snap"}
					for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
						if f, err := snapshot.Open(snap); err == nil {
							f.Close()
							break
						}
						if time.Now().After(deadline) {
							t.Fatalf("no snapshot at ready within 30 s; stderr:\n%s", stderr)
						}
					}
				}
				if err := unix.Kill(-cmd.Process.Pid, sig); err != nil {
					t.Fatal(err)
				}
				// Returns once the broker, which holds stderr too, ended.
				cmd.Wait()
				if got := dirNames(t, dir); !slices.Equal(got, want) {
					t.Fatalf("after %v to the process group the directory holds %q; want %q\nstderr:\n%s", sig, got, want, stderr)
				}
				if _, err := os.Stat(snap); ready && err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}
