package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/snapshot"
)

// TestCLISnapshotGivenAsKernel: a snapshot given to -k (run -k up.snap)
// was refused as "neither a multiboot kernel nor a NetBSD ELF kernel ...
// starts with SMOL", advised to pass a multiboot or NetBSD kernel; it is
// now pointed to --restore, with --boot forcing a protocol too. A file
// that only shares the first bytes of the magic keeps the kernel advice.
func TestCLISnapshotGivenAsKernel(t *testing.T) {
	dir := t.TempDir()
	snap, other := filepath.Join(dir, "up.snap"), filepath.Join(dir, "smol.bin")
	if err := os.WriteFile(snap, append([]byte(snapshot.Magic), make([]byte, 120)...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, append([]byte("SMOLxxxx"), make([]byte, 120)...), 0o644); err != nil {
		t.Fatal(err)
	}
	restore := "(-k " + snap + " is a smolvmm snapshot, not a kernel: give it as --restore " + snap + " instead of -k)"
	kernel := "(pass -k a multiboot v1 kernel or a NetBSD i386/amd64 ELF kernel"
	tests := []struct {
		name     string
		args     []string
		want     string
		needsKVM bool
	}{
		{"run", []string{"run", "-k", snap, "--net", "none"}, restore, true},
		{"run --boot netbsd", []string{"run", "-k", snap, "--net", "none", "--boot", "netbsd"}, restore, true},
		{"run, not a snapshot", []string{"run", "-k", other, "--net", "none"}, kernel, true},
		// bench loads the kernel before any VM, without KVM.
		{"bench", []string{"bench", "-k", snap, "--net", "none", "--kvm-device", filepath.Join(dir, "kvm")}, restore, false},
		{"bench --boot multiboot", []string{"bench", "-k", snap, "--net", "none", "--boot", "multiboot", "--kvm-device", filepath.Join(dir, "kvm")}, restore, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needsKVM && !kvmUsable() {
				t.Skip("needs /dev/kvm")
			}
			_, stderr, status := runCLI(t, tt.args...)
			if status != 1 || !strings.Contains(stderr, tt.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("status %d, stderr %q; want status 1 and one line with %q", status, stderr, tt.want)
			}
		})
	}
}
