package bench

import (
	"bytes"
	"context"
	"encoding/binary"
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
	"sync/atomic"
	"syscall"
	"time"

	"github.com/smolvmm/smolvmm/internal/consoleline"
	"github.com/smolvmm/smolvmm/internal/portready"
)

// Target is one way of booting the guest: a program started once per boot.
type Target struct {
	// Name identifies the system in results: "smolvmm", "qemu-kvm", ...
	Name string
	// Path and Args are the program and its arguments (without Path).
	Path string
	Args []string
	// ReportFlag, when set, is passed with a file name after Args; the
	// program writes a ChildReport there before it exits (opening it as
	// a file to write: RunBoot names a named pipe, whose buffer takes no
	// room in TMPDIR's file system). A nonzero exit status of such a
	// program is a good end only when its report's GuestStatus is that
	// status (and Success takes it).
	ReportFlag string
	// GuestBytes is the guest's RAM size, to find its mapping in smaps.
	GuestBytes uint64
	// GuestFile, for a restore, is the snapshot whose private mapping is
	// the guest RAM (absolute, symbolic links resolved: as smaps names
	// it); empty when the guest RAM is anonymous memory.
	GuestFile string
	// Env is added to the bench's environment for the program.
	Env []string
	// Jailed: the program runs the VMM as its only child process (a jailed
	// VMM), whose memory is read instead of the program's.
	Jailed bool
	// SettledFlag, when set and the program is not Jailed, is passed by
	// RunParallel (and by RunBoot when it samples memory) with a
	// descriptor number after Args: a Unix socket on which the program
	// writes a byte once the work it does after its guest starts is over
	// (smolvmm: unmapping its executable's set-up code), so that its
	// memory is read after it. Before it unmaps anything at its end, the
	// program may wait for EOF there: the bench closes its end once it
	// has read the program's memory.
	SettledFlag string
	// ReadyFlag, when set, is passed by RunBoot with a descriptor number
	// after Args; the program writes the time its guest became ready
	// there, as 8 bytes of CLOCK_MONOTONIC nanoseconds, little-endian.
	// With a Ready.Addr the program judges that readiness itself
	// (smolvmm sees the guest accept a connection on the forwarded port,
	// which a connection from the host cannot tell from a forward that
	// accepted for a guest that never answers), and the bench does not
	// poll Ready.Addr. Otherwise the program reports a ready of its own
	// (smolvmm's: the guest's boot-timer write; a restore's, see
	// ReadyReported), which is a ready event as a Ready.Pattern's line
	// is: the boot is ready at the earlier of the two, as smolvmm run's
	// timings say, with a pattern or without a ready condition, and a
	// guest that runs on is stopped ExitWait after it. The bench learns
	// it there while the process runs, to sample its memory and stop it
	// at, not only from the ReportFlag's report once it is gone.
	// RunParallel passes it only with a ParallelOptions.Ready.
	ReadyFlag string
	// ReadyReported: the program's ready report on its ReadyFlag comes
	// at its guest's first instruction (smolvmm restoring a snapshot
	// taken once ready: its guest may never print the ready line
	// again), and without it the program's guest is not ready (a
	// restore of a snapshot taken before its guest was ready:
	// ErrNoReadyReport). It is the boot's ready event, but the ready
	// line, when a Ready.Pattern's comes before the boot ends (the
	// guest exits, or is stopped ExitWait after the report), gives the
	// phase its time instead; RunBoot samples memory at the first
	// console byte after the report, once the guest has run, or, when
	// none comes within ExitWait, at the report once that wait has
	// passed. Such a program, once it has reported, need print nothing
	// (a service at its prompt): its boot then has no PhaseFirstOutput,
	// where any other boot without console output fails.
	// RunParallel starts such a VM at its first console byte when that
	// comes within a second of the report, else at the report (see
	// ParallelOptions.Ready).
	ReadyReported bool
	// Success says which exit statuses of the program mean the boot went
	// well (nil: 0 only); a boot that ends with another fails with
	// ErrExitStatus and what the program wrote on stderr. A boot the
	// bench stopped at its ready event is not judged by it: its status
	// is the stop's. DebugExitSuccess is smolvmm's and QEMU's.
	Success func(status int) bool
	// Network, when set, is the shared network the program's VM joins
	// (smolvmm net): RunBoot reads its memory along with the VM's
	// sample (Boot.NetworkMemory). RunParallel takes it from its
	// options instead.
	Network *SharedNetwork
	// Tasks is how many tasks (processes and threads) one running VM of
	// the program takes at most, as the host's task limits count them
	// (RLIMIT_NPROC, a cgroup's pids.max): a Go VMM runs a thread per
	// vCPU and per P besides its runtime's own. 0 counts one.
	Tasks uint64
	// MemoryInTimedBoot: Run samples the memory in the first timed boot,
	// once, instead of in an untimed boot of its own (retried when the
	// sample fails): for a program that may run only as many times as
	// the bench times it (smolvmm restoring a snapshot that recorded a
	// read-write disk, which a restore refuses once a guest wrote it).
	// The sample's pause is then in that boot's later phases.
	MemoryInTimedBoot bool
}

