package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBenchChildHidden: the child command the bench runs for each boot is
// no command outside such a child: "smolvmm bench boot" by hand printed
// the child's help and urfave's raw "Required flag" error (status 1), and
// with --report FILE truncated FILE unchecked. boot is now a stray
// argument, status 2, and FILE is left alone.
func TestBenchChildHidden(t *testing.T) {
	f := filepath.Join(t.TempDir(), "keep")
	if err := os.WriteFile(f, []byte("keep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"alone", []string{"boot"}, `smolvmm bench: unexpected argument "boot": smolvmm bench takes only flags`},
		{"with --report", []string{"boot", "--report", f}, "smolvmm bench: "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, stdout, stderr := benchRun(t, nil, tt.args...)
			if status != 2 || stdout != "" || !strings.HasPrefix(stderr, tt.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("status %d, stdout:\n%s\nstderr:\n%s", status, stdout, stderr)
			}
			if b, err := os.ReadFile(f); err != nil || string(b) != "keep\n" {
				t.Errorf("%s now holds %q (%v)", f, b, err)
			}
		})
	}
}
