package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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
// PID to pids, writes the file after its --report (an empty report), prints
// a line and sleeps (as sleep, the same process).
func shTarget(pids string) Target {
	return Target{Name: "sh", Path: "/bin/sh", Args: []string{"-c", `echo $$ >>"$PIDS"; [ -z "$2" ] || : >"$2"; echo up; exec sleep 600`, "sh"},
		Env: []string{"PIDS=" + pids}, ReportFlag: "--report"}
}

// children lists this process's child processes.
func children(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("/proc/self/task/*/children")
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		kids = append(kids, strings.Fields(string(b))...)
	}
	return kids
}

// readPIDs reads the PIDs shTarget's VMs appended to path.
func readPIDs(t *testing.T, path string) []int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) { // none ran
		t.Fatal(err)
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	return pids
}

// Cancelled while it starts its VMs (SIGINT, SIGTERM), the bench kills
// and reaps every VM it started, starts no more, and removes its
// temporary directory, reports and all.
func TestRunParallelCancelledMidStart(t *testing.T) {
	const n = 40
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	pids := filepath.Join(t.TempDir(), "pids")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := RunParallel(ctx, shTarget(pids), ParallelOptions{N: n, Timeout: time.Minute, Config: Config{Kernel: "sh", MemoryMiB: 1},
		VMArgs: func(i int) []string {
			if i == n/2 {
				cancel()
			}
			return nil
		}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want it cancelled", err)
	}
	if kids := children(t); len(kids) != 0 {
		t.Errorf("VM processes left (or not reaped): %v", kids)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("left in TMPDIR: %v", ents)
	}
	// VMs 0 to n/2 were started (those killed before they ran wrote
	// nothing).
	if got := len(readPIDs(t, pids)); got > n/2+1 {
		t.Errorf("%d of %d VMs ran: the cancel came as VM %d started", got, n, n/2)
	}
}

// The VMs of a bench that dies before it can kill them (a crash, SIGKILL)
// die with it: they ran on for minutes after a runtime crash.
func TestRunParallelVMsDieWithTheBench(t *testing.T) {
	cmd, pids := startFakeBench(t, "bench", "all started\n")
	if len(pids) != fakeBenchN {
		t.Fatalf("%d VMs started, want %d", len(pids), fakeBenchN)
	}
	killBenchAndAwaitVMs(t, cmd, pids)
}

// startFakeBench starts the test binary as a fake bench in mode (see
// fakeVMM), which writes its VMs' PIDs to a file and then says ready on
// its standard output; it returns the bench and those PIDs.
func startFakeBench(t *testing.T, mode, ready string) (*exec.Cmd, []int) {
	t.Helper()
	pidsFile := filepath.Join(t.TempDir(), "pids")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), "BENCH_FAKE="+mode, "PIDS="+pidsFile, "TMPDIR="+t.TempDir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if line != ready {
		t.Fatalf("the bench said %q (%v); stderr %s", line, err, stderr.String())
	}
	return cmd, readPIDs(t, pidsFile)
}

// killBenchAndAwaitVMs SIGKILLs the bench cmd and checks that each of its
// VMs (pids) exits with it.
func killBenchAndAwaitVMs(t *testing.T, cmd *exec.Cmd, pids []int) {
	t.Helper()
	var pidfds []int
	for _, pid := range pids {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			t.Fatalf("VM %d: %v", pid, err)
		}
		defer unix.Close(fd)
		pidfds = append(pidfds, fd)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	// A pidfd polls readable once its process has exited. The kernel
	// signals the VMs as the bench exits; they may take a moment to go:
	// a minute is far more than any needs.
	deadline := time.Now().Add(time.Minute)
	for i, fd := range pidfds {
		ms := max(int(time.Until(deadline).Milliseconds()), 0)
		if n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, ms); n != 1 {
			t.Errorf("VM process %d still runs a minute after its bench was killed (%v)", pids[i], err)
			syscall.Kill(pids[i], syscall.SIGKILL)
		}
	}
}

// The VM of a sequential bench (RunBoot: every boot of bench, QEMU's
// with --compare too) dies with a bench killed before it could stop it.
func TestRunBootVMDiesWithTheBench(t *testing.T) {
	// The bench copies the VM's console, which wrote its PID before.
	cmd, pids := startFakeBench(t, "bootbench", "up\n")
	if len(pids) != 1 {
		t.Fatalf("%d VMs started, want 1", len(pids))
	}
	killBenchAndAwaitVMs(t, cmd, pids)
}