// SharedNetwork is a network process that VMs join, whose memory the bench
// reports with theirs.
type SharedNetwork struct {
	// PID is its process.
	PID int
	// VMs, when set, asks it how many VMs are joined (this bench's and
	// any other's): its PSS is shared out among them, else given to the
	// one VM measured.
	VMs func() (int, error)
	// Settle is how long after the VM's memory was read its own is read:
	// what it does after a join and then keeps for its life (smolvmm
	// net's release of its executable) is what a VM pays a share of.
	Settle time.Duration
}

// DebugExitSuccess is the success rule of a VMM with QEMU's
// isa-debug-exit device, as smolvmm and the QEMU targets have: 0 (the
// guest reset, halted or powered off) or an odd status, (v<<1)|1 for the
// value v the guest wrote to the device. Any other status (smolvmm's 2 for
// a crashed guest, -1 for a VMM killed by a signal) is a failed boot. The
// status alone cannot tell a debug-exit from a VMM's own failure with the
// same status (QEMU's and smolvmm's 1 for an error): smolvmm's
// ChildReport.GuestStatus does, which the runner checks for a Target
// with a ReportFlag.
func DebugExitSuccess(status int) bool { return status == 0 || status > 0 && status&1 == 1 }

// fmtGuestStatus prints a ChildReport.GuestStatus.
func fmtGuestStatus(s *int) string {
	if s == nil {
		return "none"
	}
	return strconv.Itoa(*s)
}

// succeeded applies t.Success to a status (nil: 0 only).
func (t Target) succeeded(status int) bool {
	if t.Success == nil {
		return status == 0
	}
	return t.Success(status)
}

// Command is the target's command line, for results.
func (t Target) Command() []string {
	return append([]string{t.Path}, t.Args...)
}

// Ready says when a booted guest's service is ready. The zero value means
// the guest has no ready condition (smolvmm's boot-timer port still counts).
type Ready struct {
	// Pattern is matched against each console line as it grows, or
	// once it ends when the pattern asserts what follows ($, \b): a
	// line ends at '\n' and holds no '\r', as the machine's own ready
	// pattern sees it.
	Pattern *regexp.Regexp
	// Addr, when set, is a host:port polled with TCP connects; the first
	// connection that the peer keeps open for 100 ms (or sends data on)
	// marks the guest ready, at the time it connected. A target with a
	// ReadyFlag judges it itself instead: behind a user network's forward,
	// which accepts on the host before it asks the guest, a connection
	// that holds proves nothing.
	Addr string
}

// IsSet reports whether a ready condition was given.
func (r Ready) IsSet() bool { return r.Pattern != nil || r.Addr != "" }

// BootOptions tune RunBoot.
type BootOptions struct {
	Ready Ready // the ready condition a boot must meet; unset, none is
	// Timeout bounds one boot (0: one minute; negative is refused).
	Timeout time.Duration
	// SampleMemory stops the process at the ready event (or the first
	// console byte without a ready condition) to read its smaps, once it
	// has settled when the target has a SettledFlag; it perturbs the
	// times. With a Ready.Pattern, a ready the target reports on its
	// ReadyFlag counts too: the sample is taken at whichever of the two
	// comes first. A Target.ReadyReported (a restore, ready at its first
	// instruction, its guest RAM still untouched there) is sampled at its
	// first console byte after its report, once its guest has run; one
	// that prints nothing within ExitWait of its report, at its report
	// once it has run that long.
	SampleMemory bool
	// SettleTimeout bounds the wait for the SettledFlag byte before the
	// memory sample (default three seconds: smolvmm settles after its
	// second release of its executable, a second after its guest starts).
	SettleTimeout time.Duration
	// Console, when set, receives a copy of the console output.
	Console io.Writer
	// PollInterval is the pause between TCP connects to Ready.Addr
	// (default 1ms).
	PollInterval time.Duration
	// ExitWait is how long a guest may take to end by itself once the
	// bench has seen it ready (and sampled its memory, if it does) before
	// the bench stops it (default one second): a guest still running
	// then (a system at its login prompt) would never end, and the boot
	// ends at its ready event. A guest never ready (no ready condition,
	// or one that never held, and no ready reported on the
	// Target.ReadyFlag) is waited for until its process exits, up to
	// Timeout.
	ExitWait time.Duration
	// StopGrace is how long a process stopped with SIGTERM has to exit
	// before it is killed with SIGKILL (default five seconds).
	StopGrace time.Duration
	// sampleAtFirstOutput takes the memory sample at the first console
	// byte even with a ready condition: for a guest that ends as soon as
	// it is ready, gone before the bench could stop it there.
	sampleAtFirstOutput bool
}

