package bench

import (
	"bufio"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// osThreads is this process's OS thread count.
func osThreads(t testing.TB) int {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no Threads line in /proc/self/status")
	return 0
}

// shTarget is a VM as small as a process gets: a shell that appends its
// PID to pids, prints a line and sleeps (as sleep, the same process).
func shTarget(pids string) Target {
	return Target{Name: "sh", Path: "/bin/sh", Args: []string{"-c", `echo $$ >>"$PIDS"; echo up; exec sleep 600`, "sh"},
		Env: []string{"PIDS=" + pids}}
}

// The bench's threads do not grow with its VMs: none waits, blocked in
// a system call, for one VM's exit or output (N = 100000 ended in
// "runtime: failed to create new OS thread" at some 3000 VMs).
func TestRunParallelThreadsBounded(t *testing.T) {
	const n = 100
	before := osThreads(t)
	var during int
	target := shTarget(t.TempDir() + "/pids")
	res, err := RunParallel(context.Background(), target, ParallelOptions{N: n, Timeout: time.Minute, Config: Config{Kernel: "sh", MemoryMiB: 1},
		// Asked while every VM is alive, stopped, and followed.
		NetworkPID: os.Getpid(), NetworkVMs: func() (int, error) {
			during = osThreads(t)
			return n, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Started != n {
		t.Fatalf("started %d of %d: %+v", res.Started, n, res.VMs[0])
	}
	// The runtime's own (one per P, sysmon, a few for short system
	// calls) and the one that starts the VMs.
	if during-before > 20 {
		t.Errorf("%d threads with %d VMs running, %d before: the bench holds a thread per VM", during, n, before)
	}
	t.Logf("%d threads before, %d with %d VMs", before, during, n)
}
