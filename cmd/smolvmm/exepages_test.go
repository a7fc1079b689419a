package main

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/bench"
	"github.com/smolvmm/smolvmm/internal/exepages"
	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestRunningVMUnmapsItsSetUpCode: once its guest runs, the VMM keeps
// mapped only the part of its executable it runs again, not the ~10 MiB
// that package initialisation and set-up mapped.
func TestRunningVMUnmapsItsSetUpCode(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	bin := smolvmmBin(t)
	exe, err := filepath.EvalSymlinks(bin)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "-v", "-k", spinKernel(t), "-m", "16", "--net", "none")
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// -v's word on the filter comes when the set-up is over, just before
	// the guest runs; the rest of stderr is kept for the end.
	setUp, ended := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var stderr []string
	stderrSoFar := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), stderr...)
	}
	go func() {
		defer close(ended)
		s := bufio.NewScanner(pipe)
		for s.Scan() {
			mu.Lock()
			stderr = append(stderr, s.Text())
			mu.Unlock()
			if strings.Contains(s.Text(), "seccomp filter of") {
				close(setUp)
			}
		}
	}()
	select {
	case <-setUp:
	case <-ended:
		t.Fatal("stderr ended before the set-up was over")
	case <-time.After(60 * time.Second):
		t.Fatal("set-up not over within 60 s")
	}
	// Before the release ~10 MiB of it is resident (measured 10.7); after
	// it, what ran again (measured 1.9 to 2.6 MiB idle, 4.0 in a loaded
	// CI run, where the runtime's collector had run too).
	deadline := time.Now().Add(60 * time.Second)
	for {
		kib := readOnlyResidentKiB(t, cmd.Process.Pid, exe)
		if kib <= 6<<10 {
			t.Logf("the running VMM's read-only mappings of %s: %d KiB resident", exe, kib)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d KiB of the executable's code and read-only data still resident after 60 s, want at most 6 MiB; stderr so far:\n%s", kib, strings.Join(stderrSoFar(), "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The release ran at the lowest priority, on a thread of its own that
	// ends with it: soon no thread is left to serve the VM at that
	// priority.
	deadline = time.Now().Add(10 * time.Second)
	for {
		niced := nicedThreads(t, cmd.Process.Pid)
		if len(niced) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("threads still niced 10 s after the release: %v", niced)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// -v says so at the end, not amid the guest's console output.
	cmd.Process.Signal(syscall.SIGTERM)
	<-ended
	cmd.Wait()
	if all := strings.Join(stderr, "\n"); !strings.Contains(all, "smolvmm: unmapped the executable's") {
		t.Errorf("-v did not say the executable was unmapped:\n%s", all)
	}
}

// readOnlyResidentKiB adds the Rss of pid's mappings of path that are not
// writable.
func readOnlyResidentKiB(t *testing.T, pid int, path string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps")
	if err != nil {
		t.Fatal(err)
	}
	var kib int64
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case !strings.HasSuffix(f[0], ":"):
			in = len(f) >= 6 && f[5] == path && !strings.Contains(f[1], "w")
		case in && f[0] == "Rss:" && len(f) > 1:
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatalf("smaps: %q", line)
			}
			kib += n
		}
	}
	return kib
}

// nicedThreads lists pid's threads whose nice value is not the one the
// test itself runs at, which the VMM inherits (under `nice make test` too).
func nicedThreads(t *testing.T, pid int) []string {
	t.Helper()
	own, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	base, ok := niceField(own)
	if !ok {
		t.Fatalf("/proc/self/stat: no nice field in %q", own)
	}
	tasks, err := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/stat")
	if err != nil || len(tasks) == 0 {
		t.Fatalf("threads of %d: %v", pid, err)
	}
	var niced []string
	for _, task := range tasks {
		b, err := os.ReadFile(task)
		if err != nil {
			continue // a thread that ended meanwhile
		}
		if nice, ok := niceField(b); !ok || nice != base {
			niced = append(niced, task)
		}
	}
	return niced
}

// niceField is the nice value in a /proc stat line: after the command
// name, in parentheses, the state, then sixteen more fields to nice.
func niceField(stat []byte) (string, bool) {
	_, rest, _ := strings.Cut(string(stat), ") ")
	f := strings.Fields(rest)
	if len(f) < 17 {
		return "", false
	}
	return f[16], true
}