// stopForSample stops the process pid for the memory sample taken at
// event; tests replace it.
var stopForSample = func(pid int, event string) error { return syscall.Kill(pid, syscall.SIGSTOP) }

// Boot is one measured boot.
type Boot struct {
	// Phases maps phase names to milliseconds since process start. A
	// boot the bench stopped at its ready event (see BootOptions.ExitWait)
	// has PhaseStopped and no PhaseGuestExit. A restore whose guest
	// printed nothing after its ready report (Target.ReadyReported) has
	// no PhaseFirstOutput: there was no byte to time.
	Phases map[string]float64 `json:"phases_ms"`
	// Restored says the boot was a restore (Target.ReadyReported),
	// whatever event made it ready: it may lack PhaseFirstOutput. Results
	// written before it was recorded have only ReadyBy ReadyByRestore.
	Restored bool `json:"restored,omitempty"`
	// ReadyBy is the event that gave PhaseReady its time (ReadyByLine,
	// ReadyByPort, ReadyByVMM, ReadyByRestore); empty without a ready
	// phase, and in results written before it was recorded.
	ReadyBy string `json:"ready_by,omitempty"`
	// Status is the process exit status (-1 when killed by a signal); for
	// a stopped boot, how the process ended after the stop: smolvmm's is
	// 130, -1 when it had to be killed.
	Status int `json:"status"`
	// Memory is set on the boot that sampled memory.
	Memory *Memory `json:"-"`
	// MemoryErr says why a requested memory sample failed.
	MemoryErr error `json:"-"`
	// NetworkMemory is the Target.Network's, read with Memory while the
	// VM was joined; NetworkMemoryErr says why it could not be.
	NetworkMemory    *NetworkMemory `json:"-"`
	NetworkMemoryErr error          `json:"-"`
	// Output is the console output (kept for errors and tests).
	Output []byte `json:"-"`
}

// BootError is a boot that went wrong; it carries what the VMM said.
type BootError struct {
	Target string // the target's name (Target.Name)
	Err    error  // what went wrong
	// Stderr is the tail of the VMM's standard error.
	Stderr string
}

