package netback

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// frameQueue is a bounded FIFO of frames between two goroutines. Producers
// choose between dropping (pushParts, for traffic towards the guest: a NIC
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

// copyParts concatenates parts into a pooled buffer when they fit one.
func copyParts(parts [][]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	var c []byte
	if n <= smallFrame {
		c = (*framePool.Get().(*[]byte))[:0]
	} else {
		c = make([]byte, 0, n)
	}
	for _, p := range parts {
		c = append(c, p...)
	}
	return c
}

// releaseFrame returns a buffer from copyFrame to the pool.
func releaseFrame(f []byte) {
	if cap(f) == smallFrame {
		f = f[:cap(f)]
		framePool.Put(&f)
	}
}

// pushParts queues a copy of the frame made of parts (a packet's headers
// and payload, copied once into one buffer), or drops it when the queue is
// full. It reports false after close.
func (q *frameQueue) pushParts(parts [][]byte) bool {
	select {
	case <-q.closed:
		return false
	default:
	}
	c := copyParts(parts)
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

// popFrame waits for a frame and hands over its buffer, which the caller
// gives back with releaseFrame.
func (q *frameQueue) popFrame() ([]byte, error) {
	select {
	case <-q.closed:
		return nil, ErrClosed
	default:
	}
	select {
	case f := <-q.ch:
		return f, nil
	case <-q.closed:
		return nil, ErrClosed
	}
}

// close wakes every waiter; frames still queued are dropped.
func (q *frameQueue) close() {
	q.closeOnce.Do(func() { close(q.closed) })
}
