package vmm

import (
	"io"
	"sync"
)

// consoleBufferSize bounds what the guest may write ahead of a slow
// console; beyond it the vCPU waits, as a real UART would.
const consoleBufferSize = 64 << 10

// consoleWriter moves the guest's console output off the vCPU thread. The
// UART hands over one byte per KVM exit; writing each to a terminal or pipe
// would cost a system call per byte on the vCPU thread (tens of
// milliseconds for a NetBSD boot log). Bytes are collected here and written
// in chunks by a goroutine, in order.
type consoleWriter struct {
	out io.Writer

	mu      sync.Mutex
	buf     []byte
	closed  bool
	wake    *sync.Cond // the writer goroutine waits for data or close
	drained *sync.Cond // Write and Flush wait for room or an empty buffer
	busy    bool       // the goroutine is writing a chunk
	done    chan struct{}
}

func newConsoleWriter(out io.Writer) *consoleWriter {
	c := &consoleWriter{out: out, done: make(chan struct{})}
	c.wake = sync.NewCond(&c.mu)
	c.drained = sync.NewCond(&c.mu)
	go c.loop()
	return c
}

// Write queues p; it waits only while the buffer is full.
func (c *consoleWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.buf)+len(p) > consoleBufferSize && !c.closed {
		c.drained.Wait()
	}
	if c.closed {
		return 0, io.ErrClosedPipe
	}
	c.buf = append(c.buf, p...)
	c.wake.Signal()
	return len(p), nil
}

// Flush waits until everything queued has been written out.
func (c *consoleWriter) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for (len(c.buf) > 0 || c.busy) && !c.closed {
		c.drained.Wait()
	}
}

// Close flushes and stops the goroutine.
func (c *consoleWriter) Close() {
	c.Flush()
	c.mu.Lock()
	c.closed = true
	c.wake.Broadcast()
	c.drained.Broadcast()
	c.mu.Unlock()
	<-c.done
}

func (c *consoleWriter) loop() {
	defer close(c.done)
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