// fakeBootBench is the bootbench fake mode: RunBoot of one shTarget VM
// (its PID to $PIDS), its console copied to stdout; the VM runs until
// killed, and so does the bench.
func fakeBootBench() int {
	_, err := RunBoot(context.Background(), shTarget(os.Getenv("PIDS")), BootOptions{Timeout: time.Hour, Console: os.Stdout})
	fmt.Fprintln(os.Stderr, "bench ended:", err)
	return 1
}

// fakeBenchN is the number of VMs of the fake bench mode.
const fakeBenchN = 5

// fakeBench is the fake mode bench: a bench of fakeBenchN shTarget VMs
// (PIDs to $PIDS) that says "all started" once all are and waits to be
// killed.
func fakeBench() int {
	_, err := RunParallel(context.Background(), shTarget(os.Getenv("PIDS")), ParallelOptions{N: fakeBenchN, Timeout: time.Minute,
		Config: Config{Kernel: "sh", MemoryMiB: 1}, NetworkPID: os.Getpid(), NetworkVMs: func() (int, error) {
			fmt.Println("all started")
			select {}
		}})
	fmt.Fprintln(os.Stderr, "bench ended:", err)
	return 1
}

// fakeThreadsVM is the threads fake mode: a VM as a Go VMM is, a process
// of many threads (BENCH_THREADS locked goroutines besides its runtime's
// own) that prints a line and runs until killed. As a VMM's, its runtime
// crashes when it cannot create a thread.
func fakeThreadsVM() int {
	n, _ := strconv.Atoi(os.Getenv("BENCH_THREADS"))
	for range n {
		go func() {
			runtime.LockOSThread()
			select {}
		}()
	}
	for {
		if h, err := ownThreads(); err != nil || h >= n {
			break
		}
		time.Sleep(time.Millisecond)
	}
	fmt.Println("up")
	time.Sleep(10 * time.Minute)
	return 0
}

// fakeNprocBench is the nprocbench fake mode: a bench of BENCH_N threads
// VMs that says each takes BENCH_TASKS tasks, its results as JSON on
// standard output.
func fakeNprocBench() int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 4
	}
	n, _ := strconv.Atoi(os.Getenv("BENCH_N"))
	tasks, _ := strconv.ParseUint(os.Getenv("BENCH_TASKS"), 10, 64)
	vm := Target{Name: "threads", Path: exe, Env: []string{"BENCH_FAKE=threads"}, Tasks: tasks}
	res, err := RunParallel(context.Background(), vm, ParallelOptions{N: n, Timeout: time.Minute, Config: Config{Kernel: "threads", MemoryMiB: 1}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	if err := res.WriteJSON(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// Under a per-user process limit (RLIMIT_NPROC, which counts threads)
// that its VMs' threads exhaust, the bench runs on: it reports the VMs
// that ran and why the others did not, and does not crash for want of a
// thread of its own (it did: "fatal error: newosproc", no report). The
// VMs say they take one task each, as the check once counted them, so
// the check lets all of them through.
func TestRunParallelUnderProcessLimit(t *testing.T) {
	const n, threads, limit = 20, 8, 40
	stdout, stderr, err := runUnderNPROC(t, 61234, limit, "BENCH_FAKE=nprocbench",
		fmt.Sprint("BENCH_N=", n), "BENCH_TASKS=1", fmt.Sprint("BENCH_THREADS=", threads))
	if err != nil || strings.Contains(stderr, "fatal error") || strings.Contains(stderr, "failed to create new OS thread") {
		t.Fatalf("the bench ended %v; its stderr (%d bytes) begins:\n%.2000s", err, len(stderr), stderr)
	}
	var res ParallelResults
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("no results: %v\n%.2000s", err, stdout)
	}
	// How many ran depends on how the VMs' threads came (all of them
	// start at once): not all can.
	if res.Failed < 1 || res.Started+res.Failed != n || len(res.VMs) != n {
		t.Errorf("started %d, failed %d of %d (%d results): want not all started (%d threads a VM under a limit of %d)", res.Started, res.Failed, n, len(res.VMs), threads, limit)
	}
	for _, v := range res.VMs {
		if !v.Started() && (!strings.Contains(v.Error, "no more processes: a task limit is reached") || v.Limit != LimitTasks) {
			t.Errorf("vm %d failed, not for the process limit: %s (limit %q)", v.Index, v.Error, v.Limit)
		}
	}
	t.Logf("started %d, failed %d; vm 0: %q; vm %d: %q", res.Started, res.Failed, res.VMs[0].Error, n-1, res.VMs[n-1].Error)
}

// The threads reserveThreads makes serve the bench's runtime once its
// user's processes have taken every task the limit leaves: without them
// it crashes.
func TestReserveThreadsUnderFullLimit(t *testing.T) {
	tests := []struct {
		name    string
		reserve bool
	}{
		{"reserved", true},
		{"not reserved", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, err := runUnderNPROC(t, 61235, 30, "BENCH_FAKE=reserve", fmt.Sprint("BENCH_RESERVE=", tt.reserve))
			ok := err == nil && strings.Contains(stdout, "filled, threads served")
			crashed := strings.Contains(stderr, "failed to create new OS thread") || strings.Contains(stderr, "pthread_create failed")
			if ok != tt.reserve || crashed == tt.reserve {
				t.Errorf("ended %v, said %q; stderr begins %.600q", err, stdout, stderr)
			}
		})
	}
}

// fakeReserve is the reserve fake mode: under a low RLIMIT_NPROC, it
// reserves the bench's threads (if BENCH_RESERVE is true), takes every
// task left with sleeping children, and then keeps benchWorkers threads
// busy at once (one of them its own), as a bench whose VMs took the rest
// may.
func fakeReserve() int {
	if os.Getenv("BENCH_RESERVE") == "true" {
		reserveThreads()
	}
	var kids []*exec.Cmd
	defer func() {
		for _, k := range kids {
			k.Process.Kill()
			k.Wait()
		}
	}()
	for {
		k := exec.Command("/bin/sleep", "600")
		// Not left behind when this crashes.
		k.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := k.Start(); err != nil {
			if !errors.Is(err, syscall.EAGAIN) {
				fmt.Fprintln(os.Stderr, err)
				return 4
			}
			break
		}
		kids = append(kids, k)
	}
	var locked, release sync.WaitGroup
	release.Add(1)
	for range benchWorkers() - 1 {
		locked.Add(1)
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			locked.Done()
			release.Wait()
		}()
	}
	locked.Wait()
	release.Done()
	fmt.Printf("filled, threads served (%d children)\n", len(kids))
	return 0
}

