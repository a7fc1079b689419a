package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrHostLimit is matched (errors.Is) by RunParallel's error when one of
// the host's limits cannot hold the VMs asked for, whatever else they
// need: a LimitError.
var ErrHostLimit = errors.New("more VMs than the host's limits hold")

// LimitError is RunParallel's refusal of N VMs that a limit of the host
// certainly cannot hold: each VM takes at least PerVM of what it counts,
// and Used of Value is taken already.
type LimitError struct {
	// N is the number of VMs asked for.
	N int
	// Limit names the limit: "RLIMIT_NOFILE" (the bench's descriptors),
	// "RLIMIT_NPROC" (its user's processes and threads),
	// "kernel.threads-max" or "kernel.pid_max" (the host's tasks), or
	// "pids.max of cgroup PATH" (the tasks of the bench's cgroup or of
	// one that holds it: systemd's TasksMax, a container's pids limit).
	Limit string
	// Value is the limit; Used, how much of it is taken.
	Value, Used uint64
	// Bench is how much more of it the bench keeps for itself: the
	// threads its runtime may yet need, or the descriptors it holds for
	// a moment while it starts a VM.
	Bench uint64
	// PerVM is what each VM takes of it.
	PerVM uint64
	// Max is the most VMs the rest could hold: (Value-Used-Bench)/PerVM.
	Max int
	// Own is CheckOwnLimits' answer: the VM is this process (N 1),
	// Used is the other tasks', PerVM the tasks this process likely has
	// in all with its guest running, and Least the fewest it runs with.
	Own bool
	// Least is, with Own, the fewest tasks this process runs its guest
	// with: the room is below it in a refusal, and holds it in a Tight
	// warning.
	Least uint64
	// Tight is, with Own, CheckOwnLimits' warning: the room holds Least
	// but not PerVM, so the VM may run out of tasks.
	Tight bool
}

// Error says the VMs asked for and Why they do not fit.
func (e *LimitError) Error() string {
	if e.Tight {
		return "the VM may run out of tasks: " + e.Why()
	}
	if e.Own {
		return "the VM: " + e.Why()
	}
	return fmt.Sprintf("%d VMs at once: %s", e.N, e.Why())
}

// Why says the limit, its value, and how many VMs it leaves room for.
func (e *LimitError) Why() string {
	what := map[string]string{
		"RLIMIT_NOFILE":      "descriptors the bench has open",
		"RLIMIT_NPROC":       "processes and threads of this user",
		"kernel.threads-max": "tasks on the host",
		"kernel.pid_max":     "tasks on the host",
	}[e.Limit]
	if strings.HasPrefix(e.Limit, "pids.max") {
		what = "tasks in it"
	}
	if e.Own {
		if e.Limit == "RLIMIT_NPROC" {
			what = "processes and threads of the user it runs as"
		}
		if e.Tight {
			return fmt.Sprintf("%s is %d, with %d %s besides this VMM, which may take %d with its guest running (it runs with %d at the least)",
				e.Limit, e.Value, e.Used, what, e.PerVM, e.Least)
		}
		return fmt.Sprintf("%s is %d, with %d %s besides this VMM, which cannot run its guest with fewer than %d",
			e.Limit, e.Value, e.Used, what, e.Least)
	}
	kept := ""
	switch {
	case e.Bench > 0 && e.Limit == "RLIMIT_NOFILE":
		kept = fmt.Sprintf(" and %d more held while a VM starts", e.Bench)
	case e.Bench > 0:
		kept = fmt.Sprintf(" and %d more kept for the bench's own threads", e.Bench)
	}
	return fmt.Sprintf("%s is %d, with %d %s%s, and each VM takes %d: room for %d VMs at most",
		e.Limit, e.Value, e.Used, what, kept, e.PerVM, e.Max)
}

