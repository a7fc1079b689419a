package vmm

import (
	"fmt"
	"io"
)

// logQueueLimit bounds the bytes of messages waiting for Config.Log;
// beyond it messages are dropped and counted. A message longer than it
// is cut to it (cutMessage). It holds every once-per-address note of
// unhandled accesses a guest can cause (bus.MaxTracked, some 90 bytes
// each) with room to spare, so that a guest sweeping the address space
// costs no notes to a Log merely slower than the vCPU.
const logQueueLimit = 1 << 20

// logWriter carries the machine's messages and its devices' warnings to
// Config.Log on a goroutine of its own (asyncWriter), in the order they
// were logged. They are logged on the vCPU thread and on a device's
// serving goroutine holding the device's locks, which the vCPU's next
// access to the device waits for: a Log whose Write blocks (a pipe nobody
// reads) or calls Close or Snapshot must hold neither, or the machine
// could not be stopped. Nothing that logs waits for Log: a full queue
// drops the message, and the count is said once Log takes messages
// again. A panic of Log's Write is told to onPanic before a flush
// returns.
type logWriter struct {
	asyncWriter
	queue   [][]byte // whole messages, in order
	queued  int      // their bytes
	dropped int      // messages dropped since the last one queued
}

// newLogWriter starts writing to out; onPanic (or nil) is told of a panic
// of out's Write.
func newLogWriter(out io.Writer, onPanic func(error)) *logWriter {
	l := &logWriter{}
	l.start(out, "Config.Log's Write", onPanic, l)
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

// flush waits until every message queued has been written, for as long
// as limit says: untilStopped, as long as it takes unless the machine is
// stopped, then at most stopDrainTime, after which a Write still in
// flight is abandoned and nothing more is written to out; limitedKeep,
// for New and Restore, whose caller has no Machine to Close yet (a Write
// that blocks must not hold them), at most stopDrainTime, leaving what
// is still queued for out. From out's Write itself it does not wait.
func (l *logWriter) flush(limit drainLimit) {
	if l.onWriter() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.waitWritten(func() bool { return (l.pending() || l.busy) && !l.finished }, limit)
}

// Close ends the goroutine once it has written what is queued: Close
// flushes (see flush, untilStopped), then stops the goroutine and waits
// for it, unless it was abandoned in a stalled Write or is the caller.
func (l *logWriter) Close() {
	l.flush(untilStopped)
	l.end()
}

// pending, take and discard make the queue a writeQueue.

func (l *logWriter) pending() bool { return len(l.queue) > 0 || l.dropped > 0 }

func (l *logWriter) take([]byte) []byte {
	l.noteDropped() // dropped while the queue was full, and nothing came since
	if len(l.queue) == 0 {
		return nil
	}
	msg := l.queue[0]
	l.queue[0] = nil
	l.queue = l.queue[1:]
	l.queued -= len(msg)
	return msg
}

func (l *logWriter) discard() { l.queue, l.queued = nil, 0 }
