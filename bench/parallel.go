package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/internal/consoleline"
	"github.com/smolvmm/smolvmm/internal/staledir"
)

// ParallelOptions tune RunParallel.
type ParallelOptions struct {
	// N is the number of VMs started at once.
	N int
	// Ready, when set, is matched against each console line: a VM is
	// started when a line matches, or, for a Target.ReadyReported, when
	// it reports its own ready, at its first console byte if that comes
	// later; for another target with a Target.ReadyFlag, at the earlier
	// of the line and the ready it reports (smolvmm: its guest's
	// boot-timer write), as RunBoot times it, but not before its first
	// console byte either. Nil: at its first console byte. Either way a
	// Target.ReadyReported (a restore) that has printed nothing a second
	// after its report (a service at its prompt) is started at its
	// report, and has no first output; a VM of another target that
	// prints nothing never starts.
	Ready *regexp.Regexp
	// Timeout bounds the wait for every VM to start and settle (0: one
	// minute; a negative one is refused); the VMs not started by then
	// count as failed.
	Timeout time.Duration
	// Config is copied into the results.
	Config Config
	// CPUs divides the start rate per core (default: the CPUs the
	// bench's affinity mask allows, fewer under a cgroup CPU quota that
	// allows less; Host.CPUsFrom says which).
	CPUs int
	// VMArgs, when set, gives arguments added after the target's for VM
	// i (0 to N-1): what must differ between VMs, such as the MAC of
	// each VM on a shared network.
	VMArgs func(i int) []string
	// NetworkPID, when not 0, is the process of the shared network the
	// VMs join (smolvmm net): its memory is read along with theirs, and
	// its PSS shared out among the started VMs.
	NetworkPID int
	// NetworkVMs, when set, says how many VMs are joined to that network
	// (this bench's and any other's), asked as its memory is read: its
	// PSS is shared out among them, else among the started VMs.
	NetworkVMs func() (int, error)
	// NetworkSettle, when set, is how long the network is left after the
	// VMs' memory was read (they are stopped meanwhile) before its own
	// is: what it does after a burst of joins and then keeps for its
	// life, such as smolvmm net's release of its executable, is what
	// each VM pays a share of, not the burst.
	NetworkSettle time.Duration
	// SettleTimeout, when set, bounds the wait after a VM's ready event
	// for its Target.SettledFlag byte; without it the wait lasts as long
	// as Timeout allows (N VMs settling on a few cores can take seconds).
	// A VM measured without its byte is flagged (VMMemory.Unsettled) and
	// left out of the memory summary.
	SettleTimeout time.Duration
}