// runUnderNPROC runs the test binary with env as user uid under
// RLIMIT_NPROC limit, the limit fork and clone hold root (this process)
// exempt from; it skips the test when it cannot.
func runUnderNPROC(t *testing.T, uid, limit int, env ...string) (stdout, stderr string, err error) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root, to run the test binary as another user, under whom RLIMIT_NPROC is enforced")
	}
	// A user no one runs as, so that the limit counts the test's only;
	// but the children of an earlier run that crashed may still be
	// zombies, until init reaps them.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		used, err := userTasks(uid)
		if err == nil && used == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Skipf("user %d has %d tasks (%v): the limit would count them", uid, used, err)
		}
	}
	// The test binary where that user can run it, and a TMPDIR it can
	// write.
	dir, err := os.MkdirTemp("", "bench-nproc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o777); err != nil {
		t.Fatal(err)
	}
	for p, mode := range map[string]os.FileMode{dir: 0o755, tmp: 0o777} {
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "bench.test")
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "TMPDIR="+tmp, "GOMAXPROCS=2"), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: 65534}, Pdeathsig: syscall.SIGKILL}
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	// The child inherits the limit.
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NPROC, &old); err != nil {
		t.Fatal(err)
	}
	low := old
	low.Cur = uint64(limit)
	if err := unix.Setrlimit(unix.RLIMIT_NPROC, &low); err != nil {
		t.Skip(err)
	}
	err = cmd.Start()
	if err := unix.Setrlimit(unix.RLIMIT_NPROC, &old); err != nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	return out.String(), errOut.String(), err
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

