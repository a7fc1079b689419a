package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestCLISnapshotSetsDiskMtimeBack: run --snapshot of a guest whose
// read-write image was modified just before sets the image's time back
// under the seccomp filter as without it (futimens, which the VMM's
// filter allows with --snapshot), and records it, so the restore of the
// unchanged image need not read it. The filter refused the call: it
// stopped the VMM, and with EPERM the time stayed too recent to trust.
func TestCLISnapshotSetsDiskMtimeBack(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	counter := guests.ForTest(t, "counter")
	smolvmmBin(t) // built first: the image's time is to be recent at the snapshot
	for _, tt := range []struct {
		name  string
		flags []string
	}{
		{"filtered", nil},
		{"no-seccomp", []string{"--no-seccomp"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			img := filepath.Join(dir, "dk.img")
			if err := os.WriteFile(img, make([]byte, 1<<20), 0o600); err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			if err := os.Chtimes(img, now, now); err != nil {
				t.Fatal(err)
			}
			args := append([]string{"run", "-k", counter, "-m", "16", "-a", "n=120 at=100", "--net", "none",
				"-d", "dk.img", "--snapshot", "dk.snap", "--snapshot-exit"}, tt.flags...)
			_, stderr, status := runCLIIn(t, dir, args...)
			if status != 0 {
				t.Fatalf("snapshot: status %d, stderr:\n%s", status, stderr)
			}
			ids, err := vmm.SnapshotDisks(filepath.Join(dir, "dk.snap"))
			if err != nil || len(ids) != 1 {
				t.Fatalf("SnapshotDisks: %v, %v", ids, err)
			}
			fi, err := os.Stat(img)
			if err != nil {
				t.Fatal(err)
			}
			taken := time.Unix(0, ids[0].TakenNs)
			if fi.ModTime().UnixNano() != ids[0].MtimeNs || taken.Sub(fi.ModTime()) <= 3*time.Second {
				t.Errorf("dk.img's mtime %v, recorded %v, snapshot taken at %v: want it recorded, more than 3s before", fi.ModTime(), time.Unix(0, ids[0].MtimeNs), taken)
			}
		})
	}
}
