package main

import (
	"strings"
	"testing"
)

// TestBenchTimeoutAdvice: a boot that times out gets "raise --timeout"
// (the error was rebuilt from its text, and lost bench.ErrTimeout), and
// its error is said once, in the results on stdout.
func TestBenchTimeoutAdvice(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	status, stdout, stderr := benchRun(t, nil, "-k", readySpinKernel(t), "--net", "none", "-n", "1", "--warmup", "0",
		"--ready", "^never", "--timeout", "1s")
	if status != 1 || !strings.Contains(stdout, "boot timed out: boot did not end within 1s") ||
		!strings.HasSuffix(stderr, "smolvmm bench: smolvmm's boots failed; the results above say why (raise --timeout)\n") ||
		strings.Contains(stderr, "did not end within") {
		t.Errorf("status %d, stdout:\n%s\nstderr:\n%s", status, stdout, stderr)
	}
}