func TestCheckLimits(t *testing.T) {
	l := hostLimits{nofile: 1024, nofileUsed: 24, nproc: 500, nprocUsed: 100, threadsMax: 10000, pidMax: 4096, tasks: 96}
	one := parallelNeed{fds: 4, tasks: 1}
	tests := []struct {
		name   string
		n      int
		need   parallelNeed
		limits hostLimits
		want   *LimitError
	}{
		{"fits", 250, one, l, nil},
		{"descriptors", 251, one, l, &LimitError{N: 251, Limit: "RLIMIT_NOFILE", Value: 1024, Used: 24, PerVM: 4, Max: 250}},
		{"descriptors, with settled sockets", 201, parallelNeed{fds: 5, tasks: 1}, l, &LimitError{N: 201, Limit: "RLIMIT_NOFILE", Value: 1024, Used: 24, PerVM: 5, Max: 200}},
		{"user's processes", 401, parallelNeed{fds: 1, tasks: 1}, l, &LimitError{N: 401, Limit: "RLIMIT_NPROC", Value: 500, Used: 100, PerVM: 1, Max: 400}},
		// The case that crashed the bench: ulimit -u 40, 20 VMs of some
		// 10 threads each and a bench of 8 more to come; a task a VM was
		// let through.
		{"user's threads, VMs' and the bench's", 20, parallelNeed{fds: 5, tasks: 10, benchTasks: 8}, hostLimits{nproc: 40, nprocUsed: 6},
			&LimitError{N: 20, Limit: "RLIMIT_NPROC", Value: 40, Used: 6, Bench: 8, PerVM: 10, Max: 2}},
		{"user's threads fit", 2, parallelNeed{fds: 5, tasks: 10, benchTasks: 8}, hostLimits{nproc: 40, nprocUsed: 6}, nil},
		{"no room for the bench's own threads", 1, parallelNeed{fds: 5, tasks: 1, benchTasks: 8}, hostLimits{nproc: 12, nprocUsed: 6},
			&LimitError{N: 1, Limit: "RLIMIT_NPROC", Value: 12, Used: 6, Bench: 8, PerVM: 1, Max: 0}},
		{"cgroup counts threads", 10, parallelNeed{fds: 5, tasks: 10, benchTasks: 4}, hostLimits{cgroupPids: 100, cgroupPidsUsed: 10, cgroup: "/c"},
			&LimitError{N: 10, Limit: "pids.max of cgroup /c", Value: 100, Used: 10, Bench: 4, PerVM: 10, Max: 8}},
		{"pid_max", 4001, parallelNeed{tasks: 1}, hostLimits{threadsMax: 10000, pidMax: 4096, tasks: 96}, &LimitError{N: 4001, Limit: "kernel.pid_max", Value: 4096, Used: 96, PerVM: 1, Max: 4000}},
		{"threads-max", 4001, parallelNeed{tasks: 1}, hostLimits{threadsMax: 4096, pidMax: 1 << 22, tasks: 96}, &LimitError{N: 4001, Limit: "kernel.threads-max", Value: 4096, Used: 96, PerVM: 1, Max: 4000}},
		{"threads-max, VMs' threads", 401, parallelNeed{tasks: 10}, hostLimits{threadsMax: 4096, pidMax: 1 << 22, tasks: 96}, &LimitError{N: 401, Limit: "kernel.threads-max", Value: 4096, Used: 96, PerVM: 10, Max: 400}},
		// ulimit -n 40, bench --parallel 6 of smolvmm (5 kept, 4 while
		// it starts): 6 were let through, and the 6th always failed.
		{"descriptors, with a start's", 6, parallelNeed{fds: 5, startFDs: 4, tasks: 1}, hostLimits{nofile: 40, nofileUsed: 10},
			&LimitError{N: 6, Limit: "RLIMIT_NOFILE", Value: 40, Used: 10, Bench: 4, PerVM: 5, Max: 5}},
		{"descriptors, a start's fit", 5, parallelNeed{fds: 5, startFDs: 4, tasks: 1}, hostLimits{nofile: 40, nofileUsed: 10}, nil},
		{"all taken", 1, one, hostLimits{nofile: 64, nofileUsed: 70}, &LimitError{N: 1, Limit: "RLIMIT_NOFILE", Value: 64, Used: 70, PerVM: 4, Max: 0}},
		{"nothing known", 1 << 30, one, hostLimits{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkLimits(tt.n, tt.need, tt.limits)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var le *LimitError
			if !errors.As(err, &le) || *le != *tt.want || !errors.Is(err, ErrHostLimit) {
				t.Fatalf("error %#v, want %#v", err, tt.want)
			}
		})
	}
}

