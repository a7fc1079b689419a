package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/kstrip/kstriptest"
)

// TestStdoutWriteError: output lost on standard output (a full disk, a
// descriptor open only for reading) fails the command, status 1, with one
// line that says so and what to do. demo, version and --help gave 0 with
// nothing said, while kstrip --list gave 1. A guest that ends with a
// status of its own keeps it, and the line is said too (it was not).
func TestStdoutWriteError(t *testing.T) {
	bin := smolvmmBin(t)
	kern := testKernel(t, kstriptest.Options{Bits: 32})
	// A multiboot guest that prints a line on the serial console, then
	// writes 1 to the debug-exit port: status 3.
	printer := filepath.Join(t.TempDir(), "printer")
	if err := os.WriteFile(printer, netbsdELF(3, []byte{
		0xeb, 0x0e, 0x90, 0x90, // jmp over the header
		0x02, 0xb0, 0xad, 0x1b, 2, 0, 0, 0, 0xfc, 0x4f, 0x52, 0xe4, // multiboot header
		0x66, 0xba, 0xf8, 0x03, // mov dx, 0x3f8
		0xb0, 'x', 0xee, // mov al, 'x'; out dx, al
		0xb0, '\n', 0xee, // mov al, '\n'; out dx, al
		0x66, 0xba, 0x01, 0x05, // mov dx, 0x501
		0xb8, 0x01, 0, 0, 0, // mov eax, 1
		0xef, 0xf4, // out dx, eax; hlt
	}), 0o644); err != nil {
		t.Fatal(err)
	}
	const full = "writing standard output: no space left on device (free some space, or redirect the output elsewhere)"
	tests := []struct {
		name   string
		args   []string
		stdout string // the file standard output is opened on
		flag   int    // its open mode
		kvm    bool
		want   string // stderr's last line
		status int
	}{
		{"version", []string{"version"}, "/dev/full", os.O_WRONLY, false, "smolvmm version: " + full, 1},
		{"--version", []string{"--version"}, "/dev/full", os.O_WRONLY, false, "smolvmm: " + full, 1},
		{"--help", []string{"--help"}, "/dev/full", os.O_WRONLY, false, "smolvmm: " + full, 1},
		{"run --help", []string{"run", "--help"}, "/dev/full", os.O_WRONLY, false, "smolvmm run: " + full, 1},
		{"kstrip --list", []string{"kstrip", "--list", kern}, "/dev/full", os.O_WRONLY, false, "smolvmm kstrip: ", 1},
		{"demo", []string{"demo"}, "/dev/full", os.O_WRONLY, true, "smolvmm demo: " + full, 1},
		{"run, guest status 3", []string{"run", "-k", printer, "--net", "none"}, "/dev/full", os.O_WRONLY, true, "smolvmm run: " + full, 3},
		{"version, read-only", []string{"version"}, "/dev/null", os.O_RDONLY, false,
			"smolvmm version: writing standard output: it is not open for writing (redirect it to a file, or to /dev/null to discard it)", 1},
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
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != tt.status {
				t.Errorf("ended with %v, want status %d; stderr:\n%s", err, tt.status, stderr.String())
			}
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			if last := lines[len(lines)-1]; !strings.HasPrefix(last, tt.want) {
				t.Errorf("last line %q\nwant      %q", last, tt.want)
			}
		})
	}
}