// RunParallel starts o.N processes of t at once, each a VM, and measures
// density: when each VM started (its ready event), the time until all had,
// and each one's memory while all of them run. Each VM is stopped
// (SIGSTOP) at its ready event, or once it has settled after it when the
// target has a SettledFlag, so that a guest that exits soon after (the
// demo guest) is still there to be measured and every started VM is alive
// together; once all have started or failed, their memory is read
// (/proc/PID/smaps_rollup and the guest RAM mapping in /proc/PID/smaps)
// and they are killed. A VM that cannot start (its process fails to start
// or exits first, as when the host runs out of memory or file descriptors)
// keeps its reason in VM.Error; the others are unaffected. So does one
// whose process ended by itself after its ready event but before its
// memory was read: it did not run with the others. Each VM is
// the OOM killer's first choice (oom_score_adj 1000), so that under memory
// pressure VMs fail rather than the bench. N VMs that the
// host's limits certainly cannot hold (descriptors, processes, tasks) are
// refused before any starts, with a LimitError. Else only ctx ending
// is an error: then no more VMs are started, and those started are killed
// and reaped, unmeasured, before RunParallel returns. On every return the
// VMs' temporary directory is removed; and should the bench die first
// (SIGKILL, a crash), the kernel kills its VMs, and the next RunParallel
// of the same user and temporary directory removes that directory (no
// process holds its lock then).
func RunParallel(ctx context.Context, t Target, o ParallelOptions) (*ParallelResults, error) {
	if o.N < 1 {
		return nil, fmt.Errorf("bench: %d parallel VMs: give at least 1", o.N)
	}
	if o.Timeout < 0 {
		return nil, fmt.Errorf("bench: %w: %s", ErrNegativeTimeout, o.Timeout)
	}
	if o.Timeout == 0 {
		o.Timeout = time.Minute
	}
	cpusFrom := CPUsGiven
	if o.CPUs < 1 {
		o.CPUs, cpusFrom = hostCPUs()
	}
	if o.Ready == nil && !t.ReadyReported {
		// Ready at its first byte. A restore keeps its report: it
		// starts there when it prints nothing.
		t.ReadyFlag = ""
	}
	// Refused at once rather than started until something runs out.
	if err := CheckHostLimits(t, o.N); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	// With room for them, as just checked: made now, they are there
	// when the VMs have taken the rest. Checked again with them made,
	// as many as they came.
	reserveThreads()
	need := needOf(t)
	need.benchTasks = 0
	if err := checkLimits(o.N, need, readHostLimits()); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	var dir string
	if t.ReportFlag != "" {
		d, lock, err := makeReportDir(os.TempDir())
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		defer lock.Close()
		defer os.RemoveAll(d)
		dir = d
	}

	// Read again once the VMs are reaped: a VM killed from outside is
	// said to be the OOM killer's when the count rose.
	oomBefore, oomErr := readOOMKills(procSelfCgroup, cgroupRoot)

	vms := make([]*parallelVM, o.N)
	settled := make(chan int, o.N)
	// Closed when the bench stops waiting: the waits for settled bytes end.
	giveUp := make(chan struct{})
	for i := range vms {
		vms[i] = &parallelVM{index: i, settled: settled, settleTimeout: o.SettleTimeout, giveUp: giveUp}
	}
	t0 := MonoNow()
	for _, v := range vms {
		v.deadline = t0 + o.Timeout.Nanoseconds()
	}
	// The goroutines that follow started VMs, one each: none holds a
	// thread while it waits (see follow).
	var wg sync.WaitGroup
	startsDone, reaped, starterDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(starterDone)
		// One thread starts every VM and stays until all are reaped:
		// their parent-death signal is tied to it (see start).
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer func() { <-reaped }()
		defer close(startsDone)
		// Set when the kernel would create no more processes for the
		// VMs: those after it are not tried.
		var noTask error
		for _, v := range vms {
			select {
			case <-giveUp:
				return // the others are not started
			case <-ctx.Done():
				return // nor after an interrupt, even before the bench sees it
			default:
			}
			if noTask != nil {
				v.fail(noTask, LimitTasks)
				v.settle()
				continue
			}
			vt := t
			if o.VMArgs != nil {
				vt.Args = append(append([]string(nil), t.Args...), o.VMArgs(v.index)...)
			}
			if !v.start(vt, dir) {
				if v.limit == LimitTasks {
					noTask = notCreated(v.index)
				}
				v.settle()
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				v.follow(o.Ready)
			}()
		}
	}()

	timer := time.NewTimer(o.Timeout)
	defer timer.Stop()
	var ctxErr error
	for n := 0; n < o.N && ctxErr == nil; {
		select {
		case <-settled:
			n++
		case <-timer.C:
			ctxErr = errTimedOut
		case <-ctx.Done():
			ctxErr = ctx.Err()
		}
	}
	// Every VM has started or failed (or time is up): the started ones
	// are stopped, so all of them are measured together.
	close(giveUp)
	<-startsDone
	if errors.Is(ctxErr, errTimedOut) {
		// The VMs not started by now failed: none of them is counted
		// once the timer has fired, nor left to run while the others are
		// measured.
		for _, v := range vms {
			v.cutOff()
		}
	}
	// Interrupted: nothing is measured, the VMs are killed at once.
	measure := ctxErr == nil || errors.Is(ctxErr, errTimedOut)
	if measure {
		for _, v := range vms {
			v.sample(t.GuestBytes, t.GuestFile)
		}
	}
	var netMem *NetworkMemory
	var netErr error
	if o.NetworkPID != 0 && measure && o.NetworkSettle > 0 {
		select {
		case <-networkSettleAfter(o.NetworkSettle):
		case <-ctx.Done():
			ctxErr, measure = ctx.Err(), false
		}
	}
	if o.NetworkPID != 0 && measure {
		// While the VMs are still there: their connections are part of
		// the network's memory.
		netMem, netErr = readNetworkMemory(o.NetworkPID, o.NetworkVMs)
	}
	for _, v := range vms {
		v.kill()
	}
	wg.Wait()
	close(reaped)
	<-starterDone
	if oomErr == nil {
		if after, err := readOOMKills(procSelfCgroup, cgroupRoot); err == nil {
			rose := after > oomBefore
			for _, v := range vms {
				v.oomKills = &rose
			}
		}
	}
	if ctxErr != nil && !errors.Is(ctxErr, errTimedOut) {
		return nil, fmt.Errorf("bench: parallel start interrupted: %w", ctxErr)
	}

	res := &ParallelResults{Schema: ParallelSchemaVersion, Date: time.Now().UTC().Truncate(time.Second), Host: hostInfo(),
		Config: o.Config, System: t.Name, Command: t.Command()}
	res.Host.CPUs, res.Host.CPUsFrom = o.CPUs, cpusFrom
	res.Config.Boots, res.Config.Warmup = 1, 0
	for _, v := range vms {
		res.VMs = append(res.VMs, v.result(t0, o.Timeout))
	}
	res.NetworkMemory = netMem
	if netErr != nil {
		res.NetworkMemoryError = fmt.Sprintf("shared network process %d: %v", o.NetworkPID, netErr)
	}
	res.aggregate()
	return res, nil
}

