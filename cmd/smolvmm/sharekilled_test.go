package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKilledShareRemovedByNext: a run killed by SIGKILL while it builds
// a --share image leaves that image's directory in TMPDIR (no cleanup
// runs); the next run with --share removes it. It was left for good, as
// big as the shared directory.
func TestKilledShareRemovedByNext(t *testing.T) {
	dir := t.TempDir()
	tmp, share, kernel := filepath.Join(dir, "tmp"), filepath.Join(dir, "share"), filepath.Join(dir, "kernel")
	for _, d := range []string{tmp, share} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(kernel, []byte("not a kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Long enough to build that the run is caught at it.
	if err := os.WriteFile(filepath.Join(share, "small"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	big, err := os.Create(filepath.Join(share, "big"))
	if err != nil {
		t.Fatal(err)
	}
	big.Truncate(3 << 30)
	big.Close()
	t.Setenv("TMPDIR", tmp)
	args := []string{"run", "-k", kernel, "--net", "none", "--kvm-device", filepath.Join(dir, "nokvm"), "--share"}
	cmd := exec.Command(smolvmmBin(t), append(args, share)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	var building []string
	for len(building) == 0 && time.Now().Before(deadline) {
		building, _ = filepath.Glob(filepath.Join(tmp, "smolvmm-share-*", ".share.img.tmp-*"))
		time.Sleep(time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if len(building) == 0 {
		t.Fatalf("the run was not seen building its share; stderr:\n%s", stderr.String())
	}
	left, _ := filepath.Glob(filepath.Join(tmp, "smolvmm-share-*"))
	if len(left) != 1 {
		t.Fatalf("after the kill, %v in TMPDIR, want the killed run's directory", left)
	}
	os.Remove(filepath.Join(share, "big"))
	_, stderr2, status := runCLI(t, append(args, share)...)
	if want := "KVM is not available"; status != 1 || !strings.Contains(stderr2, want) {
		t.Errorf("the next run: status %d, stderr:\n%s\nwant status 1 and %q", status, stderr2, want)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "smolvmm-share-*")); len(left) != 0 {
		t.Errorf("left in TMPDIR after the next run: %v", left)
	}
}
