package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDiskSpecAdviceOnCommandLine: a -d value blk.ParseDiskSpec refuses
// gets its advice from run and bench themselves, once, with status 2, not
// only from advise called on the library's error: the commands flattened
// the error into text, and the advice the library no longer writes was
// lost on the way.
func TestDiskSpecAdviceOnCommandLine(t *testing.T) {
	dir := t.TempDir()
	kernel := filepath.Join(dir, "k")
	if err := os.WriteFile(kernel, []byte("not read: -d is refused first"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "b.img")
	if err := os.WriteFile(img, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := img + ",serial=ab,serial=cd"
	tests := []struct {
		name string
		args []string
	}{
		{"run", []string{"run", "-k", kernel, "-d", spec, "--net", "none"}},
		{"bench", []string{"bench", "-n", "1", "-k", kernel, "-d", spec, "--net", "none"}},
		{"bench compare qemu", []string{"bench", "-n", "1", "-k", kernel, "-d", spec, "--net", "none", "--compare", "qemu"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, status := runCLI(t, tt.args...)
			if status != 2 {
				t.Errorf("status %d, want 2; stderr:\n%s", status, stderr)
			}
			for _, want := range []string{"option serial given twice", "give each option once"} {
				if n := strings.Count(stderr, want); n != 1 {
					t.Errorf("stderr has %q %d times, want once:\n%s", want, n, stderr)
				}
			}
		})
	}
}