var errTimedOut = errors.New("timed out")

// restoreQuietWait is how long after its ready report a restore that has
// printed nothing is waited for before it counts as started at the
// report: a second, as RunBoot's default ExitWait.
var restoreQuietWait = time.Second

// reportDirPrefix begins the name of each bench's directory of its VMs'
// reports (Target.ReportFlag), in the temporary directory.
const reportDirPrefix = "smolvmm-bench-reports-"

// filesDirPrefix begins the name of each directory MakeTempDir makes.
const filesDirPrefix = "smolvmm-bench-files-"

// MakeTempDir makes, in the temporary directory (os.TempDir), a
// directory for a bench's own files (the guest or a decompressed kernel
// QEMU is given), mode 0700, holding a file "lock" that lock holds
// locked (flock) until it is closed, first removing those of benches
// gone, as for the VMs' reports: the caller removes the directory, then
// closes lock; a bench killed before it could is cleaned up after by the
// next bench (see internal/staledir).
func MakeTempDir() (dir string, lock *os.File, err error) {
	return makeTempDir(os.TempDir(), filesDirPrefix)
}

// makeReportDir makes, in tmp, the directory of the VMs' reports, and
// locks it (held by lock until it is closed), first removing those of
// benches gone: a bench killed (SIGKILL, the OOM killer) cannot remove
// its own, and the kernel drops its lock.
func makeReportDir(tmp string) (dir string, lock *os.File, err error) {
	return makeTempDir(tmp, reportDirPrefix)
}

// makeTempDir makes in tmp, with staledir, a directory named prefix and
// os.MkdirTemp's random part, after removing the benches' that staledir
// finds dead (only such names, of this user's, closed to others, with a
// lock file no process holds).
func makeTempDir(tmp, prefix string) (dir string, lock *os.File, err error) {
	staledir.RemoveDeadIn(tmp, reportDirPrefix, 0o077, nil)
	staledir.RemoveDeadIn(tmp, filesDirPrefix, 0o077, nil)
	dir, lock, err = staledir.MakeIn(tmp, prefix+"*", nil)
	if err != nil {
		return "", nil, fmt.Errorf("bench directory in %s: %w", tmp, err)
	}
	return dir, lock, nil
}

// Where readOOMKills finds the bench's cgroup; tests replace them.
var (
	procSelfCgroup = "/proc/self/cgroup"
	cgroupRoot     = "/sys/fs/cgroup"
)

// readOOMKills reads how many processes the OOM killer has killed in the
// memory cgroup that selfCgroup (/proc/self/cgroup's text) names for the
// bench, whose VMs are in it too: cgroup v1's memory.oom_control (under
// root/memory) or v2's memory.events (under root), each's oom_kill line.
// v1 counts the cgroup's own tasks, v2 its descendants' too; either
// counts a kill that a limit of the cgroup caused or the host's lack of
// memory (Linux 4.13 and later). A root cgroup of v2 has no such file.
func readOOMKills(selfCgroup, root string) (uint64, error) {
	b, err := os.ReadFile(selfCgroup)
	if err != nil {
		return 0, err
	}
	var file string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		// hierarchy-ID:controller-list:path
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		p := filepath.Clean("/" + parts[2])
		switch {
		case hasController(parts[1], "memory"):
			file = filepath.Join(root, "memory", p, "memory.oom_control")
		case parts[0] == "0" && parts[1] == "" && file == "":
			// Beside a v1 memory hierarchy, v2 has no memory controller:
			// v1's line, wherever it is, wins.
			file = filepath.Join(root, p, "memory.events")
		}
	}
	if file == "" {
		return 0, fmt.Errorf("%s: no memory cgroup", selfCgroup)
	}
	text, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(text), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: oom_kill %q: %w", file, v, err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("%s: no oom_kill line", file)
}

