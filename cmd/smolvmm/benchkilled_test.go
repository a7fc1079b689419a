package main

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// TestBenchKilledLeavesNoTempDir: bench --compare qemu made the
// directory of QEMU's guest with os.MkdirTemp, removed only as it
// returned: killed (SIGKILL, the OOM killer), it left
// $TMPDIR/smolvmm-benchNNN/demo.elf for good. Locked while its bench
// runs, it is removed by the next bench, --compare qemu or not.
func TestBenchKilledLeavesNoTempDir(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := readySpinKernel(t)
	tmp := t.TempDir()
	// Never ready: the boot runs until it is killed. --console says when
	// the guest runs, the directory made by then.
	cmd := exec.Command(smolvmmBin(t), "bench", "-k", kernel, "--net", "none", "-n", "1", "--warmup", "0",
		"--ready", "^never", "--timeout", "10m", "--console", "--compare", "qemu")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	readUntilRan(t, stderr)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	left, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	if len(names) == 0 {
		t.Fatal("the killed bench left nothing in TMPDIR: nothing to test")
	}

	status, stdout, errText := benchRun(t, []string{"TMPDIR=" + tmp}, "-n", "1", "--warmup", "0", "--net", "none")
	if status != 0 {
		t.Fatalf("the next bench: status %d\n%s\n%s", status, stdout, errText)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		var now []string
		for _, e := range ents {
			now = append(now, e.Name())
		}
		t.Errorf("the killed bench left %q in TMPDIR; after the next bench it holds %q, want nothing", names, now)
	}
}
