package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/smolvmm/smolvmm/guests"
)

// TestCLIRestoreDiskAdviceTrust: a restore's refusal of the -d flags (a
// ,ro the snapshot contradicts, their number) advised leaving out -d to
// take the snapshot's disks even for a snapshot another user owns, whose
// disks are then refused. That advice is now given only for a snapshot
// the restore would take them from, and an untrusted one's own paths are
// not offered as flags (FILE2 stands for the disk -d did not give).
func TestCLIRestoreDiskAdviceTrust(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the snapshot another owner")
	}
	kernel := guests.ForTest(t, "counter")
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a.img"), filepath.Join(dir, "b.img"), filepath.Join(dir, "c.img")
	for _, p := range []string{a, b, c} {
		if err := os.WriteFile(p, make([]byte, 1<<20), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	snap := filepath.Join(dir, "two.snap")
	if _, stderr, status := runCLI(t, "run", "-k", kernel, "-m", "16", "-a", "n=5 at=2", "--net", "none",
		"-d", a, "-d", b, "--snapshot", snap, "--snapshot-exit"); status != 0 {
		t.Fatalf("snapshot run: status %d, stderr:\n%s", status, stderr)
	}
	data, err := os.ReadFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other.snap")
	if err := os.WriteFile(other, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(other, 65534, -1); err != nil {
		t.Fatal(err)
	}
	const leave = "leave out -d"
	tests := []struct {
		name  string
		snap  string
		disks []string
		want  string
	}{
		{"yours, ,ro", snap, []string{a + ",ro", b}, "(give -d as the snapshot's machine had it: -d " + a + " -d " + b + ", or leave out -d to take the snapshot's disks)"},
		{"yours, one disk", snap, []string{a}, "(give -d as the snapshot's machine had it: -d " + a + " -d " + b + ", or leave out -d to take the snapshot's disks)"},
		{"another user's, ,ro", other, []string{a + ",ro", b}, "(give -d as the snapshot's machine had it: -d " + a + " -d " + b + ")"},
		{"another user's, one disk", other, []string{a}, "(give -d as the snapshot's machine had it: -d " + a + " -d FILE2)"},
		{"another user's, three disks", other, []string{a, b, c}, "(give -d as the snapshot's machine had it: -d " + a + " -d " + b + ")"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"run", "--restore", tt.snap}
			for _, d := range tt.disks {
				args = append(args, "-d", d)
			}
			out, stderr, status := runCLI(t, args...)
			if status != 2 || !strings.Contains(stderr, tt.want) {
				t.Fatalf("status %d, output %q, stderr %q; want 2 and %q", status, out, stderr, tt.want)
			}
			if tt.snap == other && strings.Contains(stderr, leave) {
				t.Errorf("stderr %q offers %q for a snapshot whose own disks are refused", stderr, leave)
			}
		})
	}
}

// TestCLIRestoreSnapshotLocked: a restore of a snapshot another process
// holds locked (a VM writing its snapshots to it) said the errno's text
// ("resource temporarily unavailable") and nothing of what to do. It now
// says who holds it and what to do, with status 1 (a file's state).
func TestCLIRestoreSnapshotLocked(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := guests.ForTest(t, "counter")
	snap := filepath.Join(t.TempDir(), "c.snap")
	if _, stderr, status := runCLI(t, "run", "-k", kernel, "-m", "16", "-a", "n=5 at=2", "--net", "none",
		"--snapshot", snap, "--snapshot-exit"); status != 0 {
		t.Fatalf("snapshot run: status %d, stderr:\n%s", status, stderr)
	}
	f, err := os.Open(snap)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// As a run --snapshot holds its target until its first snapshot.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"smolvmm run: restore: snapshot " + snap + ": the file is locked by another machine or process; its lock is held by process " + strconv.Itoa(os.Getpid()),
		"(a VM run with --snapshot holds the file it will replace until its first snapshot is there: wait for that snapshot, or restore a copy made with cp)",
	}
	out, stderr, status := runCLI(t, "run", "--restore", snap)
	if status != 1 || strings.Contains(stderr, "temporarily unavailable") {
		t.Errorf("status %d, output %q, stderr %q; want 1 and no errno text", status, out, stderr)
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr %q lacks %q", stderr, w)
		}
	}
}
