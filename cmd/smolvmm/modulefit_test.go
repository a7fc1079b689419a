package main

import (
	"encoding/json"
	"errors"
	"fmt"
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

// modulesRSSEnv makes TestRunModulesRefusedBeforeRead its own helper: the
// JSON argv of the smolvmm run it starts and reports on.
const modulesRSSEnv = "SMOLVMM_TEST_MODULES_RSS"

// modulesRSSMark begins the helper's one line of report, a modulesRSS.
const modulesRSSMark = "modules-rss: "

// modulesRSS is what the helper saw of its smolvmm run.
type modulesRSS struct {
	Out    string // the run's output, stdout and stderr
	Err    string // how the run ended, as exec.Cmd.Run said
	Exit   int    // its exit status
	Maxrss int64  // its peak RSS in KiB (ru_maxrss)
	HWM    int64  // the helper's own peak RSS in KiB (VmHWM), which Maxrss starts at
}

// The repro: three sparse 500 MiB modules with -m 512 were read whole
// (2.5 GB of memory, 23 s) before the loader refused them.
//
// A child's ru_maxrss starts at the peak RSS of the process it was forked
// from (Linux keeps the old memory's peak across the exec) and is the
// larger of that and its own, not their sum: under this test binary, whose
// peak in a full run can pass one module's 500 MiB, reading a module would
// not show. So smolvmm runs under a fresh copy of the test binary, whose
// peak is small, and its own peak is bounded absolutely.
func TestRunModulesRefusedBeforeRead(t *testing.T) {
	if v := os.Getenv(modulesRSSEnv); v != "" {
		modulesRSSHelper(t, v)
		return
	}
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
	got := runRSSHelper(t, append([]string{bin, "run", "-k", kernel, "-m", "512", "--net", "none"}, args...))
	if got.Exit != 1 {
		t.Fatalf("run: %s, want exit status 1\n%s", got.Err, got.Out)
	}
	if want := "--module: the 3 modules need 1502 MiB of guest RAM at least"; !strings.Contains(got.Out, want) {
		t.Errorf("run said %q, want %q", got.Out, want)
	}
	t.Logf("run's peak RSS %d KiB, its helper's %d KiB", got.Maxrss, got.HWM)
	// Well under one module's 500 MiB, well over what run needs to refuse.
	if got.Maxrss > 128<<10 {
		t.Errorf("run's peak RSS was %d KiB (its helper's %d KiB): the modules were read", got.Maxrss, got.HWM)
	}
}

// runRSSHelper runs argv under a fresh copy of the test binary (see
// TestRunModulesRefusedBeforeRead, whose helper it is) and returns what
// the helper saw of it: its ru_maxrss is then argv's own.
func runRSSHelper(t *testing.T, args []string) modulesRSS {
	t.Helper()
	argv, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	helper := exec.Command(os.Args[0], "-test.run=^TestRunModulesRefusedBeforeRead$", "-test.count=1")
	helper.Env = append(os.Environ(), modulesRSSEnv+"="+string(argv))
	hout, err := helper.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, hout)
	}
	_, line, ok := strings.Cut(string(hout), modulesRSSMark)
	line, _, _ = strings.Cut(line, "\n")
	if !ok {
		t.Fatalf("helper reported nothing:\n%s", hout)
	}
	var got modulesRSS
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatalf("helper's report %q: %v", line, err)
	}
	return got
}

// modulesRSSHelper runs argv (JSON) and prints a modulesRSS line of it.
func modulesRSSHelper(t *testing.T, argv string) {
	var args []string
	if err := json.Unmarshal([]byte(argv), &args); err != nil || len(args) == 0 {
		t.Fatalf("%s=%q: want a JSON argv (%v)", modulesRSSEnv, argv, err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState == nil {
		t.Fatalf("%s: %v", args[0], err)
	}
	r := modulesRSS{Out: string(out), Exit: cmd.ProcessState.ExitCode(),
		Maxrss: int64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss), HWM: ownPeakRSS(t)}
	if err != nil {
		r.Err = err.Error()
	}
	line, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("%s%s\n", modulesRSSMark, line)
}

// ownPeakRSS is this process's memory's peak RSS in KiB, VmHWM: what a
// child started now inherits. (Its own ru_maxrss is no use: it too
// starts at the peak of the test binary that started it.)
func ownPeakRSS(t *testing.T) int64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kib int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kib); err != nil {
				t.Fatalf("/proc/self/status: VmHWM %q: %v", v, err)
			}
			return kib
		}
	}
	t.Fatal("/proc/self/status: no VmHWM")
	return 0
}