// CheckHostLimits refuses, with a LimitError, n VMs of t that the host's
// limits certainly cannot hold, as RunParallel does before it starts any.
func CheckHostLimits(t Target, n int) error {
	return checkLimits(n, needOf(t), readHostLimits())
}

// CheckOwnLimits weighs the room a task limit of the host leaves for the
// VM this process is about to run itself (a VMM, where RunParallel's VMs
// are its children): least is the fewest tasks the process runs its
// guest with, likely how many it likely has in all with the guest
// running (those it has now among them in both; see Target.Tasks), uid
// the user they count against for RLIMIT_NPROC by then (the one it
// drops to, if it does: its tasks move to that user's count). A room
// below least is refused, with a LimitError (Own): a Go runtime that
// cannot make a thread it needs dies (fatal error: newosproc, or
// pthread_create failed) or stalls, the guest with it. A room that holds
// least but not likely is not refused: tight is then a LimitError (Own,
// Tight) that says the VM may run out of tasks, since how many threads
// the runtime makes depends on timing. Its descriptors are not checked:
// an open that finds none fails with an error of its own. What others
// take of the room after the check is not foreseen.
func CheckOwnLimits(uid int, least, likely uint64) (tight *LimitError, err error) {
	// The user it runs as counts under RLIMIT_NPROC, unless it is root
	// (a user it becomes, as it is then: no capability kept).
	enforced := nprocEnforced()
	if uid != os.Getuid() {
		enforced = uid != 0
	}
	l := readTaskLimits(uid, enforced, max(likely, least))
	// Counted after the limits, so that a thread the runtime made while
	// they were read is not taken for another's.
	have, err := ownThreads()
	if err != nil {
		have = 0
	}
	if uid != os.Getuid() && l.nproc != 0 {
		// Ours are not that user's yet: as many added as are taken
		// off below.
		l.nprocUsed += uint64(have)
	}
	return checkOwn(uint64(have), least, likely, l)
}

// checkOwn is CheckOwnLimits for a process with have tasks now, least at
// the fewest and likely in all with its guest running, under the limits
// l, whose counts hold its own have.
func checkOwn(have, least, likely uint64, l hostLimits) (tight *LimitError, err error) {
	others := func(used uint64) uint64 { return used - min(used, have) }
	least = max(least, 1)
	likely = max(likely, least)
	l.nofile = 0
	l.nprocUsed, l.tasks, l.cgroupPidsUsed = others(l.nprocUsed), others(l.tasks), others(l.cgroupPidsUsed)
	own := func(err error, tight bool) *LimitError {
		var le *LimitError
		if !errors.As(err, &le) {
			return nil
		}
		le.Own, le.Tight, le.Least, le.PerVM = true, tight, least, likely
		return le
	}
	if le := own(checkLimits(1, parallelNeed{tasks: least}, l), false); le != nil {
		return nil, le
	}
	return own(checkLimits(1, parallelNeed{tasks: likely}, l), true), nil
}

// Is makes errors.Is(err, ErrHostLimit) true.
func (e *LimitError) Is(target error) bool { return target == ErrHostLimit }

// hostLimits are the limits that bound the VMs one bench can start; a 0
// limit is not known or not enforced, and not checked.
type hostLimits struct {
	nofile, nofileUsed uint64 // RLIMIT_NOFILE, this process's descriptors
	nproc, nprocUsed   uint64 // RLIMIT_NPROC, its real user's tasks
	threadsMax, pidMax uint64 // kernel.threads-max and kernel.pid_max
	tasks              uint64 // the host's tasks (processes and threads)
	// The tightest pids.max of the bench's cgroup and its ancestors,
	// that cgroup's tasks, and its path.
	cgroupPids, cgroupPidsUsed uint64
	cgroup                     string
}

// readHostLimits reads the host's limits; tests replace it.
var readHostLimits = systemLimits