// Each VM counts Target.Tasks against the task limits, the bench's own
// threads to come too.
func TestNeedOf(t *testing.T) {
	old := threadsToCome
	threadsToCome = func() uint64 { return 7 }
	defer func() { threadsToCome = old }()
	if got := needOf(Target{Tasks: 11}); got.tasks != 11 || got.benchTasks != 7 {
		t.Errorf("%+v, want 11 tasks a VM and 7 for the bench", got)
	}
	if got := needOf(Target{}); got.tasks != 1 {
		t.Errorf("a target that says nothing: %d tasks, want 1", got.tasks)
	}
}

// N VMs that a limit of the host cannot hold are refused before any
// starts, the limit and its value named.
func TestRunParallelRefusesBeyondLimits(t *testing.T) {
	tests := []struct {
		name   string
		n      int
		limits hostLimits
		want   string
	}{
		{"pid_max", 10, hostLimits{threadsMax: 1000, pidMax: 100, tasks: 95},
			"bench: 10 VMs at once: kernel.pid_max is 100, with 95 tasks on the host and 2 more kept for the bench's own threads, and each VM takes 1: room for 3 VMs at most"},
		{"user's processes", 3, hostLimits{nproc: 50, nprocUsed: 46},
			"bench: 3 VMs at once: RLIMIT_NPROC is 50, with 46 processes and threads of this user and 2 more kept for the bench's own threads, and each VM takes 1: room for 2 VMs at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, oldThreads := readHostLimits, threadsToCome
			readHostLimits = func() hostLimits { return tt.limits }
			threadsToCome = func() uint64 { return 2 }
			defer func() { readHostLimits, threadsToCome = old, oldThreads }()
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			pids := filepath.Join(t.TempDir(), "pids")
			res, err := RunParallel(context.Background(), shTarget(pids), ParallelOptions{N: tt.n, Config: Config{Kernel: "sh", MemoryMiB: 1}})
			if !errors.Is(err, ErrHostLimit) || err.Error() != tt.want {
				t.Errorf("results %v, error %v; want %q", res, err, tt.want)
			}
			if _, err := os.Stat(pids); err == nil {
				t.Errorf("VMs started: %v", readPIDs(t, pids))
			}
			if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
				t.Errorf("left in TMPDIR: %v", ents)
			}
		})
	}
}

// The limit on descriptors, as this process has it.
func TestRunParallelRefusesBeyondNOFILE(t *testing.T) {
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	low := old
	low.Cur = uint64(len(fds) + 6) // one VM's worth, not 5
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Skip(err)
	}
	pids := filepath.Join(t.TempDir(), "pids")
	_, err = RunParallel(context.Background(), shTarget(pids), ParallelOptions{N: 5, Config: Config{Kernel: "sh", MemoryMiB: 1}})
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != "RLIMIT_NOFILE" || le.Value != low.Cur || le.N != 5 || le.Max >= 5 {
		t.Errorf("error %v, want RLIMIT_NOFILE %d refusing 5 VMs", err, low.Cur)
	}
	if _, err := os.Stat(pids); err == nil {
		t.Errorf("VMs started: %v", readPIDs(t, pids))
	}
}

