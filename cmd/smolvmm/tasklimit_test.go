package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guests"
)

// TestRunTaskLimit: a VM whose threads a task limit has no room for is
// refused before its guest runs, with status 1, the limit, and how to
// raise it, under a cgroup's pids.max (the tasks of the cgroup) or
// RLIMIT_NPROC (those of the user --user gives); one the limit may run
// short of is warned of, and runs. With GOMAXPROCS 2 and no network, a
// VMM without the check died in every run at pids.max 7 ("fatal error:
// newosproc", status 2), completed 5 of 20 at 8, and every run at 9 and
// 10; runTasks says 8 at the least, 10 likely. With the check, 75 of 80
// completed at 9 (its reads may cost the runtime a thread), so there the
// warning is asserted, and the run's end only when it did not die so.
func TestRunTaskLimit(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	if os.Getuid() != 0 {
		t.Skip("a pids cgroup and --user need root")
	}
	bin := smolvmmBin(t)
	counter := guests.ForTest(t, "counter")
	advice := "(raise the limit: the cgroup's pids.max (systemd: TasksMax=); or end some of the processes that take it)\n"
	tests := []struct {
		max    int
		status int
		stderr string // its start; the advice ends it when not ""
		done   bool   // the guest ran to its end
		mayDie bool   // or the runtime died, after the warning
	}{
		{7, 1, "smolvmm run: the VM: pids.max of cgroup PATH is 7, with 0 tasks in it besides this VMM, which cannot run its guest with fewer than 8 ", false, false},
		{9, 1, "smolvmm run: warning: the VM may run out of tasks: pids.max of cgroup PATH is 9, with 0 tasks in it besides this VMM, which may take 10 with its guest running (it runs with 8 at the least): its Go runtime dies if it cannot make a thread it needs ", true, true},
		{10, 1, "", true, false},
	}
	// One subtest holds the cgroup cases, so that a host that can make
	// no pids cgroup skips them there, once (.ci/allowed-skips).
	t.Run("pids.max", func(t *testing.T) {
		testPidsCgroup(t, 100)
		for _, tt := range tests {
			t.Run(strconv.Itoa(tt.max), func(t *testing.T) {
				procs, path := testPidsCgroup(t, tt.max)
				var status int
				var stdout, stderr string
				// Below the least, the runtime may die making the threads
				// of the VMM's start, before the check: those are tried
				// again.
				for range 3 {
					status, stdout, stderr = runLimitedOut(t, []string{"sh", "-c", `echo $$ > "$0" && exec "$@"`, procs}, bin, "run", "-k", counter, "--net", "none")
					if !diedStarting(status, stderr) {
						break
					}
				}
				want := strings.ReplaceAll(tt.stderr, "PATH", path)
				okErr := stderr == "" && want == ""
				if want != "" {
					first, _, _ := strings.Cut(stderr, "\n")
					okErr = strings.HasPrefix(first, want) && strings.HasSuffix(first+"\n", advice)
				}
				if tt.mayDie && okErr && status == 2 && strings.Contains(stderr, "\nfatal error: newosproc\n") {
					return
				}
				if status != tt.status || !okErr || strings.Contains(stdout, "counter: done") != tt.done {
					t.Fatalf("status %d, stderr:\n%s\nstdout ends %q\nwant %d, stderr %q ... %q, guest done %v", status, stderr, tail(stdout), tt.status, want, advice, tt.done)
				}
			})
		}
	})
	// A uid no other process has (nobody's tasks, counted, came and went
	// with other tests run as nobody beside this one): the room given is
	// the room the VM finds.
	t.Run("RLIMIT_NPROC --uid", func(t *testing.T) {
		bash, err := exec.LookPath("bash")
		if err != nil {
			t.Skip("needs bash for ulimit -u")
		}
		var status int
		var stderr string
		var limit int
		for range 3 {
			limit = uidTasks(t, unusedUID) + 7
			status, stderr = runLimited(t, []string{bash, "-c", `ulimit -u "$0" && exec "$@"`, strconv.Itoa(limit)}, bin, "run", "--uid", strconv.Itoa(unusedUID), "--gid", strconv.Itoa(unusedUID), "-k", counter, "--net", "none")
			if !diedStarting(status, stderr) {
				break
			}
		}
		want := fmt.Sprintf("smolvmm run: the VM: RLIMIT_NPROC is %d, with ", limit)
		advice := "(raise the limit: ulimit -u, or LimitNPROC= in a systemd unit; or end some of the processes that take it)\n"
		if status != 1 || !strings.HasPrefix(stderr, want) || !strings.Contains(stderr, " processes and threads of the user it runs as besides this VMM, which cannot run its guest with fewer than 8 ") || !strings.HasSuffix(stderr, advice) {
			t.Fatalf("status %d, stderr:\n%s\nwant 1, %q ... %q", status, stderr, want, advice)
		}
	})
}