// Error names the target, then the cause, then what the boot wrote on
// stderr, which usually says why it failed.
func (e *BootError) Error() string {
	msg := fmt.Sprintf("%s: %v", e.Target, e.Err)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

// Unwrap returns the cause, for errors.Is and errors.As.
func (e *BootError) Unwrap() error { return e.Err }

// Stopped reports whether the bench stopped the boot at its ready event,
// the guest not ending by itself.
func (b *Boot) Stopped() bool {
	_, ok := b.Phases[PhaseStopped]
	return ok
}

// ErrNotReady is wrapped when the guest exited before its ready condition.
var ErrNotReady = errors.New("the guest exited before the ready condition held")

// ErrExitStatus is wrapped when a boot's program ended with a status its
// Target.Success does not count as success (a guest that crashed).
var ErrExitStatus = errors.New("the boot ended with a failure status")

// ErrTimeout is wrapped when a boot did not end within BootOptions.Timeout.
var ErrTimeout = errors.New("boot timed out")

// ErrNoReadyReport is wrapped, with ErrTimeout, when a boot whose
// program's ready report is its ready event (Target.ReadyReported) timed
// out with neither that report nor the ready line: a restore of a
// snapshot taken before its guest was ready, whose guest did not become
// ready since, is ready only once it does, and more time may not help.
var ErrNoReadyReport = errors.New("the program never reported its guest ready")

// ErrNegativeTimeout is wrapped by RunBoot's and RunParallel's refusal of
// a negative Timeout, before anything starts (0 means the default).
var ErrNegativeTimeout = errors.New("negative timeout")

// RunBoot starts t once and measures it until the process exits: by
// itself, or stopped by the bench once the guest was ready (see
// BootOptions.ExitWait). The process is killed (SIGKILL) if the bench
// dies first; RunBoot holds its goroutine's OS thread until it is reaped.
func RunBoot(ctx context.Context, t Target, o BootOptions) (*Boot, error) {
	if o.Timeout < 0 {
		return nil, fmt.Errorf("bench: %w: %s", ErrNegativeTimeout, o.Timeout)
	}
	if o.Timeout == 0 {
		o.Timeout = time.Minute
	}
	if o.PollInterval == 0 {
		o.PollInterval = time.Millisecond
	}
	if o.SettleTimeout == 0 {
		o.SettleTimeout = 3 * time.Second
	}
	if o.ExitWait == 0 {
		o.ExitWait = time.Second
	}
	if o.StopGrace == 0 {
		o.StopGrace = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	fail := func(err error, stderr *tailBuffer) (*Boot, error) {
		e := &BootError{Target: t.Name, Err: err}
		if stderr != nil {
			e.Stderr = stderr.String()
		}
		return nil, e
	}

	args := t.Args
	var report *reportPipe
	if t.ReportFlag != "" {
		// Locked, so that a bench killed meanwhile has it removed by
		// the next (parallel.go).
		dir, lock, err := makeReportDir(os.TempDir())
		if err != nil {
			return fail(err, nil)
		}
		defer lock.Close()
		defer os.RemoveAll(dir)
		if report, err = openReportPipe(filepath.Join(dir, "report.json")); err != nil {
			return fail(err, nil)
		}
		defer report.close()
		args = append(append([]string(nil), args...), t.ReportFlag, report.path)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fail(err, nil)
	}
	defer r.Close()
	stderr := &tailBuffer{max: 2048}
	cmd := exec.Command(t.Path, args...)
	cmd.Stdout = w
	cmd.Stderr = stderr
	// Killed by the kernel if the thread that starts it goes: the VM
	// does not outlive a bench that dies (a crash, SIGKILL) before it
	// could stop it. The signal follows the thread, not the process: this
	// goroutine keeps its thread until the VM is reaped, or the thread
	// could pass to a goroutine that locks it and exits, which ends the
	// thread and kills the VM mid-boot.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if len(t.Env) > 0 {
		cmd.Env = append(os.Environ(), t.Env...)
	}

	// The program's ready report (Target.ReadyFlag): the bench reads
	// readyIn, the program writes its copy of readyOut. With Ready.Addr
	// the program judges the bench's own condition; else it reports its
	// own ready there: a restore's (restoreReport), whose guest does not
	// print the ready line again, or the guest's boot-timer write.
	restoreReport := t.ReadyReported && o.Ready.Addr == ""
	var readyIn, readyOut *os.File
	if t.ReadyFlag != "" {
		if readyIn, readyOut, err = os.Pipe(); err != nil {
			w.Close()
			return fail(fmt.Errorf("ready pipe: %w", err), nil)
		}
		defer readyIn.Close()
		cmd.ExtraFiles = append(cmd.ExtraFiles, readyOut)
		cmd.Args = append(cmd.Args, t.ReadyFlag, fmt.Sprint(2+len(cmd.ExtraFiles)))
		defer readyOut.Close() // when the program could not start
	}
	var settled *settledConn
	if o.SampleMemory {
		if settled, err = attachSettled(t, cmd); err != nil {
			w.Close()
			return fail(err, nil)
		}
	}

	rec := &recorder{phases: map[string]int64{}}
	start := MonoNow()
	if err := cmd.Start(); err != nil {
		w.Close()
		if settled != nil {
			settled.close(false)
		}
		return fail(err, nil)
	}
	w.Close()
	if readyOut != nil {
		// The program has its own copy: EOF on readyIn then means it is
		// gone.
		readyOut.Close()
	}
	if settled != nil {
		settled.started()
		defer settled.close(true)
	}
	pid := cmd.Process.Pid
	done := make(chan struct{})
	// ready is closed once the bench has seen the ready event and sampled
	// memory at it (the VM may then be stopped: it unmaps nothing before
	// the sample is over).
	ready := make(chan struct{})
	var readyOnce sync.Once
	// exitFrom is when a restore's ready report was read (MonoNow; 0:
	// none before ready): its ExitWait runs from there, as an unsampled
	// round's does, not from the end of its sample, which itself can
	// wait ExitWait for the guest's first byte.
	var exitFrom atomic.Int64
	var ender sync.WaitGroup
	ender.Add(1)
	go func() {
		defer ender.Done()
		endProcess(ctx, cmd.Process, o, ready, done, &exitFrom, rec)
	}()

	// One sample at a time (one's SIGCONT would resume the process under
	// another's read), and one in all: the bench's own ready and the
	// program's (vmmReadyOnly) may both come, and a restore's first
	// console byte with them.
	var sampling sync.Mutex
	sampled := false
	// sample reads the memory at event; by is the ready event that made
	// it (Memory.ReadyBy) when event is PhaseReady.
	sample := func(event, by string) {
		if !o.SampleMemory {
			return
		}
		sampling.Lock()
		defer sampling.Unlock()
		if sampled {
			return
		}
		sampled = true
		vmm := pid
		if t.Jailed {
			var err error
			if vmm, err = onlyChild(pid); err != nil {
				rec.memory(nil, fmt.Errorf("%s at %s: %w", t.Name, event, err))
				return
			}
		}
		wasSettled := settled != nil && settled.wait(o.SettleTimeout, nil)
		if settled != nil {
			defer settled.release() // measured: it may go on to its end
		}
		// Stopped, the process cannot exit (and unmap) under the read.
		if err := stopForSample(vmm, event); err != nil {
			rec.memory(nil, fmt.Errorf("stop %s at %s: %w", t.Name, event, gone(err)))
			return
		}
		mem, err := readMemory(vmm, t.GuestBytes, t.GuestFile, settled.guestRAMAt())
		_ = syscall.Kill(vmm, syscall.SIGCONT)
		if err == nil {
			mem.SampledAt, mem.Settled = event, wasSettled
			if event == PhaseReady {
				mem.ReadyBy = by
			}
			if wasSettled && settled.mapped {
				mem.ExecutableMapped, mem.ExecutableMappedWhy = true, settled.mappedWhy
			}
			rec.memory(&mem, nil)
		} else {
			rec.memory(nil, fmt.Errorf("%s at %s: %w", t.Name, event, err))
		}
		if n := t.Network; n != nil {
			// The VM is still joined: it has not been released yet
			// (settled), nor stopped (ready is closed after this).
			if n.Settle > 0 {
				time.Sleep(n.Settle)
			}
			m, err := readNetworkMemory(n.PID, n.VMs)
			if err == nil {
				m.PSSKiBPerVM = float64(m.PSSKiB) / float64(max(m.VMs, 1))
			}
			rec.netMem, rec.netErr = m, err
		}
	}
	// firstOut is closed at the first console byte, once memory was
	// sampled there if it is: a restore's memory is read no sooner,
	// unless none comes (sampleAfterRestore), and a guest without a
	// ready condition is stopped no sooner (see below).
	firstOut := make(chan struct{})
	// observed follows each event the bench sees, once. With a ready
	// condition the sample is taken at ready only: one at the first
	// output would hold ready back by its wait, and its release would
	// end the settled wait.
	// by is the ready event (ReadyByLine...) of a PhaseReady.
	observed := func(event, by string) {
		switch event {
		case PhaseFirstOutput:
			if !o.Ready.IsSet() || o.sampleAtFirstOutput {
				sample(event, "")
			}
			close(firstOut)
		case PhaseReady:
			sample(event, by)
			readyOnce.Do(func() { close(ready) })
		}
	}
	// reportBy is the ready event the program's report stands for.
	reportBy := ReadyByVMM
	if restoreReport {
		reportBy = ReadyByRestore
	}
	sampleReported := func(event string) { sample(event, reportBy) }

	var wg sync.WaitGroup
	var out bytes.Buffer
	wg.Add(1)
	go func() {
		defer wg.Done()
		readConsole(r, &out, o, rec, observed)
	}()
	// reportedAt is a restore's ready report's time (0 when none came),
	// written before wg.Done: the ready phase when the line came after
	// the stop. reported says that a Target.ReadyReported program's
	// report came (with Ready.Addr too), written before wg.Done.
	var reportedAt int64
	var reported bool
	switch {
	case readyIn != nil && restoreReport:
		// A restore's ready, at its first instruction: the pattern's
		// line, when there is one and it comes, or else the report,
		// gives the phase. The memory is read on this goroutine: the
		// console is read on meanwhile, so that the pattern's line is
		// timed when it comes. The report also starts the wait for the
		// guest's end: a restored guest that never prints the line nor
		// exits is stopped then, not timed out.
		wg.Add(1)
		go func() {
			defer wg.Done()
			at, ok := readReadyTime(readyIn)
			if !ok {
				return
			}
			reportedAt, reported = at, true
			if o.Ready.Pattern == nil {
				rec.markReady(reportBy, at)
			}
			if o.SampleMemory {
				exitFrom.Store(MonoNow())
				sampleAfterRestore(firstOut, done, o.ExitWait, sampleReported)
			}
			readyOnce.Do(func() { close(ready) })
		}()
	case readyIn != nil:
		// The program's judgement of Ready.Addr, or its guest's own
		// ready (the boot-timer write): with a pattern the earlier of
		// it and the line is the ready phase, and whichever the bench
		// learns first is its ready event.
		wg.Add(1)
		go func() {
			defer wg.Done()
			at, ok := readReadyTime(readyIn)
			if !ok {
				return
			}
			reported = t.ReadyReported
			if !rec.markReadyEarliest(reportBy, at) {
				return // the line came first, and was observed
			}
			if t.ReadyReported && o.SampleMemory {
				exitFrom.Store(MonoNow())
				sampleAfterRestore(firstOut, done, o.ExitWait, sampleReported)
			}
			if !o.Ready.IsSet() {
				// Memory is read at the first console byte: the
				// guest is stopped no sooner.
				if o.SampleMemory {
					waitClosed(firstOut, done, o.ExitWait)
				}
				readyOnce.Do(func() { close(ready) })
				return
			}
			observed(PhaseReady, reportBy)
		}()
	case o.Ready.Addr != "":
		wg.Add(1)
		go func() {
			defer wg.Done()
			pollPort(o.Ready.Addr, o.PollInterval, done, rec, observed)
		}()
	}
	waitErr := cmd.Wait()
	rec.mark(PhaseExit)
	close(done)
	wg.Wait()
	ender.Wait()
	_, stopped := rec.phases[PhaseStopped]
	_, wasReady := rec.phases[PhaseReady]

	switch {
	case stopped && errors.Is(ctx.Err(), context.DeadlineExceeded):
		// Ready, and stopped: the timeout is no failure of the boot.
	case errors.Is(ctx.Err(), context.DeadlineExceeded) && restoreReport && !wasReady:
		return fail(fmt.Errorf("%w: boot did not end within %v: %w", ErrTimeout, o.Timeout, ErrNoReadyReport), stderr)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fail(fmt.Errorf("%w: boot did not end within %v", ErrTimeout, o.Timeout), stderr)
	case ctx.Err() != nil:
		return fail(fmt.Errorf("boot interrupted: %w", ctx.Err()), stderr)
	}
	var exitErr *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &exitErr) {
		return fail(waitErr, stderr)
	}
	b := &Boot{Phases: map[string]float64{}, Restored: t.ReadyReported, Status: cmd.ProcessState.ExitCode(), Output: out.Bytes()}
	if _, ok := rec.phases[PhaseFirstOutput]; !ok && !reported {
		// A restore that reported its guest ready needs print nothing
		// (a service at its prompt): its boot has no first-output
		// phase. Any other boot without output went wrong.
		return fail(fmt.Errorf("no console output (exit status %d)", b.Status), stderr)
	}
	var guestStatus *int
	if report != nil {
		child, err := report.read()
		if err != nil {
			return fail(err, stderr)
		}
		guestStatus = child.GuestStatus
		for name, ns := range child.Phases {
			// The bench's own observations win over the child's, but
			// for a ready that is not a restore's: the guest's
			// boot-timer write before the ready line is the ready
			// event, as run's timings say.
			if old, ok := rec.phases[name]; !ok || name == PhaseReady && !t.ReadyReported && ns < old {
				rec.phases[name] = ns
				if name == PhaseReady {
					rec.readyBy = reportBy
				}
			}
		}
	}
	if ge, ok := rec.phases[PhaseGuestExit]; stopped && ok && ge <= rec.phases[PhaseStopped] {
		// The guest ended by itself before the stop, which only found
		// the VMM on its way out (a slow exit on a loaded host): not
		// stopped after all.
		delete(rec.phases, PhaseStopped)
		stopped = false
	}
	if r, ok := rec.phases[PhaseReady]; stopped && reportedAt != 0 && ok && r > rec.phases[PhaseStopped] {
		// A restore stopped ExitWait after its report, whose ready line
		// was read only after the stop (a loaded host): the boot ended
		// at the stop, so the report, its ready event, gives the phase.
		rec.phases[PhaseReady], rec.readyBy = reportedAt, reportBy
	}
	if stopped {
		// The bench stopped the guest: it did not exit (a VMM may report
		// the stop as the guest's end).
		delete(rec.phases, PhaseGuestExit)
	} else if !t.succeeded(b.Status) {
		return fail(fmt.Errorf("%w: exit status %d", ErrExitStatus, b.Status), stderr)
	} else if report != nil && b.Status != 0 && (guestStatus == nil || *guestStatus != b.Status) {
		// The VMM's own failure, though its status could be a guest's.
		return fail(fmt.Errorf("%w: exit status %d, which the guest did not choose (its report has guest status %s)", ErrExitStatus, b.Status, fmtGuestStatus(guestStatus)), stderr)
	}
	if o.Ready.IsSet() {
		if _, ok := rec.phases[PhaseReady]; !ok {
			return fail(fmt.Errorf("%w (exit status %d)", ErrNotReady, b.Status), stderr)
		}
	}
	exit := rec.phases[PhaseExit]
	for name, ns := range rec.phases {
		// Output written before the exit may be read just after it: it
		// counts as seen at the exit.
		if (name == PhaseFirstOutput || name == PhaseReady) && ns > exit {
			ns = exit
		}
		b.Phases[name] = float64(ns-start) / 1e6
	}
	if _, ok := b.Phases[PhaseReady]; ok {
		b.ReadyBy = rec.readyBy
	}
	b.Memory, b.MemoryErr = rec.mem, rec.memErr
	b.NetworkMemory, b.NetworkMemoryErr = rec.netMem, rec.netErr
	if b.NetworkMemoryErr != nil {
		b.NetworkMemoryErr = fmt.Errorf("shared network process %d: %w", t.Network.PID, b.NetworkMemoryErr)
	}
	if o.SampleMemory && b.Memory == nil && b.MemoryErr == nil {
		b.MemoryErr = fmt.Errorf("%s: no event to sample memory at", t.Name)
	}
	return b, nil
}

