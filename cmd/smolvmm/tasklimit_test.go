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
// raise it: its Go runtime died instead, "fatal error: newosproc" with
// status 2, the guest in KVM_RUN, under a cgroup's pids.max (the tasks
// of the cgroup) or RLIMIT_NPROC (those of the user --user gives). The
// limits leave room for the runtime's start (about 7 threads) but not
// for the VM's 9 (GOMAXPROCS 2, no network: bench's vmTasks).
func TestRunTaskLimit(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	if os.Getuid() != 0 {
		t.Skip("a pids cgroup and --user need root")
	}
	bin := smolvmmBin(t)
	counter := guests.ForTest(t, "counter")
	t.Run("pids.max", func(t *testing.T) {
		procs, path := testPidsCgroup(t, 8)
		status, stderr := runLimited(t, []string{"sh", "-c", `echo $$ > "$0" && exec "$@"`, procs}, bin, "run", "-k", counter, "--net", "none")
		want := "smolvmm run: the VM: pids.max of cgroup " + path + " is 8, with 0 tasks in it besides this VMM, which takes "
		advice := "(raise the limit: the cgroup's pids.max (systemd: TasksMax=); or end some of the processes that take it)\n"
		if status != 1 || !strings.HasPrefix(stderr, want) || !strings.HasSuffix(stderr, advice) {
			t.Fatalf("status %d, stderr:\n%s\nwant 1, %q ... %q", status, stderr, want, advice)
		}
	})
	t.Run("RLIMIT_NPROC --user", func(t *testing.T) {
		bash, err := exec.LookPath("bash")
		if err != nil {
			t.Skip("needs bash for ulimit -u")
		}
		limit := nobodyTasks(t) + 7
		status, stderr := runLimited(t, []string{bash, "-c", `ulimit -u "$0" && exec "$@"`, strconv.Itoa(limit)}, bin, "run", "--user", "nobody", "-k", counter, "--net", "none")
		want := fmt.Sprintf("smolvmm run: the VM: RLIMIT_NPROC is %d, with ", limit)
		advice := "(raise the limit: ulimit -u, or LimitNPROC= in a systemd unit; or end some of the processes that take it)\n"
		if status != 1 || !strings.HasPrefix(stderr, want) || !strings.Contains(stderr, " processes and threads of the user it runs as besides this VMM, which takes ") || !strings.HasSuffix(stderr, advice) {
			t.Fatalf("status %d, stderr:\n%s\nwant 1, %q ... %q", status, stderr, want, advice)
		}
	})
}

// runLimited runs smolvmm (bin, args) through the shell command wrap,
// which sets a limit and execs it, with GOMAXPROCS 2, and returns its
// status and stderr.
func runLimited(t *testing.T, wrap []string, bin string, args ...string) (int, string) {
	t.Helper()
	c := exec.Command(wrap[0], append(append(wrap[1:], bin), args...)...)
	c.Env = append(os.Environ(), "GOMAXPROCS=2")
	var stderr bytes.Buffer
	c.Stderr = &stderr
	c.WaitDelay = time.Second
	timer := time.AfterFunc(30*time.Second, func() { c.Process.Kill() })
	defer timer.Stop()
	err := c.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return c.ProcessState.ExitCode(), stderr.String()
}

// nobodyTasks counts the tasks of nobody's processes (uid 65534).
func nobodyTasks(t *testing.T) int {
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
		if uid == "65534" {
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
	name := fmt.Sprintf("smolvmm-pidstest-%d", os.Getpid())
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