// parallelNeed is what the bench and each VM take of the host's limits.
type parallelNeed struct {
	fds uint64 // descriptors the bench holds per VM (parallelFDs)
	// startFDs is the descriptors it holds besides for a moment while it
	// starts one (startFDs).
	startFDs uint64
	// tasks is each VM's processes and threads (Target.Tasks, at least 1).
	tasks uint64
	// benchTasks is the threads the bench's runtime may yet create
	// (benchThreadsToCome): they count against the same task limits as
	// the VMs', and a runtime that cannot create one crashes.
	benchTasks uint64
}

// needOf is the need of RunParallel's VMs of t and of the bench.
func needOf(t Target) parallelNeed {
	return parallelNeed{fds: parallelFDs(t), startFDs: startFDs(t), tasks: max(t.Tasks, 1), benchTasks: threadsToCome()}
}

// checkLimits refuses n VMs that the limits l certainly cannot hold: each
// takes need.fds descriptors in the bench (console, stderr, pidfds,
// settled socket, ready pipe) and need.tasks tasks, and the bench's own threads to
// come take need.benchTasks from every task limit; the last VM's start
// takes need.startFDs descriptors more for a moment.
func checkLimits(n int, need parallelNeed, l hostLimits) error {
	checks := []struct {
		limit       string
		value, used uint64
		bench, per  uint64
	}{
		{"RLIMIT_NOFILE", l.nofile, l.nofileUsed, need.startFDs, need.fds},
		{"RLIMIT_NPROC", l.nproc, l.nprocUsed, need.benchTasks, need.tasks},
		{"kernel.threads-max", l.threadsMax, l.tasks, need.benchTasks, need.tasks},
		{"kernel.pid_max", l.pidMax, l.tasks, need.benchTasks, need.tasks},
		{"pids.max of cgroup " + l.cgroup, l.cgroupPids, l.cgroupPidsUsed, need.benchTasks, need.tasks},
	}
	for _, c := range checks {
		if c.value == 0 || c.per == 0 {
			continue
		}
		room := uint64(0)
		if c.value > c.used+c.bench {
			room = (c.value - c.used - c.bench) / c.per
		}
		if uint64(n) > room {
			return &LimitError{N: n, Limit: c.limit, Value: c.value, Used: c.used, Bench: c.bench, PerVM: c.per, Max: int(room)}
		}
	}
	return nil
}

// benchWorkers is how many threads the bench's runtime may keep busy
// at once while it runs its VMs: one per P, one per goroutine in a
// blocking system call (reading /proc, starting a VM), the one locked to
// start the VMs, and margin (measured, the bench had 6 to 11 threads in
// all with GOMAXPROCS 1 to 16, on 2 cores, before it made any ahead).
func benchWorkers() int { return 6 + min(runtime.GOMAXPROCS(0), 8) }

// threadsToCome is benchThreadsToCome; tests replace it.
var threadsToCome = benchThreadsToCome

// benchThreadsToCome is how many threads the bench's runtime may yet
// create, less those it has: reserveThreads' workers, sysmon and the
// template thread, and as many as one per P that the runtime starts to
// look for work as the workers come and go (measured: 10, 12, 17 and 22
// threads after reserveThreads with GOMAXPROCS 1, 2, 4 and 8).
func benchThreadsToCome() uint64 {
	want := benchWorkers() + 3 + min(runtime.GOMAXPROCS(0), 8)
	have, err := ownThreads()
	if err != nil {
		return uint64(want)
	}
	return uint64(max(want-have, 0))
}

// ownThreads is this process's thread count.
func ownThreads() (int, error) {
	ents, err := os.ReadDir("/proc/self/task")
	return len(ents), err
}