// The tightest pids.max of the bench's cgroup and its ancestors, in
// cgroup v2 or in v1's pids hierarchy; "max" and missing files are none.
func TestCgroupPids(t *testing.T) {
	type file struct{ path, text string }
	tests := []struct {
		name      string
		self      string
		files     []file
		max, used uint64
		where     string
	}{
		{"v2, own limit", "0::/user.slice/bench.scope\n", []file{
			{"user.slice/bench.scope/pids.max", "100\n"}, {"user.slice/bench.scope/pids.current", "7\n"},
			{"user.slice/pids.max", "max\n"}, {"user.slice/pids.current", "300\n"},
		}, 100, 7, "/user.slice/bench.scope"},
		{"v2, a parent's is tighter", "0::/user.slice/bench.scope\n", []file{
			{"user.slice/bench.scope/pids.max", "100\n"}, {"user.slice/bench.scope/pids.current", "7\n"},
			{"user.slice/pids.max", "320\n"}, {"user.slice/pids.current", "300\n"},
		}, 320, 300, "/user.slice"},
		{"v1 pids hierarchy", "12:pids:/docker/abc\n11:memory:/docker/abc\n0::/\n", []file{
			{"pids/docker/abc/pids.max", "64\n"}, {"pids/docker/abc/pids.current", "3\n"},
		}, 64, 3, "/docker/abc"},
		{"no limit", "0::/\n", []file{{"pids.max", "max\n"}}, 0, 0, ""},
		{"nothing readable", "0::/gone\n", nil, 0, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for _, f := range tt.files {
				p := filepath.Join(root, f.path)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(f.text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			max, used, where := cgroupPids(root, tt.self)
			if max != tt.max || used != tt.used || where != tt.where {
				t.Errorf("got %d, %d used, at %q; want %d, %d, %q", max, used, where, tt.max, tt.used, tt.where)
			}
		})
	}
	l := hostLimits{cgroupPids: 100, cgroupPidsUsed: 96, cgroup: "/user.slice"}
	var le *LimitError
	if err := checkLimits(5, parallelNeed{fds: 4, tasks: 1}, l); !errors.As(err, &le) || le.Limit != "pids.max of cgroup /user.slice" || le.Max != 4 {
		t.Errorf("5 VMs in a cgroup with room for 4: %v", err)
	} else if want := "pids.max of cgroup /user.slice is 100, with 96 tasks in it, and each VM takes 1: room for 4 VMs at most"; le.Why() != want {
		t.Errorf("%q, want %q", le.Why(), want)
	}
}

// A VM whose process the kernel would not create says which limits that
// can be.
func TestStartLimitFact(t *testing.T) {
	tests := []struct {
		err   error
		limit Limit
		want  string
	}{
		{&os.PathError{Op: "fork/exec", Path: "/x", Err: syscall.EAGAIN}, LimitTasks,
			" (no more processes: a task limit is reached: RLIMIT_NPROC, kernel.threads-max, kernel.pid_max or a cgroup's pids.max)"},
		{&os.PathError{Op: "fork/exec", Path: "/x", Err: syscall.EMFILE}, LimitFileDescriptors, " (out of file descriptors: RLIMIT_NOFILE is "},
		{&os.PathError{Op: "fork/exec", Path: "/x", Err: syscall.ENOMEM}, LimitMemory, ""},
		{&os.PathError{Op: "fork/exec", Path: "/x", Err: syscall.ENOENT}, "", ""},
	}
	for _, tt := range tests {
		l := startLimit(tt.err)
		if got := limitFact(l); l != tt.limit || !strings.HasPrefix(got, tt.want) || (tt.want == "") != (got == "") {
			t.Errorf("%v: %q, %q, want %q, %q", tt.err, l, got, tt.limit, tt.want)
		}
	}
}

// A start holds one descriptor more for a moment for each pipe or socket
// end it gives the VM.
func TestStartFDs(t *testing.T) {
	for _, tt := range []struct {
		name string
		t    Target
		want uint64
	}{
		{"neither", Target{}, 6},
		{"settled", Target{SettledFlag: "-s"}, 7},
		{"settled, jailed (none)", Target{SettledFlag: "-s", Jailed: true}, 6},
		{"ready", Target{ReadyFlag: "-r"}, 7},
		{"both", Target{SettledFlag: "-s", ReadyFlag: "-r"}, 8},
	} {
		if got := startFDs(tt.t); got != tt.want {
			t.Errorf("%s: %d descriptors, want %d", tt.name, got, tt.want)
		}
		if got := needOf(tt.t).startFDs; got != tt.want {
			t.Errorf("%s: needOf counts %d descriptors for a start, want %d", tt.name, got, tt.want)
		}
	}
}

// Under a RLIMIT_NOFILE that leaves room for exactly n VMs as the check
// counts them, all n start; one descriptor fewer and n are refused. The
// check left out what a start holds for a moment: the last VM of the
// most it let through failed with "too many open files". It counted a
// descriptor above the limit (a shell's 255) as taking room: measured
// beside one, a start's need was found one less than it is, and the last
// VM failed where no such descriptor was.
func TestRunParallelStartsTheMostNOFILEAllows(t *testing.T) {
	for _, tc := range []struct{ settled, above bool }{{false, false}, {true, false}, {false, true}} {
		t.Run(fmt.Sprintf("settled=%v,above=%v", tc.settled, tc.above), func(t *testing.T) {
			const n = 4
			target := shTarget(filepath.Join(t.TempDir(), "pids"))
			if tc.settled {
				// sh takes it as $3 and $4, after the report; it never
				// settles, which costs a settle timeout.
				target.SettledFlag = "--settled-fd"
			}
			if tc.above {
				// Far above any limit below: 4 VMs take fewer than 100.
				if err := unix.Dup3(2, 1000, unix.O_CLOEXEC); err != nil {
					t.Skip(err)
				}
				defer unix.Close(1000)
			}
			var old syscall.Rlimit
			if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
				t.Fatal(err)
			}
			for _, spare := range []int{0, -1} {
				low := old
				low.Cur = limitLeaving(t, uint64(int(n*parallelFDs(target)+startFDs(target))+spare))
				if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
					t.Skip(err)
				}
				res, err := RunParallel(context.Background(), target, ParallelOptions{N: n, Timeout: 10 * time.Second, SettleTimeout: 100 * time.Millisecond, Config: Config{Kernel: "sh", MemoryMiB: 1}})
				if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
					t.Fatal(err)
				}
				var le *LimitError
				switch {
				case spare == 0 && err != nil:
					t.Fatalf("limit %d, room for %d: %v", low.Cur, n, err)
				case spare == 0 && res.Started != n:
					t.Errorf("limit %d, room for %d: %d started: %+v", low.Cur, n, res.Started, res.VMs)
				case spare < 0 && (!errors.As(err, &le) || le.Limit != "RLIMIT_NOFILE" || le.Max != n-1):
					t.Errorf("limit %d, one short of room for %d: %v, want RLIMIT_NOFILE refusing them", low.Cur, n, err)
				}
			}
		})
	}
}

