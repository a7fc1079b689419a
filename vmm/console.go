package vmm

import (
	"io"
	"time"
)

// consoleBufferSize bounds what the guest may write ahead of a slow
// console; beyond it the vCPU waits, as a real UART would.
const consoleBufferSize = 64 << 10

// consoleGap is the least time between two writes to the console while
// the guest's output streams (asyncWriter.gap): the UART hands over a
// byte per KVM exit, and the goroutine, woken for each, would otherwise
// write them one or two at a time. A byte after a quiet moment (the
// first of the boot, an echo) goes out at once.
const consoleGap = time.Millisecond

// consoleChunk is what the console writes without waiting out
// consoleGap: enough for a write to be worth its system call, well short
// of filling the buffer, which would hold the vCPU.
const consoleChunk = 4 << 10

// consoleBufferFor is the size new consoles take: consoleBufferSize, but
// for tests that fill it.
var consoleBufferFor = consoleBufferSize

// consoleWriter moves the guest's console output off the vCPU thread. The
// UART hands over one byte per KVM exit; writing each to a terminal or pipe
// would cost a system call per byte on the vCPU thread (tens of
// milliseconds for a NetBSD boot log). Bytes are collected here and written
// in chunks by a goroutine (asyncWriter), in order; while output streams,
// one chunk per consoleGap, or sooner once consoleChunk bytes are queued
// (see asyncWriter.gap).
type consoleWriter struct {
	asyncWriter
	limit int // the buffer's size
	buf   []byte

	// full, when set (by tests), is called with mu held each time Write
	// is about to wait for room, so that a test knows the guest is held.
	full func()
}

// newConsoleWriter starts writing to out; onPanic (or nil) is told of a
// panic of out's Write.
func newConsoleWriter(out io.Writer, onPanic func(error)) *consoleWriter {
	c := &consoleWriter{limit: consoleBufferFor}
	c.gap, c.enough = consoleGap, c.enoughQueued
	c.start(out, "Config.Console's Write", onPanic, c)
	return c
}

// Write queues p; it waits only while the buffer is full, and after Stop
// it drops what does not fit instead.
func (c *consoleWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.buf)+len(p) > c.limit && !c.closed && !c.stopped && !c.finished {
		if c.full != nil {
			c.full()
		}
		c.hurryWait()
	}
	if c.closed {
		return 0, io.ErrClosedPipe
	}
	if len(c.buf)+len(p) <= c.limit && !c.finished {
		c.buf = append(c.buf, p...)
		// A goroutine holding the buffer wakes when its hold ends:
		// woken for each byte it would only wait again.
		if !c.holding || c.enoughQueued() {
			c.wake.Signal()
		}
	}
	return len(p), nil
}

// Flush waits until everything queued has been written out (after Stop,
// not at all: the console may be what is stuck).
func (c *consoleWriter) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for (len(c.buf) > 0 || c.busy) && !c.closed && !c.stopped {
		c.hurryWait()
	}
}

// Finish is called when the guest can print no more (Run's end): it
// flushes, unless the VM was stopped; then it drops what is queued and
// waits for the chunk in flight, at most stopDrainTime. From then on
// nothing more is written to out: a Write to out that started before and
// outlasted the wait is the only one that can still be running.
func (c *consoleWriter) Finish() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for (len(c.buf) > 0 || c.busy) && !c.closed && !c.stopped {
		c.hurryWait()
	}
	c.finished = true
	c.buf = c.buf[:0]
	c.drained.Broadcast() // a Write waiting for room drops its bytes
	c.waitWritten(func() bool { return c.busy }, limited)
}

// Close flushes and stops the goroutine. After Stop it gives a stalled
// console stopDrainTime to take the rest (unless Finish already did), then
// leaves it.
func (c *consoleWriter) Close() {
	c.Flush()
	c.end()
}

// enoughQueued reports whether the buffer holds a chunk worth writing at
// once (asyncWriter.enough). Caller holds mu.
func (c *consoleWriter) enoughQueued() bool { return len(c.buf) >= min(consoleChunk, c.limit) }

// pending, take and discard make the buffer a writeQueue.

func (c *consoleWriter) pending() bool { return len(c.buf) > 0 }

// take hands the buffer over whole and takes the chunk last written,
// emptied, in its place.
func (c *consoleWriter) take(prev []byte) []byte {
	chunk := c.buf
	c.buf = prev[:0]
	return chunk
}

func (c *consoleWriter) discard() { c.buf = c.buf[:0] }