// reserveThreads has the runtime create, before any VM starts, the
// threads it may need while the VMs run (benchWorkers busy at once), and
// keep them idle: the Go runtime keeps a thread it has made until the
// process exits, and crashes (fatal error: newosproc) when one it needs
// cannot be made. The VMs, this user's other processes, or the VMs' own
// threads beyond their estimate may take every task a limit leaves
// (RLIMIT_NPROC counts threads too); the bench then runs on with the
// threads it has, reports what ran, and does not crash.
func reserveThreads() {
	// A goroutine locked to its thread keeps it while it waits, so each
	// of these has a thread of its own: one the runtime had idle, or a
	// new one. Unlocked, the threads go back to its idle list.
	n := benchWorkers()
	var held, release sync.WaitGroup
	held.Add(n)
	release.Add(1)
	for range n {
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			held.Done()
			release.Wait()
		}()
	}
	held.Wait()
	release.Done()
}

// startFDs is the number of descriptors the bench holds for a moment, on
// top of parallelFDs', while it starts a VM of t: the write ends of the
// console and stderr pipes, os/exec's /dev/null for stdin, the fork's
// two-ended error pipe, and the VM's ends of its settled socket and ready
// pipe, until it has its own. Measured under a lowered RLIMIT_NOFILE,
// with the numbers free below it counted (fdsBelow): every VM started
// with 5 more than parallelFDs' per VM, 6 with the settled socket; one
// more is counted as margin. Without them, the last VM of the most the
// check let through failed "too many open files".
func startFDs(t Target) uint64 {
	n := uint64(6)
	if t.SettledFlag != "" && !t.Jailed {
		n++
	}
	if t.ReadyFlag != "" {
		n++
	}
	return n
}

// parallelFDs is the number of descriptors the bench holds for each VM
// RunParallel starts for t: its console and stderr pipes, its pidfd and
// the runtime's, its settled socket, and its ready pipe, which RunParallel
// gives with a ready pattern or to a restore (its ready report).
func parallelFDs(t Target) uint64 {
	n := uint64(2)
	if pidfdWorks() {
		n += 2
	}
	if t.SettledFlag != "" && !t.Jailed {
		n++
	}
	if t.ReadyFlag != "" {
		n++
	}
	return n
}

// pidfdWorks reports whether this kernel has pidfd_open.
var pidfdWorks = sync.OnceValue(func() bool {
	fd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
})

// systemLimits reads the limits of this process and host; what it cannot
// read is left 0 (unchecked).
func systemLimits() hostLimits {
	l := taskLimits(os.Getuid(), nprocEnforced(), ^uint64(0))
	var r syscall.Rlimit
	// The runtime opens its poller's two descriptors (epoll, eventfd) at
	// the first pipe or socket it is given, and keeps them: a bench's first
	// run, counted before them, found two fewer free than it had. A pipe
	// made and closed here has them open when they are counted.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) == nil && r.Cur != unix.RLIM_INFINITY {
		if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
			l.nofile, l.nofileUsed = r.Cur, fdsBelow(fds, r.Cur)
		}
	}
	return l
}

// taskLimits is systemLimits but for the descriptors, for tasks of user
// uid, whose RLIMIT_NPROC counts where enforced. That user's tasks are
// counted (a read of every process's status: milliseconds, tens of them
// for a user who may not read others') only where the host's tasks and
// need could reach the limit: fewer, the host's, which hold them, stand
// for them.
func taskLimits(uid int, enforced bool, need uint64) hostLimits {
	var l hostLimits
	l.threadsMax, _ = readUint("/proc/sys/kernel/threads-max")
	l.pidMax, _ = readUint("/proc/sys/kernel/pid_max")
	// /proc/loadavg's fourth field: running/existing tasks.
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 4 {
			if _, total, ok := strings.Cut(f[3], "/"); ok {
				l.tasks, _ = strconv.ParseUint(total, 10, 64)
			}
		}
	}
	var r unix.Rlimit
	if enforced && unix.Getrlimit(unix.RLIMIT_NPROC, &r) == nil && r.Cur != unix.RLIM_INFINITY {
		if l.tasks > 0 && l.tasks < r.Cur && need <= r.Cur-l.tasks {
			l.nproc, l.nprocUsed = r.Cur, l.tasks
		} else if used, err := userTasks(uid); err == nil {
			l.nproc, l.nprocUsed = r.Cur, used
		}
	}
	if l.tasks == 0 {
		l.threadsMax, l.pidMax = 0, 0
	}
	if b, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		l.cgroupPids, l.cgroupPidsUsed, l.cgroup = cgroupPids("/sys/fs/cgroup", string(b))
	}
	return l
}

