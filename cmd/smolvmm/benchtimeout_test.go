package main

import (
	"strings"
	"testing"
	"time"
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

// TestBenchGuestEndsBeforeReady: a guest that ends before a --ready that
// never matches is said to have, at once: its VMM waited (lingered) for
// a memory sample the bench takes only at ready, and the boot was said to
// time out ("raise --timeout"), or came after five seconds.
func TestBenchGuestEndsBeforeReady(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"sequential", []string{"-n", "1", "--warmup", "0"}, "the guest exited before the ready condition held"},
		{"parallel", []string{"--parallel", "1"}, "the guest ended (status 1) before its ready line"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			status, stdout, stderr := benchRun(t, nil, append([]string{"--net", "none", "--ready", "never-matches", "--timeout", "4s"}, tt.args...)...)
			if status != 1 || !strings.Contains(stdout, tt.want) || strings.Contains(stdout+stderr, "timed out") {
				t.Errorf("status %d, stdout:\n%s\nstderr:\n%s", status, stdout, stderr)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %v: the VMM lingered", d)
			}
		})
	}
}
