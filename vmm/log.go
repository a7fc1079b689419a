package vmm

import (
	"fmt"
	"io"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/smolvmm/smolvmm/internal/goid"
)

// logQueueLimit bounds the bytes of messages waiting for Config.Log;
// beyond it messages are dropped and counted. A message longer than it
// is cut to it (cutMessage). It holds every once-per-address note of
// unhandled accesses a guest can cause (bus.MaxTracked, some 90 bytes
// each) with room to spare, so that a guest sweeping the address space
// costs no notes to a Log merely slower than the vCPU.
const logQueueLimit = 1 << 20

// logWriter carries the machine's messages and its devices' warnings to
// Config.Log on a goroutine of its own, in the order they were logged.
// They are logged on the vCPU thread and on a device's serving goroutine
// holding the device's locks, which the vCPU's next access to the device
// waits for: a Log whose Write blocks (a pipe nobody reads) or calls
// Close or Snapshot must hold neither, or the machine could not be
// stopped. Nothing that logs waits for Log: a full queue drops the
// message, and the count is said once Log takes messages again.
type logWriter struct {
	out io.Writer

	mu      sync.Mutex
	queue   [][]byte // whole messages, in order
	queued  int      // their bytes
	dropped int      // messages dropped since the last one queued
	busy    bool     // the goroutine is in out's Write
	stopped bool     // the machine is being stopped: wait for Log at most stopDrainTime
	closed  bool     // Close was called: the goroutine ends once the queue is empty
	// finished: out's Write panicked, or stalled past a bounded wait;
	// nothing more is written to out.
	finished bool
	wake     *sync.Cond // the goroutine waits for messages or close
	drained  *sync.Cond // flush waits for an empty queue
	done     chan struct{}
	gid      atomic.Uint64 // the goroutine's id (goid)

	// onPanic, when set, gets out's Write's panic (a *PanicError), on
	// the goroutine, which writes no more.
	onPanic func(error)
}

// newLogWriter starts writing to out; onPanic (or nil) is told of a panic
// of out's Write.
func newLogWriter(out io.Writer, onPanic func(error)) *logWriter {
	l := &logWriter{out: out, done: make(chan struct{}), onPanic: onPanic}
	l.wake = sync.NewCond(&l.mu)
	l.drained = sync.NewCond(&l.mu)
	go l.loop()
	return l
}

// put queues a copy of message p; it never waits.
func (l *logWriter) put(p []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed || l.finished:
		return
	case len(p) > logQueueLimit:
		// Alone it would never fit: dropped, it could only be said
		// that Log was too slow, which it was not.
		p = cutMessage(p)
	default:
		p = append([]byte(nil), p...)
	}
	// The goroutine is woken for a drop too: with nothing else queued,
	// it writes the note of it, which flush waits for.
	l.wake.Signal()
	if l.queued+len(p) > logQueueLimit {
		l.dropped++
		return
	}
	l.noteDropped()
	l.queue = append(l.queue, p)
	l.queued += len(p)
}

// cutMessage returns the start of message p, longer than logQueueLimit,
// ending with a note of how many bytes were cut: logQueueLimit bytes in
// all, at most.
func cutMessage(p []byte) []byte {
	note := func(n int) string { return fmt.Sprintf(" [smolvmm: %d bytes of this message cut]\n", n) }
	// The note of len(p) bytes is at least as long as the one written.
	keep := logQueueLimit - len(note(len(p)))
	return append(p[:keep:keep], note(len(p)-keep)...)
}

// noteDropped queues the count of the messages dropped, where they would
// have been, and clears it. Caller holds mu.
func (l *logWriter) noteDropped() {
	if l.dropped == 0 {
		return
	}
	note := fmt.Sprintf("smolvmm: %d log messages dropped: Config.Log did not take them as fast as they came\n", l.dropped)
	l.queue = append(l.queue, []byte(note))
	l.queued += len(note)
	l.dropped = 0
}

// Stop is called when the machine is asked to stop: a Log that no longer
// takes messages must not hold Run or Close past stopDrainTime.
func (l *logWriter) Stop() {
	l.mu.Lock()
	l.stopped = true
	l.drained.Broadcast()
	l.mu.Unlock()
}

// flush waits until every message queued has been written, for as long
// as it takes unless the machine is stopped, then at most stopDrainTime;
// a Write still in flight then is abandoned: nothing more is written to
// out. From out's Write itself it does not wait.
func (l *logWriter) flush() {
	if l.onWriter() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	expired := false
	var timer *time.Timer
	for (len(l.queue) > 0 || l.busy || l.dropped > 0) && !l.finished && !expired {
		if l.stopped && timer == nil {
			timer = time.AfterFunc(stopDrainTime, func() {
				l.mu.Lock()
				expired = true
				l.drained.Broadcast()
				l.mu.Unlock()
			})
			defer timer.Stop()
		}
		l.drained.Wait()
	}
	if expired {
		l.finished = true
		l.queue, l.queued = nil, 0
	}
}

// Close ends the goroutine once it has written what is queued: Close
// flushes (see flush), then stops the goroutine and waits for it, unless
// it was abandoned in a stalled Write or is the caller.
func (l *logWriter) Close() {
	l.flush()
	l.mu.Lock()
	l.closed = true
	l.wake.Broadcast()
	finished := l.finished
	l.mu.Unlock()
	if finished || l.onWriter() {
		return
	}
	<-l.done
}

// onWriter reports whether the caller is the goroutine (in out's Write).
func (l *logWriter) onWriter() bool { return l.gid.Load() == goid.ID() }

func (l *logWriter) loop() {
	defer close(l.done)
	l.gid.Store(goid.ID())
	for {
		l.mu.Lock()
		for len(l.queue) == 0 && l.dropped == 0 && !l.closed && !l.finished {
			l.wake.Wait()
		}
		l.noteDropped() // dropped while the queue was full, and nothing came since
		if len(l.queue) == 0 || l.finished {
			l.mu.Unlock()
			return
		}
		msg := l.queue[0]
		l.queue[0] = nil
		l.queue = l.queue[1:]
		l.queued -= len(msg)
		l.busy = true
		l.mu.Unlock()

		if !l.write(msg) {
			return
		}

		l.mu.Lock()
		l.busy = false
		l.drained.Broadcast()
		l.mu.Unlock()
	}
}

// write writes msg to out, and reports false if out's Write panicked:
// the panic, which would end the program from a goroutine of the
// machine's, is recovered and given to onPanic, and nothing more is
// written.
func (l *logWriter) write(msg []byte) (ok bool) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		err := &PanicError{Call: "Config.Log's Write", Value: r, Stack: debug.Stack()}
		// Told before flush returns (busy holds it): New, which ends
		// with a flush, returns a panic of its own messages.
		if l.onPanic != nil {
			l.onPanic(err)
		}
		l.mu.Lock()
		l.busy, l.finished = false, true
		l.queue, l.queued = nil, 0
		l.drained.Broadcast()
		l.mu.Unlock()
		ok = false
	}()
	// A failing log must not stop the guest: the message is lost.
	_, _ = l.out.Write(msg)
	return true
}
