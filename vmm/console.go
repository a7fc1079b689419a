package vmm

import (
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// consoleBufferSize bounds what the guest may write ahead of a slow
// console; beyond it the vCPU waits, as a real UART would.
const consoleBufferSize = 64 << 10

// consoleBufferFor is the size new consoles take: consoleBufferSize, but
// for tests that fill it.
var consoleBufferFor = consoleBufferSize

// stopDrainTime is how long Close waits for a stalled console after Stop.
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
	done    chan struct{}
	gid     atomic.Uint64 // the writer goroutine's id (goid)

	// full, when set (by tests), is called with mu held each time Write
	// is about to wait for room, so that a test knows the guest is held.
	full func()
}

func newConsoleWriter(out io.Writer) *consoleWriter {
	c := &consoleWriter{out: out, limit: consoleBufferFor, done: make(chan struct{})}
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
	for len(c.buf)+len(p) > c.limit && !c.closed && !c.stopped {
		if c.full != nil {
			c.full()
		}
		c.drained.Wait()
	}
	if c.closed {
		return 0, io.ErrClosedPipe
	}
	if len(c.buf)+len(p) <= c.limit {
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

// Close flushes and stops the goroutine. After Stop it gives a stalled
// console stopDrainTime to take the rest, then leaves it.
func (c *consoleWriter) Close() {
	c.Flush()
	c.mu.Lock()
	c.closed = true
	stopped := c.stopped
	c.wake.Broadcast()
	c.drained.Broadcast()
	c.mu.Unlock()
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
func (c *consoleWriter) onWriter() bool { return c.gid.Load() == goid() }

func (c *consoleWriter) loop() {
	defer close(c.done)
	c.gid.Store(goid())
	var chunk []byte
	for {
		c.mu.Lock()
		for len(c.buf) == 0 && !c.closed {
			c.wake.Wait()
		}
		if len(c.buf) == 0 && c.closed {
			c.mu.Unlock()
			return
		}
		chunk, c.buf = c.buf, chunk[:0]
		c.busy = true
		c.mu.Unlock()

		// A failing console must not stop the guest: the output is lost,
		// as on a disconnected serial line.
		_, _ = c.out.Write(chunk)

		c.mu.Lock()
		c.busy = false
		c.drained.Broadcast()
		c.mu.Unlock()
	}
}