// readNetworkMemory reads the memory of the shared network's process pid
// (its smaps_rollup) and, when vms is set, how many VMs it says are
// joined (NetworkMemory.VMs, or VMsError).
func readNetworkMemory(pid int, vms func() (int, error)) (*NetworkMemory, error) {
	ro, err := ReadRollup(pid)
	if err != nil {
		return nil, err
	}
	m := &NetworkMemory{PID: pid, RSSKiB: ro.RSSKiB, PSSKiB: ro.PSSKiB}
	if vms != nil {
		n, err := vms()
		if err == nil && n < 1 {
			err = fmt.Errorf("it says %d VMs are joined", n)
		}
		if err != nil {
			m.VMsError = err.Error()
		} else {
			m.VMs = n
		}
	}
	return m, nil
}

// fdLimit is the limit an error of the bench's own pipe or socket, made
// to start a VM, says is reached: file descriptors (EMFILE, ENFILE, or
// EBADF from the child, which cannot move its descriptors into place
// past the limit) or memory (ENOMEM); "" for any other error.
func fdLimit(err error) Limit {
	switch {
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE), errors.Is(err, syscall.EBADF):
		return LimitFileDescriptors
	case errors.Is(err, syscall.ENOMEM):
		return LimitMemory
	}
	return ""
}

// startLimit is fdLimit for an error of starting a process, whose EAGAIN
// is fork's: no more tasks.
func startLimit(err error) Limit {
	if errors.Is(err, syscall.EAGAIN) {
		return LimitTasks
	}
	return fdLimit(err)
}

// limitFact is what an error for want of l leaves unsaid: the limit of
// file descriptors, or which task limits can be the one reached. ENOMEM
// says itself that memory ran out.
func limitFact(l Limit) string {
	switch l {
	case LimitFileDescriptors:
		var lim syscall.Rlimit
		if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
			return " (out of file descriptors)"
		}
		return fmt.Sprintf(" (out of file descriptors: RLIMIT_NOFILE is %d)", lim.Cur)
	case LimitTasks:
		return " (no more processes: a task limit is reached: RLIMIT_NPROC, kernel.threads-max, kernel.pid_max or a cgroup's pids.max)"
	}
	return ""
}

// startError is err, of the bench's own pipe, socket or fork (what
// names it; "" for none) in starting a VM, with the fact of l, the limit
// it says is reached.
func startError(what string, err error, l Limit) error {
	if what != "" {
		what += ": "
	}
	return fmt.Errorf("%s%w%s", what, err, limitFact(l))
}

// notCreated is the error of the VMs after VM index, which the kernel
// would not create as a process: they are not tried.
func notCreated(index int) error {
	return fmt.Errorf("not started: VM %d could not be created%s", index, limitFact(LimitTasks))
}

// stderrLimit is the limit a VM's standard error says it found reached:
// its runtime could create no thread (a task limit), or an errno of
// ENOMEM; "" for any other. The VM is another process: its errors come
// as text.
func stderrLimit(s string) Limit {
	switch {
	case strings.Contains(s, "failed to create new OS thread") || strings.Contains(s, "pthread_create failed"):
		return LimitTasks
	case strings.Contains(s, syscall.ENOMEM.Error()):
		return LimitMemory
	}
	return ""
}

// networkSettleAfter is time.After, for RunParallel's wait before it reads
// the network's memory; tests replace it.
var networkSettleAfter = time.After

