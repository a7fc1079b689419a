package vmm

import (
	"io"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/smolvmm/smolvmm/internal/goid"
)

// stopDrainTime is how long a stopped machine waits for a stalled
// Config.Log or Config.Console (asyncWriter.waitWritten, end).
const stopDrainTime = time.Second

// writeQueue is what an asyncWriter writes from: logWriter's messages,
// consoleWriter's bytes. Its methods are called with the asyncWriter's
// mu held.
type writeQueue interface {
	// pending reports whether anything waits to be written.
	pending() bool
	// take removes and returns what to write next (empty: nothing);
	// prev, what it returned last time, is written and may be reused.
	take(prev []byte) []byte
	// discard drops everything queued.
	discard()
}

// asyncWriter is the machinery logWriter and consoleWriter share: a
// goroutine of the machine's writes to out what a writeQueue holds,
// outside the locks of those who queue, and out's Write, which is the
// program's, may stall or panic without stopping the machine.
type asyncWriter struct {
	out     io.Writer
	call    string // out's Write, as a *PanicError names it
	q       writeQueue
	onPanic func(error) // when set, gets out's Write's panic, on the goroutine

	// gap, when above 0, spaces out writes while output streams: a
	// write does not start within gap of the last one's start, so that
	// bytes queued one at a time go out in chunks, not a system call
	// and a wake-up each. Output after gap of quiet goes out at once, as
	// does everything while someone waits for it (hurry), once enough
	// says so, and once the machine is stopped or the queue closed.
	gap time.Duration
	// enough, with gap, reports whether the queue holds enough to write
	// without waiting out gap. Called with mu held.
	enough func() bool

	mu      sync.Mutex
	wake    *sync.Cond // the goroutine waits for something to write, or close
	drained *sync.Cond // those who wait for out to take what is queued
	busy    bool       // the goroutine is in out's Write
	stopped bool       // the machine is being stopped: wait for out at most stopDrainTime
	closed  bool       // the goroutine ends once the queue is empty
	// finished: nothing more is written to out (out's Write panicked,
	// a wait for it gave up, or the writer's owner said so).
	finished bool
	// abandoned: a wait gave up on a Write in flight; Close does not
	// wait for it again.
	abandoned bool
	done      chan struct{}
	gid       atomic.Uint64 // the goroutine's id (goid)

	last    time.Time   // when the last write to out started (with gap)
	holding bool        // the goroutine waits out gap with bytes queued
	hurry   int         // callers waiting for the queue to be written (hurryWait)
	timer   *time.Timer // ends the goroutine's hold
}

// start starts the goroutine writing what q holds to out; call names
// out's Write in a *PanicError given to onPanic (or nil).
func (w *asyncWriter) start(out io.Writer, call string, onPanic func(error), q writeQueue) {
	w.out, w.call, w.onPanic, w.q = out, call, onPanic, q
	w.wake = sync.NewCond(&w.mu)
	w.drained = sync.NewCond(&w.mu)
	w.done = make(chan struct{})
	go w.loop()
}

// Stop is called when the machine is asked to stop: out, which may no
// longer take anything (a paused pager, a pipe nobody reads), must not
// hold the vCPU, Run or Close past stopDrainTime.
func (w *asyncWriter) Stop() {
	w.mu.Lock()
	w.stopped = true
	w.drained.Broadcast()
	if w.holding {
		w.wake.Signal() // what is held goes now
	}
	w.mu.Unlock()
}

// hurryWait waits on drained once, having the goroutine write what is
// queued without waiting out gap. Caller holds mu.
func (w *asyncWriter) hurryWait() {
	w.hurry++
	if w.holding {
		w.wake.Signal()
	}
	w.drained.Wait()
	w.hurry--
}

// hold reports how long the goroutine should wait before it writes what
// is queued (0: now). Caller holds mu.
func (w *asyncWriter) hold() time.Duration {
	if w.gap <= 0 || w.hurry > 0 || w.closed || w.stopped || w.finished || w.enough() {
		return 0
	}
	return time.Until(w.last.Add(w.gap))
}

