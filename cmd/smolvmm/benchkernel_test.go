package main

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/guests"
)

// TestBenchKernelChecked: bench refuses before any boot, once and with
// run's status, the kernel run refuses before it starts: an -a its
// protocol rejects (status 2) and a file that is no kernel (status 1),
// also with --parallel, where every VM said it, twice.
func TestBenchKernelChecked(t *testing.T) {
	zeros := filepath.Join(t.TempDir(), "d1.img")
	if err := os.WriteFile(zeros, make([]byte, 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	nbboot := guests.ForTest(t, "nbboot")
	tests := []struct {
		name   string
		args   []string
		status int
		want   string
	}{
		{"bad console for a NetBSD kernel", []string{"-k", nbboot, "-a", "console=foo", "-n", "1", "--warmup", "0"}, 2,
			`smolvmm bench: load kernel nbboot.elf: bad boot arguments: console="foo"`},
		{"not a kernel", []string{"-k", zeros, "-n", "1", "--warmup", "0"}, 1,
			"smolvmm bench: load kernel d1.img: neither a multiboot kernel nor a NetBSD ELF kernel"},
		{"not a kernel, compared with QEMU", []string{"-k", zeros, "--compare", "qemu", "-n", "1", "--warmup", "0"}, 1,
			"smolvmm bench: load kernel d1.img: neither a multiboot kernel nor a NetBSD ELF kernel"},
		{"not a kernel, parallel", []string{"-k", zeros, "--parallel", "3"}, 1,
			"smolvmm bench: load kernel d1.img: neither a multiboot kernel nor a NetBSD ELF kernel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, stdout, stderr := benchRun(t, nil, append([]string{"--net", "none"}, tt.args...)...)
			if status != tt.status || stdout != "" || !strings.HasPrefix(stderr, tt.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("status %d (want %d), stdout:\n%s\nstderr:\n%s", status, tt.status, stdout, stderr)
			}
		})
	}
}

// TestBenchCompareBootInSnapshotMemory: bench --restore --compare boot
// boots the kernel in the snapshot's memory, so the kernel is checked in
// that size before any boot, and one too large for it is refused with
// advice that --restore can follow (it once passed the check at -m's 128
// MiB, every boot then failed asking for an -m that --restore refuses,
// and bench ended with status 0); and a compared boot that fails fails
// the bench, as smolvmm's own does.
func TestBenchCompareBootInSnapshotMemory(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	spin := readySpinKernel(t) // bench_test.go: prints S, R, then spins
	snap := filepath.Join(t.TempDir(), "small.snap")
	cmd := exec.Command(smolvmmBin(t), "run", "-k", spin, "-m", "4", "--net", "none", "--ready", "^S", "--snapshot", snap, "--snapshot-exit")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("snapshot: %v\n%s", err, out)
	}
	// The same guest with its bss up to 9 MiB: it needs 10 MiB of memory, its bootstrap page tables included
	// (the multiboot header's bss_end_addr, at offset 24).
	k, err := os.ReadFile(spin)
	if err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint32(k[24:], 0x900000)
	big := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(big, k, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		status int
		want   []string
	}{
		{"too large for the snapshot's memory", []string{"-k", big}, 1,
			[]string{"smolvmm bench: load kernel big: guest memory too small", "--compare boot boots it in the snapshot's 4 MiB, whatever -m says: take the snapshot (--restore " + snap + ") again with run -m 10 or more"}},
		// Restored, it is ready at once and stopped; booted, it never
		// ends and times out.
		{"the compared boot fails", []string{"-k", spin, "--timeout", "3s"}, 1,
			[]string{"smolvmm's boots failed; the results above say why"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--net", "none", "-n", "1", "--warmup", "0", "--restore", snap, "--compare", "boot"}, tt.args...)
			status, stdout, stderr := benchRun(t, nil, args...)
			if status != tt.status {
				t.Errorf("status %d, want %d\nstdout:\n%s\nstderr:\n%s", status, tt.status, stdout, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if strings.Contains(stderr, "(-m ") {
				t.Errorf("stderr advises an -m that --restore refuses:\n%s", stderr)
			}
		})
	}
}
