package vmm

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/smolvmm/smolvmm/internal/portready"
)

// Run runs the guest until it resets (a triple fault after console output
// is a reset), halts, leaves through the debug-exit port, crashes (a
// *CrashError, or a *TripleFaultError for a triple fault before any
// console output) or is stopped: ctx ends, or Close is
// called (both give ExitStopped). A ctx already done gives ExitStopped
// at once, without calling Config.BeforeRun or running the guest, and
// without waiting for a snapshot being written before the guest runs,
// which it interrupts as any stop does (see Snapshot).
// A Machine runs
// once; Run after Close, or a second Run, returns an *Error wrapping
// ErrConfig. A snapshot being taken before the guest first runs (see
// Snapshot) is written before the guest starts.
//
// Every goroutine Run starts (the Config.Input pump, the ReadyAddr prober,
// which dials the addresses New or Restore resolved, so that no lookup of
// the resolver's runs on) has returned when Run returns, and Run reads no
// more from Config.Input: see Config.Input for the one exception, a
// reader that cannot be interrupted.
//
// When Run returns, Config.Console gets no more Writes. Everything the
// guest printed has reached it, unless the machine was stopped (ctx
// ended, or Close, also once the guest has ended and Run waits for its
// output to be written): the output still queued then is dropped, and
// Run waits for a Write in flight at most a second; only such a Write,
// one that did not return in that second, may still be running after
// Run. The guest's end stays Run's result.
func (m *Machine) Run(ctx context.Context) (Exit, error) {
	m.lifeMu.Lock()
	switch {
	case m.closing:
		m.lifeMu.Unlock()
		return Exit{}, &Error{Op: "run", Err: fmt.Errorf("machine is closed: %w", ErrConfig)}
	case m.ran:
		m.lifeMu.Unlock()
		return Exit{}, &Error{Op: "run", Err: fmt.Errorf("machine has already run: %w", ErrConfig)}
	}
	m.ran = true
	done := make(chan struct{})
	m.runDone = done
	m.lifeMu.Unlock()
	leave := m.waited.enter() // the vCPU thread's callbacks and BeforeRun run here
	defer func() {
		// Run returned: the vCPU runs no more, even if the guest never
		// ran (ctx done first, BeforeRun failed), and a snapshot of it
		// is refused (ErrNotRunning).
		m.vcpu.endRun()
		leave()
		// Close called from a goroutine Run waited for could not wait
		// for Run: Run releases the machine for it.
		m.lifeMu.Lock()
		release := m.closeInRun
		m.runEnded = true // a Close from now on waits, and releases
		m.lifeMu.Unlock()
		if release {
			m.closeOnce.Do(func() { m.closeErr = m.release() })
		}
		close(done)
	}()
	return m.run(ctx)
}