// readTaskLimits reads the limits on tasks (taskLimits); tests replace it.
var readTaskLimits = taskLimits

// fdsBelow is how many of the descriptors listed in fds (the entries of
// /proc/self/fd) take a number below limit, the one read's own left out.
// RLIMIT_NOFILE bounds the numbers a new descriptor may take, not how
// many are open: one inherited above it (a shell's fd 255, say) leaves
// every number below it free, where counted it made the room seem one
// less (and measured with it, a start's need one less than it is).
func fdsBelow(fds []os.DirEntry, limit uint64) uint64 {
	var n uint64
	for _, e := range fds {
		if fd, err := strconv.ParseUint(e.Name(), 10, 64); err == nil && fd < limit {
			n++
		}
	}
	// The read's own was the lowest number free, so below the limit.
	if n > 0 {
		n--
	}
	return n
}

// cgroupPids finds, under the cgroup file systems at root, the tightest
// pids.max (the least room left) of the cgroup that self (the text of
// /proc/self/cgroup) names and of its ancestors, in cgroup v2 (at root, or
// root/unified beside v1) or in v1's pids hierarchy: the limit, the tasks
// in that cgroup, and its path; 0 and "" when none is set.
func cgroupPids(root, self string) (limit, used uint64, where string) {
	room := uint64(1<<64 - 1)
	for _, line := range strings.Split(strings.TrimSpace(self), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var bases []string
		switch {
		case parts[0] == "0" && parts[1] == "":
			bases = []string{root, filepath.Join(root, "unified")}
		case strings.Contains(","+parts[1]+",", ",pids,"):
			bases = []string{filepath.Join(root, "pids")}
		default:
			continue
		}
		for _, base := range bases {
			for p := filepath.Clean("/" + parts[2]); ; p = filepath.Dir(p) {
				max, err1 := readUint(filepath.Join(base, p, "pids.max"))
				cur, err2 := readUint(filepath.Join(base, p, "pids.current"))
				if err1 == nil && err2 == nil {
					r := uint64(0)
					if max > cur {
						r = max - cur
					}
					if r < room {
						room, limit, used, where = r, max, cur, p
					}
				}
				if p == "/" {
					break
				}
			}
		}
	}
	return limit, used, where
}

// nprocEnforced reports whether fork checks RLIMIT_NPROC for this
// process: not for root, nor with CAP_SYS_RESOURCE or CAP_SYS_ADMIN.
func nprocEnforced() bool {
	if os.Getuid() == 0 {
		return false
	}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return true
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err != nil || caps&(1<<unix.CAP_SYS_RESOURCE|1<<unix.CAP_SYS_ADMIN) == 0
		}
	}
	return true
}

// userTasks counts the tasks (threads) of the processes whose real user
// is uid, of those this process can see.
func userTasks(uid int) (uint64, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*/status")
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, p := range dirs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // gone since
		}
		var real, threads uint64
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			k, v, _ := strings.Cut(sc.Text(), ":")
			switch f := strings.Fields(v); {
			case len(f) == 0:
			case k == "Uid":
				real, _ = strconv.ParseUint(f[0], 10, 64)
			case k == "Threads":
				threads, _ = strconv.ParseUint(f[0], 10, 64)
			}
		}
		if real == uint64(uid) {
			n += threads
		}
	}
	return n, nil
}

// readUint reads a file holding one unsigned number.
func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}