// parallelVM is one VM of RunParallel, shared by its goroutines.
type parallelVM struct {
	index   int
	settled chan<- int
	// vmmSettled says when the VM's process has settled after its start
	// (nil without a Target.SettledFlag).
	vmmSettled    *settledConn
	settleTimeout time.Duration // 0: until giveUp
	giveUp        <-chan struct{}
	stopping      sync.WaitGroup // the goroutine that stops it once settled

	mu      sync.Mutex
	once    sync.Once
	cmd     *exec.Cmd
	console *os.File // the read end of its standard output
	pidfd   *os.File // nil without pidfds
	stderr  *tailBuffer
	started int64 // CLOCK_MONOTONIC ns; 0 until the process started
	first   int64
	ready   int64
	killed  bool
	stopped bool // by SIGSTOP, for its measurement
	// late is set when the bench's timeout has passed: a ready event
	// after it does not count, nor one timed after deadline (the
	// timeout from the bench's start, CLOCK_MONOTONIC ns; 0: none),
	// which a loaded host can see before its timer fires.
	late     bool
	deadline int64
	// hasSettled is set when the VM's settled byte came (vmmSettled);
	// mapped and mappedWhy when it said that its executable stayed mapped.
	hasSettled bool
	mapped     bool
	mappedWhy  string
	// readyIn is the bench's end of the VM's own ready report
	// (Target.ReadyFlag), nil without one; vmmReady is set when a
	// restore's report (restore: Target.ReadyReported) came before the
	// VM's first console byte.
	readyIn  *os.File
	vmmReady bool
	restore  bool
	// consoleDone is closed once the console has ended (the process is
	// gone): a silent restore's wait for its first byte ends there.
	consoleDone chan struct{}
	// report is the file of its ChildReport ("" without a
	// Target.ReportFlag): it says whether the guest chose the status.
	report string
	err    error
	limit  Limit // the host resource err says ran out ("": none)
	mem    *VMMemory
	memErr error
	// end is how the process ended, unless the bench could not start
	// it; endWhat, when set, says that it ended by itself before its
	// ready event, and when ("before its ready line").
	end     *vmEnd
	endWhat string
	// gone says that the process had ended by itself after its ready
	// event but before the bench measured it: it did not run with the
	// others, and fails.
	gone bool
	// oomKills says whether the OOM killer killed a process of the
	// bench's memory cgroup while the VMs ran (nil: not known).
	oomKills *bool
}

// settle reports the VM as started or failed, once.
func (v *parallelVM) settle() { v.once.Do(func() { v.settled <- v.index }) }

// start starts the VM's process; it reports whether it did. A process
// that could not be started keeps the reason in v.err.
func (v *parallelVM) start(t Target, dir string) bool {
	args := t.Args
	if t.ReportFlag != "" {
		v.report = filepath.Join(dir, fmt.Sprintf("report-%d.json", v.index))
		args = append(append([]string(nil), args...), t.ReportFlag, v.report)
	}
	r, w, err := os.Pipe()
	if err != nil {
		v.failStart("console pipe", err, fdLimit(err))
		return false
	}
	cmd := exec.Command(t.Path, args...)
	cmd.Stdout = w
	// Killed by the kernel if the thread that starts it, which lives as
	// long as the bench's VMs, goes: the VMs do not outlive a bench that
	// dies (a crash, SIGKILL) before it could kill them.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	sp, err := attachSettled(t, cmd)
	if err != nil {
		r.Close()
		w.Close()
		v.failStart("", err, fdLimit(err))
		return false
	}
	v.vmmSettled = sp
	// As RunBoot's: a ready the VMM reports itself counts as the ready
	// line does (a restore of a snapshot taken once ready, whose guest
	// does not print that line again).
	var readyOut *os.File
	v.restore = t.ReadyReported
	if t.ReadyFlag != "" {
		if v.readyIn, readyOut, err = os.Pipe(); err != nil {
			r.Close()
			w.Close()
			if sp != nil {
				sp.close(false)
			}
			v.failStart("ready pipe", err, fdLimit(err))
			return false
		}
		cmd.ExtraFiles = append(cmd.ExtraFiles, readyOut)
		cmd.Args = append(cmd.Args, t.ReadyFlag, fmt.Sprint(2+len(cmd.ExtraFiles)))
		// The process has its own copy once started: EOF on readyIn
		// then means it is gone.
		defer readyOut.Close()
	}
	v.stderr = &tailBuffer{max: 512}
	cmd.Stderr = v.stderr
	if len(t.Env) > 0 {
		cmd.Env = append(os.Environ(), t.Env...)
	}
	v.mu.Lock()
	start := MonoNow()
	err = cmd.Start()
	if err == nil {
		v.cmd, v.started = cmd, start
	}
	v.mu.Unlock()
	w.Close()
	if err != nil {
		r.Close()
		if sp != nil {
			sp.close(false)
		}
		if v.readyIn != nil {
			v.readyIn.Close()
			v.readyIn = nil
		}
		v.failStart("start", err, startLimit(err))
		return false
	}
	v.console = r
	raiseOOMScore(cmd.Process.Pid)
	v.pidfd = openPidfd(cmd.Process.Pid)
	if sp != nil {
		sp.started()
	}
	return true
}

