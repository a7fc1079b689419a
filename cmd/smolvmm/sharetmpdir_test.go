package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestShareHoldingTMPDIR: --share of a directory that holds TMPDIR,
// where the disk image is built, is refused with the advice to move
// TMPDIR (imagebuilder refuses an image inside the directory it holds).
func TestShareHoldingTMPDIR(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, "tmp")
	kernel := filepath.Join(dir, "kernel")
	if err := os.Mkdir(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kernel, []byte("not a kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", tmp)
	_, stderr, status := runCLI(t, "run", "-k", kernel, "--net", "none", "--share", dir, "--kvm-device", filepath.Join(dir, "nokvm"))
	want := "smolvmm run: --share " + dir + ": the disk image is built in " + tmp + ", which is inside the directory shared: set TMPDIR to a directory outside " + dir + "\n"
	if status != 1 || !strings.Contains(stderr, want) {
		t.Errorf("status %d, stderr:\n%s\nwant status 1 and %q", status, stderr, want)
	}
}