// endProcess kills p when ctx ends; and once ready is closed, gives the
// guest o.ExitWait to end by itself, counted from from when set (MonoNow
// then) and at once when that has passed, then stops it (PhaseStopped):
// SIGTERM, and SIGKILL after o.StopGrace. It returns when done is closed
// (the process has been waited for) or it has killed p.
func endProcess(ctx context.Context, p *os.Process, o BootOptions, ready, done <-chan struct{}, from *atomic.Int64, rec *recorder) {
	var exitWait, grace <-chan time.Time
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			_ = p.Kill()
			return
		case <-ready:
			ready = nil
			wait := o.ExitWait
			if f := from.Load(); f != 0 {
				wait = max(0, wait-time.Duration(MonoNow()-f))
			}
			t := time.NewTimer(wait)
			defer t.Stop()
			exitWait = t.C
		case <-exitWait:
			rec.mark(PhaseStopped)
			_ = p.Signal(syscall.SIGTERM)
			t := time.NewTimer(o.StopGrace)
			defer t.Stop()
			grace = t.C
		case <-grace:
			_ = p.Kill()
			return
		}
	}
}

// recorder collects phase times from the goroutines that observe them.
type recorder struct {
	mu     sync.Mutex
	phases map[string]int64
	mem    *Memory
	memErr error
	// netMem and netErr are the shared network's memory, written by the
	// one sample before RunBoot reads them.
	netMem *NetworkMemory
	netErr error
	// readyBy is the ready event that gave PhaseReady its time.
	readyBy string
}