// endHold wakes the goroutine when its hold is over.
func (w *asyncWriter) endHold() {
	w.mu.Lock()
	w.wake.Signal()
	w.mu.Unlock()
}

// drainLimit says how long waitWritten waits for out.
type drainLimit int

const (
	// untilStopped: as long as it takes until the machine is stopped,
	// then stopDrainTime; then out is given up.
	untilStopped drainLimit = iota
	// limited: stopDrainTime from the start; then out is given up.
	limited
	// limitedKeep: stopDrainTime from the start; then what is queued
	// stays queued for out, unless the machine was stopped meanwhile.
	limitedKeep
)

// waitWritten waits on drained while more holds, as limit says. When out
// is given up, the writer is finished, what is queued dropped, and a
// Write in flight abandoned. Caller holds mu.
func (w *asyncWriter) waitWritten(more func() bool, limit drainLimit) {
	expired := false
	var timer *time.Timer
	for more() && !expired {
		if (limit != untilStopped || w.stopped) && timer == nil {
			timer = time.AfterFunc(stopDrainTime, func() {
				w.mu.Lock()
				expired = true
				w.drained.Broadcast()
				w.mu.Unlock()
			})
			defer timer.Stop()
		}
		w.drained.Wait()
	}
	if expired && (limit != limitedKeep || w.stopped) {
		w.finished, w.abandoned = true, w.busy
		w.q.discard()
	}
}

// end closes the queue, so that the goroutine ends once it is empty,
// and waits for the goroutine: at most stopDrainTime once the machine is
// stopped, and not at all if it was abandoned in a stalled Write or is
// the caller.
func (w *asyncWriter) end() {
	w.mu.Lock()
	w.closed = true
	stopped, abandoned := w.stopped, w.abandoned
	w.wake.Broadcast()
	w.drained.Broadcast()
	w.mu.Unlock()
	if abandoned || w.onWriter() {
		return
	}
	if !stopped {
		<-w.done
		return
	}
	select {
	case <-w.done:
	case <-time.After(stopDrainTime):
	}
}

// onWriter reports whether the caller is the goroutine (in out's Write).
func (w *asyncWriter) onWriter() bool { return w.gid.Load() == goid.ID() }

func (w *asyncWriter) loop() {
	defer close(w.done)
	w.gid.Store(goid.ID())
	var p []byte
	for {
		w.mu.Lock()
		for !w.q.pending() && !w.closed && !w.finished {
			w.wake.Wait()
		}
		for d := w.hold(); d > 0; d = w.hold() {
			if w.timer == nil {
				w.timer = time.AfterFunc(d, w.endHold)
				defer w.timer.Stop()
			} else {
				w.timer.Reset(d)
			}
			w.holding = true
			w.wake.Wait()
		}
		w.holding = false
		if !w.finished {
			p = w.q.take(p)
		}
		if w.finished || len(p) == 0 {
			w.mu.Unlock()
			return
		}
		w.busy = true
		if w.gap > 0 {
			w.last = time.Now()
		}
		w.mu.Unlock()

		if !w.write(p) {
			return
		}

		w.mu.Lock()
		w.busy = false
		w.drained.Broadcast()
		w.mu.Unlock()
	}
}

// write writes p to out, and reports false if out's Write panicked: the
// panic, which would end the program from a goroutine of the machine's,
// is recovered and given to onPanic, and what is queued and what comes
// later are dropped.
func (w *asyncWriter) write(p []byte) (ok bool) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		err := &PanicError{Call: w.call, Value: r, Stack: debug.Stack()}
		// Told before a flush returns (busy holds it): New, which ends
		// with a flush, returns a panic of its own messages.
		if w.onPanic != nil {
			w.onPanic(err)
		}
		w.mu.Lock()
		w.busy, w.finished = false, true
		w.q.discard()
		w.drained.Broadcast()
		w.mu.Unlock()
		ok = false
	}()
	// A failing Log or Console must not stop the guest: what it was
	// given is lost, as on a disconnected serial line.
	_, _ = w.out.Write(p)
	return true
}
