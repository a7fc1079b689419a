package netback

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// frameQueue is a bounded FIFO of frames between two goroutines. Producers
// choose between dropping (push, for traffic towards the guest: a NIC
// without free buffers drops) and waiting (pushWait, for traffic from the
// guest: waiting stalls the device's transmit worker, which is back-pressure
// on the guest's TX ring, never on the vCPU).
type frameQueue struct {
	ch        chan []byte
	closed    chan struct{}
	closeOnce sync.Once
	pushed    atomic.Uint64
	dropped   atomic.Uint64
}

// smallFrame is the capacity of pooled frame buffers: an MTU-sized frame.
const smallFrame = 2048

var framePool = sync.Pool{New: func() any { b := make([]byte, smallFrame); return &b }}

func newFrameQueue(depth int) *frameQueue {
	return &frameQueue{ch: make(chan []byte, depth), closed: make(chan struct{})}
}

// copyFrame copies f into a pooled buffer when it fits one.
func copyFrame(f []byte) []byte {
	if len(f) <= smallFrame {
		b := framePool.Get().(*[]byte)
		return append((*b)[:0], f...)
	}
	return append([]byte(nil), f...)
}

// releaseFrame returns a buffer from copyFrame to the pool.
func releaseFrame(f []byte) {
	if cap(f) == smallFrame {
		f = f[:cap(f)]
		framePool.Put(&f)
	}
}

// push queues a copy of f, or drops it when the queue is full. It reports
// false after close.
func (q *frameQueue) push(f []byte) bool {
	select {
	case <-q.closed:
		return false
	default:
	}
	c := copyFrame(f)
	select {
	case q.ch <- c:
		q.pushed.Add(1)
	default:
		releaseFrame(c)
		q.dropped.Add(1)
	}
	return true
}

// pushWait queues a copy of f, waiting for room. It fails after close.
func (q *frameQueue) pushWait(f []byte) error {
	select {
	case <-q.closed:
		return ErrClosed
	default:
	}
	c := copyFrame(f)
	select {
	case q.ch <- c:
		q.pushed.Add(1)
		return nil
	case <-q.closed:
		releaseFrame(c)
		return ErrClosed
	}
}

// pop waits for a frame and copies it into buf. A frame longer than buf is
// discarded with ErrFrameTooLong.
func (q *frameQueue) pop(buf []byte) (int, error) {
	select {
	case <-q.closed:
		return 0, ErrClosed
	default:
	}
	select {
	case f := <-q.ch:
		defer releaseFrame(f)
		if len(f) > len(buf) {
			return 0, fmt.Errorf("%w: %d-byte frame, %d-byte buffer", ErrFrameTooLong, len(f), len(buf))
		}
		return copy(buf, f), nil
	case <-q.closed:
		return 0, ErrClosed
	}
}

// close wakes every waiter; frames still queued are dropped.
func (q *frameQueue) close() {
	q.closeOnce.Do(func() { close(q.closed) })
}