// follow reads the started VM's console until EOF and reaps its process,
// then keeps how it ended, for result. Neither wait holds a thread:
// the console is a pipe and the process a pidfd, both served by the
// runtime's poller (exec.Cmd.Wait alone blocks one in waitid per VM).
func (v *parallelVM) follow(ready *regexp.Regexp) {
	defer v.settle()
	v.consoleDone = make(chan struct{})
	var reported sync.WaitGroup
	if v.readyIn != nil {
		reported.Add(1)
		go func() {
			defer reported.Done()
			v.readReport()
		}()
	}
	v.readConsole(v.console, ready)
	v.console.Close()
	close(v.consoleDone)
	reported.Wait() // EOF: the process is gone
	if v.pidfd != nil {
		awaitExit(v.pidfd)
		v.pidfd.Close()
	}
	// At once: the process has exited.
	waitErr := v.cmd.Wait()
	v.stopping.Wait()
	if sp := v.vmmSettled; sp != nil {
		sp.close(true)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.err != nil {
		return
	}
	// Kept even for a VM that started: one found gone when it was to be
	// measured failed after all (see sample), and this says how.
	v.end = v.endOf(waitErr)
	if v.ready != 0 || v.killed {
		return // started, or not in time: result says so
	}
	v.endWhat = "before its first console byte"
	if v.first != 0 {
		v.endWhat = "before its ready line"
	}
}

// vmEnd is how a VM's process ended by itself.
type vmEnd struct {
	status string // as exec's ProcessState says, or the guest's end
	// sigkill says that SIGKILL ended it: not the bench's (such a VM
	// ended by itself), so another process's or the kernel's OOM killer.
	sigkill bool
}

// endOf is how the VM's process ended, from exec.Cmd.Wait's error.
func (v *parallelVM) endOf(waitErr error) *vmEnd {
	e := &vmEnd{status: "exited"}
	var ee *exec.ExitError
	switch {
	case errors.As(waitErr, &ee):
		e.status = ee.ProcessState.String()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			e.sigkill = true
		}
	case waitErr != nil:
		e.status = waitErr.Error()
	}
	// A status the guest chose is its end, not the VMM's failure: the
	// demo guest's good end is status 1, which "exit status 1" hides.
	if v.report != "" && (waitErr == nil || ee != nil) {
		if r, err := readChildReport(v.report); err == nil && r.GuestStatus != nil && *r.GuestStatus == v.cmd.ProcessState.ExitCode() {
			e.status = fmt.Sprintf("the guest ended (status %d)", *r.GuestStatus)
		}
	}
	return e
}

// endError says why a VM that ended by itself did not start: how it
// ended, when (what), and its standard error's tail; and the host
// resource the end or that tail says ran out ("": none). oomKills says whether the OOM
// killer killed a process of the bench's memory cgroup meanwhile (nil:
// not known).
func (v *parallelVM) endError(what string, oomKills *bool) (string, Limit) {
	status := "exited"
	var limit Limit
	if v.end != nil {
		status = v.end.status
		if v.end.sigkill {
			// The kernel counts a kill in the victim's memory cgroup
			// (the bench's, which its VMs inherit) before it sends the
			// signal, and the count is read again once every VM is
			// reaped: one that did not rise rules the OOM killer out.
			switch {
			case oomKills == nil:
				status = "killed by SIGKILL from outside the bench (most likely the kernel's OOM killer, which takes VMs first)"
				limit = LimitMemory
			case *oomKills:
				status = "killed by the kernel's OOM killer"
				limit = LimitMemory
			default:
				status = "killed by SIGKILL from another process (not the OOM killer: the bench's memory cgroup counted no kill)"
			}
		}
	}
	msg := fmt.Sprintf("%s %s", status, what)
	if v.stderr == nil {
		return msg, limit
	}
	if s := v.stderr.String(); s != "" {
		msg += ": " + s
		// A VMM whose runtime found no thread to create: the same task
		// limits as a process that could not be created.
		sl := stderrLimit(s)
		if sl == LimitTasks {
			msg += limitFact(LimitTasks)
		}
		if limit == "" {
			limit = sl
		}
	}
	return msg, limit
}

// vmOOMScoreAdj is the oom_score_adj of each VM of RunParallel: the most,
// so that the kernel's OOM killer takes VMs before the bench.
const vmOOMScoreAdj = 1000

// raiseOOMScore makes the process pid, a VM just started, the OOM killer's
// first choice. Under memory pressure it would otherwise take the bench,
// which can hold more than a VM (its executable's pages, which the VMs
// unmap) and, killed, reports nothing; a VM killed instead is one not
// started. Raising needs no privilege; where /proc cannot be written the
// score stays, as the bench still works.
func raiseOOMScore(pid int) {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/oom_score_adj", pid), []byte(fmt.Sprint(vmOOMScoreAdj)), 0)
}

