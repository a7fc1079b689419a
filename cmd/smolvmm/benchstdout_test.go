package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBenchFilesDespiteStdout: a bench whose standard output cannot be
// written still writes --json and --svg (the sequential bench returned
// on the table's write error first), and says once that the output was
// lost, with status 1.
func TestBenchFilesDespiteStdout(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	defer full.Close()
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"sequential", []string{"-n", "2", "--warmup", "0"}},
		{"parallel", []string{"--parallel", "2"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			js, svg := filepath.Join(dir, "r.json"), filepath.Join(dir, "b.svg")
			cmd := exec.Command(smolvmmBin(t), append([]string{"bench", "--net", "none", "--json", js, "--svg", svg}, tt.args...)...)
			cmd.Stdout = full
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			status := cmd.ProcessState.ExitCode()
			if _, ok := err.(*exec.ExitError); err != nil && !ok {
				t.Fatal(err)
			}
			lines := strings.Count(stderr.String(), "writing standard output")
			if status != 1 || lines != 1 {
				t.Errorf("status %d, %d lines about standard output; stderr:\n%s", status, lines, stderr.String())
			}
			for _, f := range []string{js, svg} {
				if fi, err := os.Stat(f); err != nil || fi.Size() == 0 {
					t.Errorf("%s not written: %v", filepath.Base(f), err)
				}
			}
		})
	}
}
