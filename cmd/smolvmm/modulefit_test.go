package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/smolvmm/smolvmm/internal/regfile"
)

// sparse makes a sparse file of size bytes (nothing read from it costs
// memory, but its bytes would if read), starting with head.
func sparse(t *testing.T, path string, head []byte, size int64) string {
	t.Helper()
	if err := os.WriteFile(path, head, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
	return path
}

// Modules that guest RAM cannot hold together are refused by their sizes,
// before any is read: each alone fitting, they were read whole first.
func TestCheckModulesFit(t *testing.T) {
	dir := t.TempDir()
	const mib = 1 << 20
	m500 := sparse(t, filepath.Join(dir, "m500"), nil, 500*mib)
	m100 := sparse(t, filepath.Join(dir, "m100"), nil, 100*mib)
	odd := sparse(t, filepath.Join(dir, "odd"), nil, 1)
	gz := sparse(t, filepath.Join(dir, "gz"), []byte{0x1f, 0x8b}, 60*mib)
	tests := []struct {
		name  string
		specs []string
		mem   int64
		want  string // "" when they fit
	}{
		{"three of 500 MiB in 512", []string{m500, m500 + ",fs", m500}, 512, "the 3 modules need 1502 MiB"},
		{"two of 500 MiB in 1002", []string{m500, m500}, 1002, ""},
		{"two of 500 MiB in 1001", []string{m500, m500}, 1001, "the 2 modules need 1002 MiB"},
		{"one byte takes a page", []string{m100, odd}, 102, "the 2 modules need 102 MiB and 4096 bytes"},
		{"one alone, with the first MiB", []string{m500}, 501, m500 + " needs 502 MiB"},
		{"gzipped ones count for nothing", []string{gz, gz, m100}, 102, ""},
		{"one larger than RAM alone", []string{m500, m100}, 400, "more than the 400 MiB allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkModulesFit(tt.specs, tt.mem*mib)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want == "":
			case err == nil:
				t.Fatalf("passed, want %q", tt.want)
			case !strings.Contains(err.Error(), tt.want) || !errors.Is(err, regfile.ErrTooLarge):
				t.Fatalf("error %q, want %q wrapping regfile.ErrTooLarge", err, tt.want)
			}
		})
	}
}

// The repro: three sparse 500 MiB modules with -m 512 were read whole
// (2.5 GB of memory, 23 s) before the loader refused them.
func TestRunModulesRefusedBeforeRead(t *testing.T) {
	bin := smolvmmBin(t)
	dir := t.TempDir()
	var args []string
	for _, n := range []string{"m1", "m2", "m3"} {
		args = append(args, "--module", sparse(t, filepath.Join(dir, n), nil, 500<<20))
	}
	kernel := filepath.Join(dir, "kernel")
	if err := os.WriteFile(kernel, elf64Multiboot(), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"run", "-k", kernel, "-m", "512", "--net", "none"}, args...)...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("run: %v, want exit status 1\n%s", err, out)
	}
	if want := "--module: the 3 modules need 1502 MiB of guest RAM at least"; !strings.Contains(string(out), want) {
		t.Errorf("run said %q, want %q", out, want)
	}
	// A child's peak RSS starts at this test binary's (Linux keeps the
	// peak of the memory it forked from across the exec), which in a full
	// run is over 100 MiB: measure it from a run that reads nothing, and
	// allow well under one module's 500 MiB above it.
	base := exec.Command(bin, "version")
	if err := base.Run(); err != nil {
		t.Fatal(err)
	}
	floor := base.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
	if ru := cmd.ProcessState.SysUsage().(*syscall.Rusage); ru.Maxrss > floor+128<<10 {
		t.Errorf("run's peak RSS was %d KiB, %d above smolvmm version's: the modules were read", ru.Maxrss, ru.Maxrss-floor)
	}
}
