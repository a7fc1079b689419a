package vmm

import (
	"io"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/smolvmm/smolvmm/internal/goid"
)

// consoleBufferSize bounds what the guest may write ahead of a slow
// console; beyond it the vCPU waits, as a real UART would.
const consoleBufferSize = 64 << 10

// consoleBufferFor is the size new consoles take: consoleBufferSize, but
// for tests that fill it.
var consoleBufferFor = consoleBufferSize

// stopDrainTime is how long Finish and Close wait for a stalled console
// after Stop.
const stopDrainTime = time.Second

// consoleWriter moves the guest's console output off the vCPU thread. The
// UART hands over one byte per KVM exit; writing each to a terminal or pipe
// would cost a system call per byte on the vCPU thread (tens of
// milliseconds for a NetBSD boot log). Bytes are collected here and written
// in chunks by a goroutine, in order.
type consoleWriter struct {
	out   io.Writer
	limit int // the buffer's size

	mu      sync.Mutex
	buf     []byte
	closed  bool
	stopped bool       // the VM is being stopped: never wait for the console
	wake    *sync.Cond // the writer goroutine waits for data or close
	drained *sync.Cond // Write and Flush wait for room or an empty buffer
	busy    bool       // the goroutine is writing a chunk
	// finished: Finish was called, or out's Write panicked; nothing
	// more is written to out.
	finished bool
	// abandoned: Finish gave up on a chunk in flight after stopDrainTime;
	// Close does not wait for it again.
	abandoned bool
	done      chan struct{}
	gid       atomic.Uint64 // the writer goroutine's id (goid)

	// onPanic, when set, gets out's Write's panic (a *PanicError), on
	// the writer goroutine, which writes no more.
	onPanic func(error)

	// full, when set (by tests), is called with mu held each time Write
	// is about to wait for room, so that a test knows the guest is held.
	full func()
}

// newConsoleWriter starts writing to out; onPanic (or nil) is told of a
// panic of out's Write.
func newConsoleWriter(out io.Writer, onPanic func(error)) *consoleWriter {
	c := &consoleWriter{out: out, limit: consoleBufferFor, done: make(chan struct{}), onPanic: onPanic}
	c.wake = sync.NewCond(&c.mu)
	c.drained = sync.NewCond(&c.mu)
	go c.loop()
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
		c.drained.Wait()
	}
	if c.closed {
		return 0, io.ErrClosedPipe
	}
	if len(c.buf)+len(p) <= c.limit && !c.finished {
		c.buf = append(c.buf, p...)
		c.wake.Signal()
	}
	return len(p), nil
}

// Flush waits until everything queued has been written out (after Stop,
// not at all: the console may be what is stuck).
func (c *consoleWriter) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for (len(c.buf) > 0 || c.busy) && !c.closed && !c.stopped {
		c.drained.Wait()
	}
}

// Stop is called when the VM is asked to stop: a console that no longer
// reads (a paused pager, a full pipe) must not hold the vCPU or Close.
func (c *consoleWriter) Stop() {
	c.mu.Lock()
	c.stopped = true
	c.drained.Broadcast()
	c.mu.Unlock()
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
		c.drained.Wait()
	}
	c.finished = true
	c.buf = c.buf[:0]
	c.drained.Broadcast() // a Write waiting for room drops its bytes
	if !c.busy {
		return
	}
	expired := false
	timer := time.AfterFunc(stopDrainTime, func() {
		c.mu.Lock()
		expired = true
		c.drained.Broadcast()
		c.mu.Unlock()
	})
	defer timer.Stop()
	for c.busy && !expired {
		c.drained.Wait()
	}
	c.abandoned = c.busy
}

// Close flushes and stops the goroutine. After Stop it gives a stalled
// console stopDrainTime to take the rest (unless Finish already did), then
// leaves it.
func (c *consoleWriter) Close() {
	c.Flush()
	c.mu.Lock()
	c.closed = true
	stopped, abandoned := c.stopped, c.abandoned
	c.wake.Broadcast()
	c.drained.Broadcast()
	c.mu.Unlock()
	if abandoned {
		return
	}
	if !stopped {
		<-c.done
		return
	}
	select {
	case <-c.done:
	case <-time.After(stopDrainTime):
	}
}

// onWriter reports whether the caller is the writer goroutine (in out's
// Write).
func (c *consoleWriter) onWriter() bool { return c.gid.Load() == goid.ID() }

func (c *consoleWriter) loop() {
	defer close(c.done)
	c.gid.Store(goid.ID())
	var chunk []byte
	for {
		c.mu.Lock()
		for (len(c.buf) == 0 || c.finished) && !c.closed {
			c.wake.Wait()
		}
		if len(c.buf) == 0 || c.finished {
			c.mu.Unlock()
			return
		}
		chunk, c.buf = c.buf, chunk[:0]
		c.busy = true
		c.mu.Unlock()

		if !c.write(chunk) {
			return
		}

		c.mu.Lock()
		c.busy = false
		c.drained.Broadcast()
		c.mu.Unlock()
	}
}

// write writes chunk to out, and reports false if out's Write panicked:
// the panic, which would end the program from a goroutine of the
// machine's, is recovered and given to onPanic; what is queued and what
// comes later are dropped, as after Finish.
func (c *consoleWriter) write(chunk []byte) (ok bool) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		err := &PanicError{Call: "Config.Console's Write", Value: r, Stack: debug.Stack()}
		c.mu.Lock()
		c.busy, c.finished = false, true
		c.buf = c.buf[:0]
		c.drained.Broadcast()
		c.mu.Unlock()
		if c.onPanic != nil {
			c.onPanic(err)
		}
		ok = false
	}()
	// A failing console must not stop the guest: the output is lost,
	// as on a disconnected serial line.
	_, _ = c.out.Write(chunk)
	return true
}
