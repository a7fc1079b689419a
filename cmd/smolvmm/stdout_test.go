package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/kstrip/kstriptest"
)

// TestStdoutWriteError: output lost on standard output (a full disk, a
// descriptor open only for reading) fails the command, status 1, with one
// line that says so and what to do. demo, version and --help gave 0 with
// nothing said, while kstrip --list gave 1.
func TestStdoutWriteError(t *testing.T) {
	bin := smolvmmBin(t)
	kern := testKernel(t, kstriptest.Options{Bits: 32})
	const full = "writing standard output: no space left on device (free some space, or redirect the output elsewhere)"
	tests := []struct {
		name   string
		args   []string
		stdout string // the file standard output is opened on
		flag   int    // its open mode
		kvm    bool
		want   string // stderr's last line
	}{
		{"version", []string{"version"}, "/dev/full", os.O_WRONLY, false, "smolvmm version: " + full},
		{"--version", []string{"--version"}, "/dev/full", os.O_WRONLY, false, "smolvmm: " + full},
		{"--help", []string{"--help"}, "/dev/full", os.O_WRONLY, false, "smolvmm: " + full},
		{"run --help", []string{"run", "--help"}, "/dev/full", os.O_WRONLY, false, "smolvmm run: " + full},
		{"kstrip --list", []string{"kstrip", "--list", kern}, "/dev/full", os.O_WRONLY, false, "smolvmm kstrip: "},
		{"demo", []string{"demo"}, "/dev/full", os.O_WRONLY, true, "smolvmm demo: " + full},
		{"version, read-only", []string{"version"}, "/dev/null", os.O_RDONLY, false,
			"smolvmm version: writing standard output: it is not open for writing (redirect it to a file, or to /dev/null to discard it)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.kvm && !kvmUsable() {
				t.Skip("no usable /dev/kvm")
			}
			out, err := os.OpenFile(tt.stdout, tt.flag, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			cmd := exec.Command(bin, tt.args...)
			var stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = out, &stderr
			err = cmd.Run()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
				t.Errorf("ended with %v, want status 1; stderr:\n%s", err, stderr.String())
			}
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			if last := lines[len(lines)-1]; !strings.HasPrefix(last, tt.want) {
				t.Errorf("last line %q\nwant      %q", last, tt.want)
			}
		})
	}
}