// markReadyEarliest records PhaseReady at mono (CLOCK_MONOTONIC ns), made
// by the ready event by, or moves it there when it was recorded later; it
// reports whether this was the first time.
func (r *recorder) markReadyEarliest(by string, mono int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, ok := r.phases[PhaseReady]
	if !ok || mono < old {
		r.phases[PhaseReady], r.readyBy = mono, by
	}
	return !ok
}

// markReady records PhaseReady at mono, made by the ready event by, once;
// it reports whether this was the first time.
func (r *recorder) markReady(by string, mono int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.phases[PhaseReady]; ok {
		return false
	}
	r.phases[PhaseReady], r.readyBy = mono, by
	return true
}

// mark records phase now, once; it reports whether this was the first time.
func (r *recorder) mark(phase string) bool { return r.markAt(phase, MonoNow()) }

// markAt records phase at mono (CLOCK_MONOTONIC ns), once.
func (r *recorder) markAt(phase string, mono int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.phases[phase]; ok {
		return false
	}
	r.phases[phase] = mono
	return true
}

// memory keeps the latest successful sample, or the first error.
func (r *recorder) memory(m *Memory, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m != nil {
		r.mem, r.memErr = m, nil
	} else if r.mem == nil && r.memErr == nil {
		r.memErr = err
	}
}