// The bench holds one descriptor more per VM for each pipe it gives it.
func TestParallelFDs(t *testing.T) {
	base := parallelFDs(Target{})
	tests := []struct {
		name string
		t    Target
		want uint64
	}{
		{"settled", Target{SettledFlag: "-s"}, base + 1},
		{"settled, jailed (none)", Target{SettledFlag: "-s", Jailed: true}, base},
		{"ready", Target{ReadyFlag: "-r"}, base + 1},
		{"both", Target{SettledFlag: "-s", ReadyFlag: "-r"}, base + 2},
	}
	for _, tt := range tests {
		if got := parallelFDs(tt.t); got != tt.want {
			t.Errorf("%s: %d descriptors, want %d", tt.name, got, tt.want)
		}
	}
}

// limitLeaving is the RLIMIT_NOFILE that leaves room free numbers for new
// descriptors in this process: the numbers below it that no open
// descriptor takes. A descriptor inherited above it (a shell's, say)
// takes none of them.
func limitLeaving(t *testing.T, room uint64) uint64 {
	t.Helper()
	// Opens the runtime's poller, as the check does before it counts.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	w.Close()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	open := make(map[uint64]bool)
	for _, e := range entries {
		fd, err := strconv.ParseUint(e.Name(), 10, 64)
		if err != nil {
			t.Fatalf("/proc/self/fd/%s: not a descriptor number", e.Name())
		}
		// ReadDir's own, listed, is closed now: its link is gone.
		if _, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {
			open[fd] = true
		}
	}
	free := uint64(0)
	for limit := uint64(0); ; limit++ {
		if free >= room {
			return limit
		}
		if !open[limit] {
			free++
		}
	}
}

// fdEntry is a /proc/self/fd entry for fdsBelow.
type fdEntry string

func (e fdEntry) Name() string               { return string(e) }
func (e fdEntry) IsDir() bool                { return false }
func (e fdEntry) Type() fs.FileMode          { return fs.ModeSymlink }
func (e fdEntry) Info() (fs.FileInfo, error) { return nil, fs.ErrNotExist }

// Only the numbers below the limit take room, the listing's own left out.
func TestFDsBelow(t *testing.T) {
	for _, tt := range []struct {
		name  string
		fds   []string
		limit uint64
		want  uint64
	}{
		{"all below", []string{"0", "1", "2", "3"}, 64, 3},
		{"a shell's 255 above", []string{"0", "1", "2", "255", "3"}, 64, 3},
		{"at the limit", []string{"0", "1", "2", "3", "64"}, 64, 3},
		{"holes", []string{"0", "2", "9", "10"}, 10, 2},
		{"not a number", []string{"0", "1", "x", "2"}, 64, 2},
		{"none", nil, 64, 0},
	} {
		var fds []os.DirEntry
		for _, n := range tt.fds {
			fds = append(fds, fdEntry(n))
		}
		if got := fdsBelow(fds, tt.limit); got != tt.want {
			t.Errorf("%s: %d below %d, want %d", tt.name, got, tt.limit, tt.want)
		}
	}
}
