package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/guests"
)

// TestBenchKernelChecked: bench refuses before any boot, once and with
// run's status, the kernel run refuses before it starts: an -a its
// protocol rejects (status 2) and a file that is no kernel (status 1),
// also with --parallel, where every VM said it, twice.
func TestBenchKernelChecked(t *testing.T) {
	zeros := filepath.Join(t.TempDir(), "d1.img")
	if err := os.WriteFile(zeros, make([]byte, 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	nbboot := guests.ForTest(t, "nbboot")
	tests := []struct {
		name   string
		args   []string
		status int
		want   string
	}{
		{"bad console for a NetBSD kernel", []string{"-k", nbboot, "-a", "console=foo", "-n", "1", "--warmup", "0"}, 2,
			`smolvmm bench: load kernel nbboot.elf: bad boot arguments: console="foo"`},
		{"not a kernel", []string{"-k", zeros, "-n", "1", "--warmup", "0"}, 1,
			"smolvmm bench: load kernel d1.img: neither a multiboot kernel nor a NetBSD ELF kernel"},
		{"not a kernel, compared with QEMU", []string{"-k", zeros, "--compare", "qemu", "-n", "1", "--warmup", "0"}, 1,
			"smolvmm bench: load kernel d1.img: neither a multiboot kernel nor a NetBSD ELF kernel"},
		{"not a kernel, parallel", []string{"-k", zeros, "--parallel", "3"}, 1,
			"smolvmm bench: load kernel d1.img: neither a multiboot kernel nor a NetBSD ELF kernel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, stdout, stderr := benchRun(t, nil, append([]string{"--net", "none"}, tt.args...)...)
			if status != tt.status || stdout != "" || !strings.HasPrefix(stderr, tt.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("status %d (want %d), stdout:\n%s\nstderr:\n%s", status, tt.status, stdout, stderr)
			}
		})
	}
}
