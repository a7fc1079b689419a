package main

import (
	"crypto/sha256"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/snapshot"
)

// TestCLIRestoreOlderVersion: a snapshot of an older format version (a
// version-7 file's MSRs lack the MTRRs, which its guest would find 0) is
// refused before its guest runs, saying an older smolvmm wrote it and to
// take it again, status 1; not restored half right.
func TestCLIRestoreOlderVersion(t *testing.T) {
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
	for _, v := range []uint32{7, 1} {
		old := filepath.Join(dir, "old.snap")
		// Another version's whole file, as the package doc lays it out:
		// the version at bytes 8-11 and the SHA-256 (bytes 48-79) over
		// bytes 0-47, 80-127 and the state section, its length at 32.
		le := binary.LittleEndian
		le.PutUint32(b[8:], v)
		h := sha256.New()
		h.Write(b[:48])
		h.Write(b[80:snapshot.HeaderSize])
		h.Write(b[snapshot.HeaderSize : snapshot.HeaderSize+le.Uint64(b[32:])])
		copy(b[48:80], h.Sum(nil))
		if err := os.WriteFile(old, b, 0o600); err != nil {
			t.Fatal(err)
		}
		out, stderr, status := runCLI(t, "run", "--restore", old, "--net", "none")
		if status != 1 || out != "" {
			t.Errorf("version %d: status %d, output %q; want status 1 and no guest output\nstderr:\n%s", v, status, out, stderr)
		}
		for _, want := range []string{old, "written by an older smolvmm", "take the snapshot again"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("version %d: stderr lacks %q:\n%s", v, want, stderr)
			}
		}
	}
}