// readConsole reads the VMM's standard output until EOF, marking the first
// byte and the ready pattern.
func readConsole(r io.Reader, out *bytes.Buffer, o BootOptions, rec *recorder, observe func(event, by string)) {
	buf := make([]byte, 4096)
	lines := readyLine{m: consoleline.NewMatcher(o.Ready.Pattern)}
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if rec.mark(PhaseFirstOutput) {
				observe(PhaseFirstOutput, "")
			}
			out.Write(buf[:n])
			if o.Console != nil {
				_, _ = o.Console.Write(buf[:n])
			}
			if lines.feed(buf[:n]) && rec.markReady(ReadyByLine, MonoNow()) {
				observe(PhaseReady, ReadyByLine)
			}
		}
		if err != nil {
			return
		}
	}
}

// sampleAfterRestore samples the memory of a program whose ready report
// came at its guest's first instruction (Target.ReadyReported: a restore),
// when the report alone would find the guest RAM untouched: at its first
// console byte, once the guest has run; at the report when that byte came
// first. A guest silent for wait after the report (a service at its
// prompt) is sampled at the report, once it has run that long; one whose
// process ended meanwhile is not (nothing is left to read).
func sampleAfterRestore(firstOut, done <-chan struct{}, wait time.Duration, sample func(string)) {
	select {
	case <-firstOut:
		sample(PhaseReady) // deduplicated if the byte's own sample came first
		return
	default:
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-firstOut:
		sample(PhaseFirstOutput)
	case <-t.C:
		sample(PhaseReady)
	case <-done:
	}
}