// openPidfd is a pidfd of the process pid, a child not yet reaped, that
// the runtime's poller serves (os.NewFile polls a non-blocking
// descriptor); nil where the kernel has none (before Linux 5.3), when the
// wait falls back to exec.Cmd.Wait's.
func openPidfd(pid int) *os.File {
	fd, err := unix.PidfdOpen(pid, 0) // PIDFD_NONBLOCK only from Linux 5.10
	if err != nil {
		return nil
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil
	}
	return os.NewFile(uintptr(fd), "pidfd")
}

// awaitExit returns once the process of pidfd f has exited: its pidfd
// polls readable then. Not reaped: exec.Cmd.Wait does that.
func awaitExit(f *os.File) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Read(func(fd uintptr) bool {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
		return n > 0 || (err != nil && err != unix.EINTR)
	})
}

// failStart is fail for err, of the bench's own pipe, socket or fork in
// starting the VM (startError's what), which says l is reached.
func (v *parallelVM) failStart(what string, err error, l Limit) {
	v.fail(startError(what, err, l), l)
}

// fail keeps why the VM did not start (err), and l, the host resource
// err says ran out ("": none).
func (v *parallelVM) fail(err error, l Limit) {
	v.mu.Lock()
	v.err, v.limit = err, l
	v.mu.Unlock()
}

// readConsole reads the VM's console until EOF and stops the process at
// its ready event.
func (v *parallelVM) readConsole(r io.Reader, ready *regexp.Regexp) {
	buf := make([]byte, 4096)
	lines := readyLine{m: consoleline.NewMatcher(ready)}
	for {
		n, err := r.Read(buf)
		if n > 0 {
			now := MonoNow()
			v.mu.Lock()
			// A VM already started silently at its report (ready, no
			// first byte) keeps no first output: one timed now would
			// come after its ready, which its start was.
			if v.first == 0 && v.ready == 0 {
				v.first = now
			}
			reported := v.vmmReady
			v.mu.Unlock()
			if ready == nil || reported {
				v.markReady(now)
			}
			if lines.feed(buf[:n]) {
				v.markReady(MonoNow())
			}
		}
		if err != nil {
			return
		}
	}
}

