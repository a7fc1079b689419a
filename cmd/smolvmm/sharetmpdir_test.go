package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestShareHoldingTMPDIR: --share of a directory that holds TMPDIR,
// where the disk image is built (--share /tmp, or ~ with TMPDIR=~/tmp),
// is shared, the image left out of itself (imagebuilder's test shows the
// guest sees no file of it), and removed as the guest starts. It was
// refused, status 1: the check meant for mkimg --data, whose image would
// hold the last one, applied to run's new, empty, temporary image.
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
	// Without KVM: the share is built, and the run ends at the device.
	_, stderr, status := runCLI(t, "run", "-k", kernel, "--net", "none", "--share", dir, "--kvm-device", filepath.Join(dir, "nokvm"))
	if want := "KVM is not available"; status != 1 || !strings.Contains(stderr, want) || strings.Contains(stderr, "--share") {
		t.Errorf("status %d, stderr:\n%s\nwant status 1 and %q, nothing about --share", status, stderr, want)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "smolvmm-share-*")); len(left) != 0 {
		t.Errorf("temporary images left behind: %v", left)
	}
	if !kvmUsable() {
		t.Skip("needs /dev/kvm to boot the demo guest with the share")
	}
	out, err := exec.Command(smolvmmBin(t), "demo", "--share", dir+",ro").CombinedOutput()
	if err != nil {
		t.Fatalf("smolvmm demo --share %s with TMPDIR %s: %v\n%s", dir, tmp, err, out)
	}
	if !strings.Contains(string(out), "1af4:1001 rev 00 class 010000 subsys 1af4:0002") {
		t.Errorf("shared disk not on the PCI bus:\n%s", out)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "smolvmm-share-*")); len(left) != 0 {
		t.Errorf("temporary images left behind: %v", left)
	}
}
