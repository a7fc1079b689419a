package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/staledir"
)

// reportBench is the bench of TestKilledBenchLeavesNoReports: one VM
// with a report, never ready, whose PID it writes to pidFile once started
// (after the bench made its reports' directory); the bench, parallel
// (RunParallel) or not (RunBoot), waits a minute for it, long enough to
// be killed meanwhile.
func reportBench(pidFile string, parallel bool) int {
	exe, err := os.Executable()
	if err != nil {
		return 1
	}
	target := Target{Name: "fake", Path: exe, Env: []string{"BENCH_FAKE=readylate", "BENCH_PIDFILE=" + pidFile}, ReportFlag: "--report"}
	never := regexp.MustCompile("^never")
	if parallel {
		_, err = RunParallel(context.Background(), target, ParallelOptions{N: 1, Timeout: time.Minute,
			Ready: never, Config: Config{Kernel: "fake", MemoryMiB: 1}})
	} else {
		_, err = RunBoot(context.Background(), target, BootOptions{Ready: Ready{Pattern: never}, Timeout: time.Minute})
	}
	if err != nil {
		return 1
	}
	return 0
}

// A bench killed by SIGKILL cannot remove its VMs' reports' directory:
// the next bench does, and leaves alone what is not such a directory of
// a bench gone (a live bench's, another user's, a symbolic link, the
// user's own smolvmm-bench-reports-2026-12, which it removed). The
// sequential bench (RunBoot) made its own with os.MkdirTemp, left for
// good.
func TestKilledBenchLeavesNoReports(t *testing.T) {
	for _, parallel := range []bool{true, false} {
		name := "sequential"
		if parallel {
			name = "parallel"
		}
		t.Run(name, func(t *testing.T) { testKilledBenchLeavesNoReports(t, parallel) })
	}
}

func testKilledBenchLeavesNoReports(t *testing.T, parallel bool) {
	tmp := t.TempDir()
	pidFile := filepath.Join(t.TempDir(), "vm.pid")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	mode := "parallel"
	if !parallel {
		mode = "sequential"
	}
	cmd.Env = append(os.Environ(), "BENCH_REPORTBENCH="+mode+":"+pidFile, "TMPDIR="+tmp)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Its VM is started once it has written its PID: the directory is
	// made. The file is there empty first (os.WriteFile creates, then
	// writes), and waitGone needs the PID.
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if b, err := os.ReadFile(pidFile); err == nil && len(b) > 0 {
			break
		}
		if time.Now().After(end) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal("the bench's VM did not start")
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if err := waitGone(pidFile); err != nil { // its parent-death signal
		t.Fatal(err)
	}

	// What must stay: a live bench's directory, locked; a symbolic link
	// to a directory; another user's directory (as root, who can make
	// one); a directory of the user's own whose name only begins as a
	// bench's (TMPDIR=$HOME), removed with what it held.
	live, liveLock, err := staledir.MakeIn(tmp, reportDirPrefix+"*", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer liveLock.Close()
	target := t.TempDir()
	if err := os.WriteFile(filepath.Join(target, "keep"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(tmp, reportDirPrefix+"12345")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	usersOwn := filepath.Join(tmp, reportDirPrefix+"2026-12")
	if err := os.Mkdir(usersOwn, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(usersOwn, "results.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Base(link), filepath.Base(live), filepath.Base(usersOwn)}
	if os.Getuid() == 0 {
		other := filepath.Join(tmp, reportDirPrefix+"67890")
		if err := os.Mkdir(other, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(other, staledir.LockName), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(filepath.Join(other, staledir.LockName), 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(other, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		want = append(want, filepath.Base(other))
	}
	slices.Sort(want)

	t.Setenv("TMPDIR", tmp)
	next := fakeTarget(t, "fake", "report")
	next.GuestBytes, next.ReportFlag = 0, "--report"
	if _, err := RunParallel(context.Background(), next, ParallelOptions{N: 1, Timeout: 30 * time.Second,
		Config: Config{Kernel: "fake", MemoryMiB: 1}}); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s holds %q after the next bench, want %q", tmp, got, want)
	}
	if _, err := os.Stat(filepath.Join(target, "keep")); err != nil {
		t.Errorf("the link's target lost its file: %v", err)
	}
}