// run is Run once the machine is marked running.
func (m *Machine) run(ctx context.Context) (Exit, error) {
	if ctx.Err() != nil {
		// Stopped before it started: a snapshot being written before
		// the guest runs is interrupted as by any stop, not left
		// blocked behind Run.
		m.snapW.stop()
		return Exit{Reason: ExitStopped}, nil
	}
	if m.cfg.SnapshotOnReady != nil || m.cfg.BeforeRun != nil {
		// What a snapshot reads from files, before BeforeRun's sandbox,
		// which may refuse the opens: Snapshot may be called at any time.
		m.openPagemap() // snapzero.go
		m.kvmIdentity() // kvmid.go
	}
	if err := m.beforeRun(); err != nil { // sandbox.go
		return Exit{}, err
	}
	if m.cfg.Input != nil {
		in, err := startInput(m.cfg.Input, m.uart, &m.waited, m.ioPanicked("console input", "Input"))
		if err != nil {
			return Exit{}, err
		}
		m.lifeMu.Lock()
		m.input = in
		m.lifeMu.Unlock()
	}
	// The context's stop runs on a goroutine of its own: wait for it if it
	// started, so that it is not left behind (or kicking) after Run.
	stopping := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(stopping)
		m.stop()
	})
	if ctx.Err() != nil {
		// Done before the AfterFunc's goroutine ran: stop now, so that
		// the vCPU sees it before its first KVM_RUN (BeforeRun may have
		// taken long).
		m.requestExit(Exit{Reason: ExitStopped})
	}
	var prober *portready.Prober
	// On the way out: nothing more reaches the guest, then every
	// goroutine Run started is joined; also when the run loop panics (a
	// bug of smolvmm's own: the caller's callbacks are recovered where
	// they are called), which stops the machine first, so that nothing
	// waits for a guest still printing.
	finished := false
	defer func() {
		if !finished {
			m.stop()
			m.finishRun(prober, stop, stopping)
		}
	}()
	err := m.vcpu.run(func() { prober = m.probeReadyAddr() })
	if err != nil {
		err = m.memFileCause(err) // memfile.go: a restored guest's file cut under it
	}
	if e := m.faultErr.Load(); e != nil && (err == nil || !errors.Is(err, ErrMemoryFileTruncated)) {
		// A device's fault on guest memory stopped the guest: the
		// cause, unless KVM found the file short itself.
		err = *e
	}

	finished = true
	m.finishRun(prober, stop, stopping)
	m.event(PhaseExit)
	if e := m.panicErr.Load(); e != nil && err == nil {
		// The console's Write, the input's Read or OnEvent (at
		// PhaseExit too) panicked (its goroutine is done with it by
		// now) and stopped the guest.
		err = *e
	}
	if err != nil {
		return Exit{}, err
	}
	if e := m.snapErr.Load(); e != nil {
		return Exit{}, *e
	}
	e := m.exit.Load()
	if e == nil {
		return Exit{Reason: ExitStopped}, nil
	}
	return *e, nil
}

// finishRun is Run's way out once the vCPU is done: nothing more reaches
// the guest, then every goroutine Run started is joined (the prober, the
// context's stop, whose AfterFunc stopped reports whether it is off).
func (m *Machine) finishRun(prober *portready.Prober, stopped func() bool, stopping <-chan struct{}) {
	if m.input != nil {
		m.input.stop()
	}
	if prober != nil {
		prober.Stop()
	}
	m.stopReadyWatch()
	// Ready can no longer be reported: the guest is gone.
	m.readyOnce.Do(func() {})
	if m.console != nil {
		// Everything the guest printed is out before Run returns, or,
		// for a stopped guest, dropped: no console Write starts after.
		// The context's stop stays in place until then: a guest that
		// ended leaves its output to a console that may be stalled,
		// and the context ending must still end the wait.
		m.console.Finish()
	}
	// So is everything logged to Config.Log, under the same rule: a
	// stopped machine waits at most stopDrainTime for a stalled Log.
	m.flushLog(untilStopped)
	if !stopped() {
		<-stopping
	}
}

// ioPanicked returns what the console writer and the input pump call with
// a panic of Config.Console's Write or Config.Input's Read (field): the
// panic is Run's error, and the machine stops.
func (m *Machine) ioPanicked(op, field string) func(error) {
	return func(err error) {
		e := error(&Error{Op: op, Err: err, Field: field})
		m.panicErr.CompareAndSwap(nil, &e)
		m.stop()
	}
}

// stop asks a running guest to stop (ExitStopped unless it already chose
// its end) and makes the vCPU notice: from the context's goroutine or
// Close's.
func (m *Machine) stop() {
	m.requestExit(Exit{Reason: ExitStopped})
	if m.console != nil {
		m.console.Stop() // the vCPU may be waiting for a stalled console
	}
	m.snapW.stop() // or for a snapshot's writer
	if m.log != nil {
		m.log.Stop() // Run and Close wait for Config.Log only so long
	}
	m.vcpu.kick()
}

// RemainingInput returns Config.Input as the machine leaves it, for the
// program to read on after Run: first any bytes the machine read but did
// not give the guest (from a Read that could not be interrupted and
// returned after Run; it waits for that Read), then Config.Input itself.
// It returns Config.Input when Run never read it, and nil without one.
func (m *Machine) RemainingInput() io.Reader {
	m.lifeMu.Lock()
	in := m.input
	m.lifeMu.Unlock()
	if in == nil {
		return m.cfg.Input
	}
	return remaining{in}
}

