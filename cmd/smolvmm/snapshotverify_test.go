package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/snapshot"
)

// TestCLIRestoreVerifyMemory: run --restore (and bench --restore) refuses
// by default a snapshot with one page of its memory damaged (a byte of
// the kernel flipped; a page the file leaves as a hole given a non-zero
// byte) before the VM starts, naming the memory digest's mismatch, and
// restores an intact one; with --no-verify-memory the damaged ones are
// restored (their memory is not read: documented). --no-verify-memory
// without --restore is a command-line mistake, and --verify-memory is
// gone (checking is the default).
func TestCLIRestoreVerifyMemory(t *testing.T) {
	for _, cmd := range []string{"run", "bench"} {
		if _, stderr, status := runCLI(t, cmd, "--no-verify-memory"); status != 2 || !strings.Contains(stderr, "--no-verify-memory without --restore FILE") {
			t.Errorf("%s --no-verify-memory alone: status %d, %q", cmd, status, stderr)
		}
		if _, stderr, status := runCLI(t, cmd, "--restore", "x.snap", "--verify-memory"); status != 2 || !strings.Contains(stderr, "verify-memory") {
			t.Errorf("%s --verify-memory: status %d, %q; want the flag refused", cmd, status, stderr)
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
	f, err := snapshot.Open(snap)
	if err != nil {
		t.Fatal(err)
	}
	memOff := int64(f.Header.MemOff)
	f.Close()
	// A byte of the kernel, loaded at 1 MiB: a page with data.
	flipped := damagedCopy(t, snap, filepath.Join(dir, "flipped.snap"), memOff+1<<20+100, true)
	// A byte in a zero page the counter guest never touches, a hole of
	// the file: the guest runs the same on it, so only the check tells.
	filled := damagedCopy(t, snap, filepath.Join(dir, "filled.snap"), memOff+8<<20+123, false)
	const rest = "count 101\r\ncount 102\r\ncount 103\r\ncounter: done\r\n"
	const corrupt = "snapshot is corrupt: memory section's CRC-32C is"
	tests := []struct {
		name     string
		path     string
		noVerify bool
		refuse   bool
	}{
		{"intact", snap, false, false},
		{"hole made non-zero", filled, false, true},
		{"data byte flipped", flipped, false, true},
		{"hole made non-zero, not checked", filled, true, false},
	}
	// bench checks each restore too; its results on stdout say why. With
	// --no-verify-memory it restores as run does (the flag was passed to
	// its restores untested).
	for _, b := range []struct {
		flags  []string
		status int
	}{
		{nil, 1},
		{[]string{"--no-verify-memory"}, 0},
	} {
		args := append([]string{"bench", "--restore", filled, "--net", "none", "-n", "1", "--warmup", "0"}, b.flags...)
		if stdout, stderr, status := runCLI(t, args...); status != b.status || strings.Contains(stdout, corrupt) != (b.status == 1) {
			t.Errorf("bench --restore of the damaged snapshot %v: status %d, want %d; stdout %q, stderr %q", b.flags, status, b.status, stdout, stderr)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"run", "--restore", tt.path, "--net", "none"}
			if tt.noVerify {
				args = append(args, "--no-verify-memory")
			}
			out, stderr, status := runCLI(t, args...)
			if tt.refuse {
				if status != 1 || out != "" || !strings.Contains(stderr, corrupt) || !strings.Contains(stderr, tt.path) {
					t.Fatalf("status %d, output %q, stderr %q; want status 1, no output, the memory digest's mismatch in %s", status, out, stderr, tt.path)
				}
				return
			}
			if status != 1 || out != rest {
				t.Fatalf("status %d (want 1, debug-exit 0), output %q, want %q\nstderr:\n%s", status, out, rest, stderr)
			}
		})
	}
}

// damagedCopy copies the snapshot at src to dst with its zero pages left
// as holes, flips a bit of the byte at off, which must be data or in a
// hole as said, and returns dst.
func damagedCopy(t *testing.T, src, dst string, off int64, data bool) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zero := make([]byte, snapshot.PageSize)
	for o := 0; o < len(b); o += snapshot.PageSize {
		if p := b[o:min(o+snapshot.PageSize, len(b))]; !bytes.Equal(p, zero[:len(p)]) {
			if _, err := f.WriteAt(p, int64(o)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := f.Truncate(int64(len(b))); err != nil {
		t.Fatal(err)
	}
	next, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
	if inHole := err != nil || next > off; inHole == data {
		t.Fatalf("byte %#x of %s: in a hole %v, want %v", off, dst, inHole, !data)
	}
	if data && b[off] == 0 {
		t.Fatalf("byte %#x of %s is zero", off, dst)
	}
	if _, err := f.WriteAt([]byte{b[off] ^ 0x40}, off); err != nil {
		t.Fatal(err)
	}
	return dst
}
