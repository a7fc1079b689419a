package main

import (
	"strings"
	"testing"
)

// TestUpRunOnlyFlags: run's flags that up has not are refused with what to
// use instead, not only "unknown flag".
func TestUpRunOnlyFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"up", "-k", "x", "rescue"}, "smolvmm up: unknown flag -k: up boots the kernel it fetches; to boot your own kernel use smolvmm run -k FILE"},
		{[]string{"up", "--kernel=x", "rescue"}, "smolvmm up: unknown flag --kernel: up boots the kernel it fetches; to boot your own kernel use smolvmm run -k FILE"},
		{[]string{"up", "--restore", "x", "rescue"}, "smolvmm up: unknown flag --restore: restore a snapshot with smolvmm run --restore FILE"},
		{[]string{"up", "--bogus", "rescue"}, "smolvmm up: unknown flag --bogus (see smolvmm up --help)"},
		{[]string{"run", "--bogus"}, "smolvmm run: unknown flag --bogus (see smolvmm run --help)"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, stderr, status := runCLI(t, tt.args...)
			if msg := strings.TrimSpace(stderr); status != 2 || msg != tt.want {
				t.Errorf("status %d, stderr %q; want 2 and %q", status, msg, tt.want)
			}
		})
	}
}