// Close stops the guest if Run is running and waits for Run to return,
// then releases every file descriptor, mapping, device and goroutine of
// the machine. It may be called from any goroutine, before, during or
// after Run, and more than once (each call returns after the release,
// with the first error). A snapshot being taken before the guest first
// runs is written first (see Snapshot: a w whose Write blocks and cannot
// be interrupted holds Close).
//
// Called from a goroutine that Run waits for (Config.OnEvent,
// Config.OnSnapshot and Config.BeforeRun, Config.Console's Write,
// Config.Input's Read, Config.Log's Write) while Run runs, Close cannot
// wait for Run: it asks the guest to stop and returns nil at once, and
// Run releases the machine before it returns (a later Close returns the
// release's error). From Config.Log's Write when Run is not running,
// Close releases the machine and returns without waiting for that Write.
// From the writer of a snapshot being taken before Run (on the
// goroutine taking it), Close interrupts the write as a stop does (see
// Snapshot) and returns nil at once, and the machine is released once
// the snapshot has ended, before that Snapshot returns.
//
// Three goroutines can outlive it, each held by a call of the caller's
// that does not return: the console writer of a Config.Console whose
// Write never returns (a pipe nobody reads), which Run and Close wait
// for only stopDrainTime once the guest was stopped; the log writer of
// a Config.Log whose Write never returns, likewise; and the input pump
// of a Config.Input that cannot be interrupted (an io.Pipe, see
// Config.Input), whose Read in flight ends only when the reader has data
// or fails (Machine.RemainingInput gives back what it read). A call the
// machine waits for on the vCPU thread or a goroutine Run waits for
// (Config.OnEvent, Config.OnSnapshot, Config.BeforeRun, a device on
// PortBus or MMIOBus) is not bounded: one that never returns holds Run,
// and Close, which waits for Run, for ever.
func (m *Machine) Close() error {
	m.lifeMu.Lock()
	m.closing = true
	running := m.runDone
	if running != nil && !m.runEnded && m.runWaitsForCaller() {
		m.closeInRun = true
		m.lifeMu.Unlock()
		m.stop()
		return nil
	}
	if m.vcpu != nil && m.vcpu.snapshottingOnCaller() {
		// From the writer of a snapshot taken before Run, on the
		// goroutine taking it, which release would wait for: that
		// goroutine releases the machine once it is written.
		m.closeInSnap = true
		m.lifeMu.Unlock()
		m.snapW.stop()
		return nil
	}
	m.lifeMu.Unlock()
	if running != nil {
		select {
		case <-running:
		default:
			m.stop()
			<-running
		}
	}
	m.snapW.stop() // a snapshot before Run: release waits for it
	m.closeOnce.Do(func() {
		m.closeErr = m.release()
	})
	return m.closeErr
}

// runWaitsForCaller reports whether Run waits for the calling goroutine
// before it returns.
func (m *Machine) runWaitsForCaller() bool {
	return m.waited.holdsCaller() || (m.console != nil && m.console.onWriter()) ||
		(m.log != nil && m.log.onWriter()) || (m.vcpu != nil && m.vcpu.snapshottingOnCaller())
}

// release frees what New built, devices before the VM and its memory.
func (m *Machine) release() error {
	var first error
	if m.vcpu != nil {
		if err := m.vcpu.close(); err != nil {
			first = &Error{Op: "close vCPU", Err: err}
		}
	}
	if m.console != nil {
		m.console.Close()
	}
	// Device workers stop and disks are closed (after their last
	// request) before the VM and its memory go away.
	for _, s := range m.virtio {
		if err := s.close(m.vmFD); err != nil && first == nil {
			first = err
		}
	}
	// Run and the device workers are done with guest memory: closed
	// before it is unmapped, so that a later access through Memory
	// fails instead of faulting.
	if m.gmem != nil {
		m.gmem.Close()
	}
	for i := len(m.closers) - 1; i >= 0; i-- {
		if err := m.closers[i](); err != nil && first == nil {
			first = err
		}
	}
	m.pagemapMu.Lock()
	if m.pagemap != nil {
		m.pagemap.Close()
		m.pagemap = nil
	}
	m.pagemapMu.Unlock()
	if m.log != nil {
		// Last: the devices, closed, log no more. A Log that takes no
		// more holds Close stopDrainTime at most.
		m.log.Stop()
		m.log.Close()
	}
	return first
}
