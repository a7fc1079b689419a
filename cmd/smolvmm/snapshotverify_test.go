package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/snapshot"
)

// TestCLIRestoreVerifyMemory: run --restore --verify-memory refuses a
// snapshot with one byte of its memory flipped before the VM starts, and
// restores an intact one; without the flag the damaged one is restored
// (its memory is not read: documented). --verify-memory without
// --restore is a command-line mistake.
func TestCLIRestoreVerifyMemory(t *testing.T) {
	for _, cmd := range []string{"run", "bench"} {
		if _, stderr, status := runCLI(t, cmd, "--verify-memory"); status != 2 || !strings.Contains(stderr, "--verify-memory without --restore FILE") {
			t.Errorf("%s --verify-memory alone: status %d, %q", cmd, status, stderr)
		}
	}
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	dir := t.TempDir()
	snap := filepath.Join(dir, "counter.snap")
	if _, stderr, status := runCLI(t, "run", "-k", guests.ForTest(t, "counter"), "-m", "16", "-a", "n=103 at=100", "--net", "none",
		"--snapshot", snap, "--snapshot-exit"); status != 0 {
		t.Fatalf("snapshot run: status %d\n%s", status, stderr)
	}
	b, err := os.ReadFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	f, err := snapshot.Open(snap)
	if err != nil {
		t.Fatal(err)
	}
	memOff := f.Header.MemOff
	f.Close()
	// A byte in a zero page the counter guest never touches: the guest
	// runs the same on it, so only the check tells.
	b[memOff+8<<20+123] ^= 1
	damaged := filepath.Join(dir, "damaged.snap")
	if err := os.WriteFile(damaged, b, 0o600); err != nil {
		t.Fatal(err)
	}
	const rest = "count 101\r\ncount 102\r\ncount 103\r\ncounter: done\r\n"
	tests := []struct {
		name   string
		path   string
		verify bool
		refuse bool
	}{
		{"intact, verified", snap, true, false},
		{"damaged, verified", damaged, true, true},
		{"damaged, not verified", damaged, false, false},
	}
	// bench passes the flag on to each restore.
	if _, stderr, status := runCLI(t, "bench", "--restore", damaged, "--net", "none", "-n", "1", "--warmup", "0", "--verify-memory"); status != 1 || !strings.Contains(stderr, "snapshot is corrupt: memory section's CRC-32C is") {
		t.Errorf("bench --restore --verify-memory of the damaged snapshot: status %d, stderr %q", status, stderr)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"run", "--restore", tt.path, "--net", "none"}
			if tt.verify {
				args = append(args, "--verify-memory")
			}
			out, stderr, status := runCLI(t, args...)
			if tt.refuse {
				if status != 1 || out != "" || !strings.Contains(stderr, "snapshot is corrupt: memory section's CRC-32C is") {
					t.Fatalf("status %d, output %q, stderr %q; want status 1, no output, the memory digest's mismatch", status, out, stderr)
				}
				return
			}
			if status != 1 || out != rest {
				t.Fatalf("status %d (want 1, debug-exit 0), output %q, want %q\nstderr:\n%s", status, out, rest, stderr)
			}
		})
	}
}