// diedStarting reports whether a run under a task limit died in the Go
// runtime before smolvmm's check: status 2, the runtime's report and
// nothing of smolvmm's.
func diedStarting(status int, stderr string) bool {
	return status == 2 && strings.HasPrefix(stderr, "fatal error: newosproc") && !strings.Contains(stderr, "smolvmm run:")
}

// tail is the end of s, for a message.
func tail(s string) string {
	return s[max(len(s)-80, 0):]
}

// runLimited runs smolvmm (bin, args) through the shell command wrap,
// which sets a limit and execs it, with GOMAXPROCS 2, and returns its
// status and stderr.
func runLimited(t *testing.T, wrap []string, bin string, args ...string) (int, string) {
	t.Helper()
	status, _, stderr := runLimitedOut(t, wrap, bin, args...)
	return status, stderr
}

// runLimitedOut is runLimited that returns standard output too.
func runLimitedOut(t *testing.T, wrap []string, bin string, args ...string) (int, string, string) {
	t.Helper()
	c := exec.Command(wrap[0], append(append(wrap[1:], bin), args...)...)
	c.Env = append(os.Environ(), "GOMAXPROCS=2")
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	c.WaitDelay = time.Second
	timer := time.AfterFunc(30*time.Second, func() { c.Process.Kill() })
	defer timer.Stop()
	err := c.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return c.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// unusedUID is a uid no process of this host's has, nor any test gives.
const unusedUID = 3999991

// uidTasks counts the tasks of the processes whose real user is uid.
func uidTasks(t *testing.T, owner int) int {
	t.Helper()
	paths, err := filepath.Glob("/proc/[0-9]*/status")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var uid, threads string
		for _, line := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(line, ":")
			if f := strings.Fields(v); len(f) > 0 && k == "Uid" {
				uid = f[0]
			} else if len(f) > 0 && k == "Threads" {
				threads = f[0]
			}
		}
		if uid == strconv.Itoa(owner) {
			k, _ := strconv.Atoi(threads)
			n += k
		}
	}
	return n
}

// testPidsCgroup makes a pids cgroup whose pids.max is max, below the
// test's own (cgroup v1's pids hierarchy) or, in cgroup v2, below the
// test's own or the root, whichever lets a child have the pids
// controller; removed when the test ends. It returns its cgroup.procs
// file and its path as /proc/PID/cgroup names it, or skips with the
// reason.
func testPidsCgroup(t *testing.T, max int) (procs, path string) {
	t.Helper()
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Skipf("no cgroups: %v", err)
	}
	name := fmt.Sprintf("smolvmm-pidstest-%d-%d", os.Getpid(), max)
	var dir string
	own := ""
	for _, line := range strings.Split(strings.TrimSpace(string(self)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if strings.Contains(","+parts[1]+",", ",pids,") {
			path = filepath.Join(parts[2], name)
			dir = filepath.Join("/sys/fs/cgroup/pids", path)
		}
		if parts[0] == "0" && parts[1] == "" {
			own = parts[2]
		}
	}
	if dir == "" {
		if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err != nil {
			t.Skipf("no pids cgroup (neither v1's nor v2's): %s", self)
		}
		// The test's own cgroup, unless processes in it keep its
		// children from the controller: then the root's.
		for _, parent := range []string{own, "/"} {
			sub := filepath.Join("/sys/fs/cgroup", parent, "cgroup.subtree_control")
			b, err := os.ReadFile(sub)
			if err != nil {
				continue
			}
			if !strings.Contains(" "+strings.TrimSpace(string(b))+" ", " pids ") && os.WriteFile(sub, []byte("+pids"), 0) != nil {
				continue
			}
			path = filepath.Join(parent, name)
			dir = filepath.Join("/sys/fs/cgroup", path)
			break
		}
		if dir == "" {
			t.Skip("no cgroup v2 parent lets a child have the pids controller")
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot make a pids cgroup: %v", err)
	}
	t.Cleanup(func() {
		// Its processes are reaped, but the kernel may take a moment
		// to let it go.
		for end := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			err := os.Remove(dir)
			if err == nil || errors.Is(err, os.ErrNotExist) {
				return
			}
			if time.Now().After(end) {
				t.Errorf("cgroup %s left: %v", dir, err)
				return
			}
		}
	})
	if err := os.WriteFile(filepath.Join(dir, "pids.max"), []byte(strconv.Itoa(max)), 0); err != nil {
		t.Fatalf("cgroup %s: pids.max: %v", dir, err)
	}
	return filepath.Join(dir, "cgroup.procs"), path
}