// TestNetDaemonUnmapsItsSetUpCode: the shared network's daemon, which
// lives as long as the VMs that join it, keeps mapped only what it runs
// again of its executable once it listens, not the ~10 MiB that package
// initialisation and the stack's set-up mapped: every VM pays a share of
// what it keeps.
func TestNetDaemonUnmapsItsSetUpCode(t *testing.T) {
	bin := smolvmmBin(t)
	exe, err := filepath.EvalSymlinks(bin)
	if err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(testsock.Dir(t), "net.sock")
	d := startNetDaemon(t, socket, "--leases", filepath.Join(t.TempDir(), "leases"))
	// Released before it says it listens; what its goroutines ran since
	// maps back 64 KiB at a time (measured 3.4 to 6 MiB on a busy host;
	// 11.6 MiB without the release).
	if kib := readOnlyResidentKiB(t, d.cmd.Process.Pid, exe); kib > 8<<10 {
		t.Errorf("%d KiB of the executable's code and read-only data resident once the daemon listens, want at most 8 MiB", kib)
	}
	if !kvmUsable() {
		return
	}
	// A VM's join runs code the daemon does not run again (the
	// handshake, the lease file, the NIC's set-up): once the joins
	// settle, it is unmapped again (measured ~5.5 MiB resident after a
	// join without that, ~1.5 MiB with it).
	startVM(t, "-k", spinKernel(t), "-m", "16", "--net", "user:"+socket)
	d.expect(t, "joined as")
	deadline := time.Now().Add(20 * time.Second)
	for {
		kib := readOnlyResidentKiB(t, d.cmd.Process.Pid, exe)
		if kib <= 3<<10 {
			t.Logf("%d KiB resident once the join settled", kib)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d KiB of the executable's code and read-only data resident 20 s after a VM joined, want at most 3 MiB", kib)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDropExecutablePagesGuestEndedFirst: a guest that ran and ended
// before the release goroutine woke (a busy host, a short guest) is not
// reported as a guest that never ran: with a bench waiting to read the
// VM's memory the executable is unmapped then, once, and settled says so
// (the bench read the set-up code as the VM's); without one nothing is
// unmapped on the way out.
func TestDropExecutablePagesGuestEndedFirst(t *testing.T) {
	releaseHook = func(cancel <-chan struct{}) { <-cancel }
	defer func(f func() (uintptr, error)) { releaseHook, releasePages = nil, f }(releasePages)
	var drops atomic.Int32
	releasePages = func() (uintptr, error) { drops.Add(1); return 1 << 20, nil }
	for i := 0; i < 20; i++ {
		for _, bench := range []bool{true, false} {
			drops.Store(0)
			why := "not settled"
			var notify func(string)
			if bench {
				notify = func(s string) { why = s }
			}
			var cfg vmm.Config
			wait := dropExecutablePages(&cfg, false, notify)
			if err := cfg.BeforeRun(); err != nil {
				t.Fatal(err)
			}
			wait()
			want, wantDrops := "", int32(1)
			if !bench {
				want, wantDrops = "not settled", 0
			}
			if why != want || drops.Load() != wantDrops {
				t.Fatalf("round %d, bench %v: settled with %q after %d drops, want %q after %d", i, bench, why, drops.Load(), want, wantDrops)
			}
		}
	}
}

// TestDropExecutablePagesSaysWhetherReleased: the bench's settled socket
// hears whether the executable was unmapped (SettledReleased) or not and
// why (SettledMapped and the reason); it was told "settled" either way.
func TestDropExecutablePagesSaysWhetherReleased(t *testing.T) {
	for _, run := range []bool{false, true} {
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		end := os.NewFile(uintptr(fds[0]), "bench")
		s := openBenchSettled(fds[1])
		var cfg vmm.Config
		wait := dropExecutablePages(&cfg, false, s.notify)
		var first []byte
		if run {
			if err := cfg.BeforeRun(); err != nil {
				t.Fatal(err)
			}
			// A guest still running while the release works: wait is
			// called (Run returned) only once it has settled.
			first = make([]byte, 1)
			if _, err := io.ReadFull(end, first); err != nil {
				t.Fatal(err)
			}
		}
		wait()
		s.f.Close()
		rest, err := io.ReadAll(end)
		end.Close()
		msg := append(first, rest...)
		if err != nil || len(msg) == 0 {
			t.Fatalf("guest ran %v: read %q, %v", run, msg, err)
		}
		_, released := exepages.Release() // as it went in the goroutine
		switch {
		case !run && (msg[0] != bench.SettledMapped || string(msg[1:]) != "the guest never ran"):
			t.Errorf("guest never ran: settled message %q, want it mapped because the guest never ran", msg)
		case run && released == nil && (len(msg) != 1 || msg[0] != bench.SettledReleased):
			t.Errorf("released: settled message %q, want SettledReleased alone", msg)
		case run && released != nil && (msg[0] != bench.SettledMapped || string(msg[1:]) != released.Error()):
			t.Errorf("not released (%v): settled message %q, want SettledMapped and why", released, msg)
		}
	}
}

// The executable is unmapped a second time once Run's set-up is over
// (releaseAgainAfter), unless the guest ends first; settled hears of it
// after the last drop, so that the bench measures what a running VM
// keeps.
func TestDropExecutablePagesTwice(t *testing.T) {
	for _, tc := range []struct {
		name       string
		againAfter time.Duration
		endEarly   bool // the guest ends between the two drops
		settled    bool // a bench waits to read the VM's memory
		wantDrops  int
	}{
		{"guest stays up", 10 * time.Millisecond, false, true, 2},
		{"guest stays up, no bench", 10 * time.Millisecond, false, false, 2},
		// Dropped again on the way out for a bench only, which reads
		// the memory then.
		{"guest ends first", time.Hour, true, true, 2},
		{"guest ends first, no bench", time.Hour, true, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			drops := 0
			first := make(chan struct{})
			defer func(f func() (uintptr, error), d time.Duration) { releasePages, releaseAgainAfter = f, d }(releasePages, releaseAgainAfter)
			releaseAgainAfter = tc.againAfter
			releasePages = func() (uintptr, error) {
				mu.Lock()
				defer mu.Unlock()
				if drops++; drops == 1 {
					close(first)
				}
				return 1 << 20, nil
			}
			settled := make(chan string, 1)
			var notify func(string)
			if tc.settled {
				notify = func(why string) { settled <- why }
			}
			var cfg vmm.Config
			wait := dropExecutablePages(&cfg, false, notify)
			if err := cfg.BeforeRun(); err != nil {
				t.Fatal(err)
			}
			<-first
			if tc.endEarly {
				wait()
			} else if !tc.settled {
				// Nothing says when the second drop is done: poll.
				for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
					mu.Lock()
					n := drops
					mu.Unlock()
					if n == tc.wantDrops {
						break
					}
				}
			}
			if tc.settled {
				select {
				case why := <-settled:
					if why != "" {
						t.Errorf("settled with %q, want released", why)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("not settled within 10 s")
				}
			}
			wait()
			mu.Lock()
			defer mu.Unlock()
			if drops != tc.wantDrops {
				t.Errorf("%d drops, want %d", drops, tc.wantDrops)
			}
		})
	}
}

// Nothing is formatted after the last drop, -v or not (it is formatted
// by wait): fmt's and strconv's code would map back, ~0.2-0.45 MiB of it.
// Formatting allocates; nothing is allocated from the last drop to
// settled. The count is the process's: a thread the runtime starts
// meanwhile allocates too (seen 4 times in 9000 on a loaded host), so a
// try during which one started is tried again.
func TestDropExecutablePagesFormatsNothingAfter(t *testing.T) {
	defer func(f func() (uintptr, error), d time.Duration) { releasePages, releaseAgainAfter = f, d }(releasePages, releaseAgainAfter)
	releaseAgainAfter = time.Millisecond
	threads := pprof.Lookup("threadcreate")
	for _, verbose := range []bool{false, true} {
		for try := 1; ; try++ {
			var before, after runtime.MemStats
			var threadsBefore, threadsAfter int
			drops := 0
			releasePages = func() (uintptr, error) {
				if drops++; drops == 2 {
					threadsBefore = threads.Count()
					runtime.ReadMemStats(&before)
				}
				return 3 << 20, nil
			}
			settled := make(chan struct{})
			var cfg vmm.Config
			wait := dropExecutablePages(&cfg, verbose, func(string) {
				runtime.ReadMemStats(&after)
				threadsAfter = threads.Count()
				close(settled)
			})
			if err := cfg.BeforeRun(); err != nil {
				t.Fatal(err)
			}
			<-settled
			wait()
			n := after.Mallocs - before.Mallocs
			if n != 0 && threadsAfter != threadsBefore && try < 5 {
				continue
			}
			if drops != 2 || n != 0 {
				t.Errorf("-v %v: %d drops, %d allocations after the last (%d threads started meanwhile), want 2 drops and none after", verbose, drops, n, threadsAfter-threadsBefore)
			}
			break
		}
	}
}

// TestBenchSettledNotifier: a boot without the bench's settled socket (a
// timed boot, a jailed VM) gives dropExecutablePages no settled function,
// so the executable is not unmapped again on its way out for a memory
// read nobody makes (~0.23 ms of each timed boot's exit); a nil
// *benchSettled's method value was a non-nil func.
func TestBenchSettledNotifier(t *testing.T) {
	var none *benchSettled
	if none.notifier() != nil {
		t.Error("a boot without a settled socket has a settled function")
	}
	if (&benchSettled{}).notifier() == nil {
		t.Error("a boot with a settled socket has no settled function")
	}
}