// waitClosed waits for c or done to be closed, at most wait; it reports
// whether c was.
func waitClosed(c, done <-chan struct{}, wait time.Duration) bool {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-c:
		return true
	case <-done:
	case <-t.C:
	}
	return false
}

// pollPort connects to addr until a connection holds or done closes. The
// ready time is when the connect that held succeeded.
func pollPort(addr string, every time.Duration, done <-chan struct{}, rec *recorder, observe func(event, by string)) {
	if at, ok := portready.Wait(addr, every, done); ok && rec.markReady(ReadyByPort, MonoOf(at)) {
		observe(PhaseReady, ReadyByPort)
	}
}

// readReadyTime reads the CLOCK_MONOTONIC time a program writes on its
// Target.ReadyFlag descriptor; false when the program is gone without
// writing it (EOF).
func readReadyTime(r io.Reader) (int64, bool) {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, false
	}
	return int64(binary.LittleEndian.Uint64(b[:])), true
}

// tailBuffer keeps the first and the last max bytes written to it: a
// VMM's error is its last line, but a Go runtime crash says what it was
// at the start (fatal error:, panic:), and then pages of goroutine stacks.
type tailBuffer struct {
	mu      sync.Mutex
	head, b []byte
	skipped bool // bytes between head and b were dropped
	max     int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if room := t.max - len(t.head); room > 0 {
		k := min(room, len(p))
		t.head = append(t.head, p[:k]...)
		p = p[k:]
	}
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
		t.skipped = true
	}
	return n, nil
}

// String is the Go runtime's crash report when it is one (goCrash), else
// what was written, with "..." where bytes were left out.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c := goCrash(t.head); c != "" {
		return c
	}
	if t.skipped {
		return string(bytes.TrimSpace(t.head)) + " ... " + string(bytes.TrimSpace(t.b))
	}
	return string(bytes.TrimSpace(append(t.head[:len(t.head):len(t.head)], t.b...)))
}

// goCrash is the cause of a Go runtime crash that out begins with: its
// lines from the first "panic: ", "fatal error: ", "runtime: " or
// "runtime/cgo: " one to the stacks or registers that follow (a blank
// line, "goroutine N", "runtime stack:", "PC="), joined with "; ", after the lines before them (a
// VMM's last words); "" when out has no such line.
func goCrash(out []byte) string {
	lines := strings.Split(string(out), "\n")
	first := -1
	for i, l := range lines {
		for _, p := range []string{"panic: ", "fatal error: ", "runtime: ", "runtime/cgo: "} {
			if strings.HasPrefix(l, p) {
				first = i
				break
			}
		}
		if first >= 0 {
			break
		}
	}
	if first < 0 {
		return ""
	}
	var keep []string
	for _, l := range lines[:first] {
		if l = strings.TrimSpace(l); l != "" {
			keep = append(keep, l)
		}
	}
	for _, l := range lines[first:] {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "goroutine ") || l == "runtime stack:" || strings.HasPrefix(l, "PC=") {
			break
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "; ")
}

// readyLine matches a ready pattern against each console line, until it
// first matches. Lines are split and matched as the machine does for its
// own ready pattern (consoleline: '\r' left out, a line capped at
// consoleline.Max bytes, matched as it grows except for the parts of the
// pattern whose match ends on $, \z, \b or \B, which wait for the line's
// end: consoleline.Split), so that a pattern matches under the bench
// where it does under smolvmm run.
type readyLine struct {
	m *consoleline.Matcher // nil once matched, or when there is no pattern
}

// feed takes console bytes and reports whether they completed the first
// match.
func (r *readyLine) feed(p []byte) bool {
	for _, c := range p {
		if r.m == nil {
			return false
		}
		if r.m.Add(c) {
			r.m = nil
			return true
		}
	}
	return false
}

// onlyChild is the one child process of pid (the jailed VMM), from /proc/PID/task/*/children.
func onlyChild(pid int) (int, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	if err != nil {
		return 0, err
	}
	var kids []string
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			return 0, err
		}
		kids = append(kids, strings.Fields(string(b))...)
	}
	if len(kids) != 1 {
		return 0, fmt.Errorf("process %d has children %v: want one, the jailed VMM", pid, kids)
	}
	return strconv.Atoi(kids[0])
}