// readReport reads the VM's own ready report until the process is gone.
// The report marks the VM ready, but not before its first console byte: a
// VM starts there (a restored guest can be ready before it prints). A
// report that is no restore's, its guest's own ready (smolvmm: the
// boot-timer write), also moves there a ready line the bench saw first.
// A restore that prints nothing for restoreQuietWait after its report (a
// service at its prompt, which may never print) starts at the report.
func (v *parallelVM) readReport() {
	defer v.readyIn.Close()
	at, ok := readReadyTime(v.readyIn)
	if !ok {
		return
	}
	v.mu.Lock()
	silent := v.first == 0 && v.restore
	switch {
	case v.first == 0:
		v.vmmReady = true
	case v.ready != 0 && !v.restore:
		v.ready = min(v.ready, max(at, v.first))
	default:
		v.markReadyLocked(max(at, v.first))
	}
	v.mu.Unlock()
	if !silent {
		return
	}
	t := time.NewTimer(restoreQuietWait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-v.consoleDone:
		return // gone: it did not start
	case <-v.giveUp:
		return // cut off, or every VM has started or failed already
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.first == 0 {
		v.markReadyLocked(at)
	}
}

// markReady records the ready event and stops the process there, or once
// it has settled.
func (v *parallelVM) markReady(now int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.markReadyLocked(now)
}

// markReadyLocked is markReady, with v.mu held.
func (v *parallelVM) markReadyLocked(now int64) {
	if v.ready != 0 || v.late || v.deadline != 0 && now > v.deadline {
		return
	}
	v.ready = now
	if v.vmmSettled == nil {
		v.stopLocked()
		return
	}
	v.stopping.Add(1)
	go func() {
		defer v.stopping.Done()
		ok := v.vmmSettled.wait(v.settleTimeout, v.giveUp)
		v.mu.Lock()
		defer v.mu.Unlock()
		v.hasSettled = ok
		if ok {
			// Read after the wait saw the byte: the socket's reader is done.
			v.mapped, v.mappedWhy = v.vmmSettled.mapped, v.vmmSettled.mappedWhy
		}
		v.stopLocked()
	}()
}

// stopLocked stops the started VM for measurement and reports it started.
func (v *parallelVM) stopLocked() {
	if v.cmd != nil && !v.killed && !v.stopped {
		// Stopped, it cannot exit (and unmap) before it is measured.
		_ = v.cmd.Process.Signal(syscall.SIGSTOP)
		v.stopped = true
	}
	v.settle() // a channel with room for every VM: it does not block
}

// sample reads a started VM's memory.
func (v *parallelVM) sample(guestBytes uint64, guestFile string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ready == 0 || v.cmd == nil {
		return
	}
	// A VM still waiting to settle when the bench gave up is stopped
	// here, and flagged.
	v.stopLocked()
	pid := v.cmd.Process.Pid
	// Ended by itself (the bench sends SIGKILL only after this): not a
	// start that ran with the others, whatever it printed first.
	if exited(pid) {
		v.gone = true
		return
	}
	ro, err := ReadRollup(pid)
	if err != nil {
		// ErrGone, though it is no zombie yet: it is exiting (its
		// memory gone first).
		v.gone = exited(pid) || errors.Is(err, ErrGone)
		v.memErr = err
		return
	}
	m := &VMMemory{RSSKiB: ro.RSSKiB, PSSKiB: ro.PSSKiB, PSSAnonKiB: ro.PSSAnonKiB, PSSFileKiB: ro.PSSFileKiB,
		Unsettled: v.vmmSettled != nil && !v.hasSettled, ExecutableMapped: v.mapped, ExecutableMappedWhy: v.mappedWhy}
	if guestBytes > 0 {
		rss, pss, err := guestMapping(pid, guestBytes, guestFile, v.vmmSettled.guestRAMAt())
		if err != nil {
			v.gone = exited(pid) || errors.Is(err, ErrGone)
			v.memErr = err
			return
		}
		m.GuestRSSKiB, m.GuestPSSKiB = rss, pss
	}
	m.OverheadRSSKiB, m.OverheadPSSKiB = m.RSSKiB-m.GuestRSSKiB, m.PSSKiB-m.GuestPSSKiB
	v.mem = m
}

// endedAfterReady says when a VM failed that sample found gone;
// endedAfterReport, one started at its report, having printed nothing.
const (
	endedAfterReady  = "after its first console byte, before the bench measured it"
	endedAfterReport = "after its ready report, before the bench measured it"
)

// exited reports whether the process pid, a child of the bench, has
// exited (reaped or not); a stopped one has not.
func exited(pid int) bool {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	// ECHILD: follow has reaped it already. Linux sets si_signo to
	// SIGCHLD for an exited child, and to 0 when none is.
	return err != nil || info.Signo != 0
}

// cutOff ends the wait for the VM at the timeout: a VM not ready by
// then is killed, and stays not started whatever it prints after.
func (v *parallelVM) cutOff() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.late = true
	if v.ready == 0 && v.cmd != nil {
		v.killed = true
		_ = v.cmd.Process.Kill()
	}
}

// kill ends the VM's process (stopped or not).
func (v *parallelVM) kill() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.cmd == nil {
		return
	}
	v.killed = true
	_ = v.cmd.Process.Kill()
}

// result is the VM's entry in the results, times in ms since t0.
func (v *parallelVM) result(t0 int64, timeout time.Duration) VM {
	v.mu.Lock()
	defer v.mu.Unlock()
	ms := func(ns int64) float64 { return float64(ns-t0) / 1e6 }
	r := VM{Index: v.index}
	if v.started != 0 {
		r.StartMS = ms(v.started)
	}
	if v.first != 0 {
		r.FirstOutputMS = ms(v.first)
	}
	if v.ready != 0 {
		r.ReadyMS = ms(v.ready)
	}
	switch {
	case v.ready != 0 && !v.gone:
		r.Memory = v.mem
		if v.memErr != nil {
			r.MemoryError = v.memErr.Error()
		}
	case v.err != nil:
		r.Error, r.Limit = v.err.Error(), v.limit
	case v.ready != 0 && v.first == 0:
		r.Error, r.Limit = v.endError(endedAfterReport, v.oomKills)
	case v.ready != 0:
		r.Error, r.Limit = v.endError(endedAfterReady, v.oomKills)
	case v.endWhat != "":
		r.Error, r.Limit = v.endError(v.endWhat, v.oomKills)
	default:
		r.Error = fmt.Sprintf("not started within %v", timeout)
		if v.stderr == nil {
			break
		}
		if s := v.stderr.String(); s != "" {
			r.Error += ": " + s
			r.Limit = stderrLimit(s)
		}
	}
	return r
}
