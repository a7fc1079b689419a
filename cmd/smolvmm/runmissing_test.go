package main

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// TestRunMissingKernelBeforeDisk: run -k K -d D with neither file there
// said only that D was missing; once it was made, that K was. The
// kernel is now said first, as bench says it.
func TestRunMissingKernelBeforeDisk(t *testing.T) {
	dir := t.TempDir()
	kern, disk := filepath.Join(dir, "netbsd"), filepath.Join(dir, "rescue.img")
	want := "read kernel: open " + kern + ": no such file or directory (check the path given with -k)\n"
	for _, cmd := range [][]string{
		{"run", "--net", "none"},
		{"bench", "-n", "1", "--warmup", "0"},
	} {
		args := append(cmd, "--kvm-device", filepath.Join(dir, "kvm"), "-k", kern, "-d", disk)
		out, err := exec.Command(smolvmmBin(t), args...).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || string(out) != "smolvmm "+cmd[0]+": "+want {
			t.Errorf("smolvmm %v: %v, said %q; want status 1 and %q", args, err, out, "smolvmm "+cmd[0]+": "+want)
		}
	}
}
