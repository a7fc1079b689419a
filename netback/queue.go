package netback

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// frameQueue is a bounded FIFO of frames between two goroutines. Producers
// choose between dropping (pushParts, for traffic towards the guest: a NIC
// without free buffers drops) and waiting (pushWait, for traffic from the
// guest: waiting stalls the device's backend writer, which is back-pressure
// on the guest's TX ring, never on the vCPU).
type frameQueue struct {
	ch        chan []byte
	closed    chan struct{}
	closeOnce sync.Once
	pushed    atomic.Uint64
	dropped   atomic.Uint64
	// maxBytes, when above 0, bounds the buffers queued (by capacity,
	// what they hold of memory, a short frame's a whole pooled buffer):
	// pushParts drops a frame beyond it. bytes is what is queued.
	maxBytes int64
	bytes    atomic.Int64
	// fullSince is when pushParts first dropped a frame since its last
	// queued one (CLOCK_MONOTONIC as time.Since measures; 0: not full).
	fullSince atomic.Int64
}

// queueEpoch is the origin of fullSince's times.
var queueEpoch = time.Now()

// fullFor is how long the queue has dropped every frame pushed to it: 0
// when the last one was queued.
func (q *frameQueue) fullFor() time.Duration {
	since := q.fullSince.Load()
	if since == 0 {
		return 0
	}
	return time.Since(queueEpoch) - time.Duration(since)
}

// drop counts a frame pushParts dropped, and starts the time the queue
// has been full.
func (q *frameQueue) drop() {
	q.dropped.Add(1)
	q.fullSince.CompareAndSwap(0, max(int64(time.Since(queueEpoch)), 1))
}

// smallFrame is the capacity of pooled frame buffers: an MTU-sized frame.
// tinyFrame is that of the pooled buffers of frames no longer, such as
// TCP ACKs (66 bytes with timestamps, 86 over IPv6) and ARP: a queue
// bounded in bytes of buffers (maxBytes) holds 16 times as many of them.
const (
	smallFrame = 2048
	tinyFrame  = 128
)

var (
	framePool     = sync.Pool{New: func() any { b := make([]byte, smallFrame); return &b }}
	tinyFramePool = sync.Pool{New: func() any { b := make([]byte, tinyFrame); return &b }}
)

func newFrameQueue(depth int) *frameQueue {
	return &frameQueue{ch: make(chan []byte, depth), closed: make(chan struct{})}
}

// newBoundedFrameQueue is newFrameQueue that also holds at most maxBytes
// of buffers (frameQueue.maxBytes).
func newBoundedFrameQueue(depth int, maxBytes int64) *frameQueue {
	q := newFrameQueue(depth)
	q.maxBytes = maxBytes
	return q
}

// copyParts concatenates parts into a pooled buffer when they fit one.
func copyParts(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	var c []byte
	switch {
	case n <= tinyFrame:
		c = (*tinyFramePool.Get().(*[]byte))[:0]
	case n <= smallFrame:
		c = (*framePool.Get().(*[]byte))[:0]
	default:
		c = make([]byte, 0, n)
	}
	for _, p := range parts {
		c = append(c, p...)
	}
	return c
}

// releaseFrame returns a buffer from copyParts to the pool.
func releaseFrame(f []byte) {
	switch cap(f) {
	case smallFrame:
		f = f[:cap(f)]
		framePool.Put(&f)
	case tinyFrame:
		f = f[:cap(f)]
		tinyFramePool.Put(&f)
	}
}

// isClosed reports whether close was called. The operations below check
// it first, so that after close they fail even when the channel is ready
// too (select would pick either at random).
func (q *frameQueue) isClosed() bool {
	select {
	case <-q.closed:
		return true
	default:
		return false
	}
}

// pushParts queues a copy of the frame made of parts (a packet's headers
// and payload, copied once into one buffer), or drops it when the queue is
// full (in frames, or in bytes beyond maxBytes) or closed.
func (q *frameQueue) pushParts(parts [][]byte) {
	if q.isClosed() {
		return
	}
	c := copyParts(parts...)
	n := int64(cap(c))
	if q.bytes.Add(n) > q.maxBytes && q.maxBytes > 0 {
		q.bytes.Add(-n)
		releaseFrame(c)
		q.drop()
		return
	}
	select {
	case q.ch <- c:
		q.pushed.Add(1)
		q.fullSince.Store(0)
	default:
		q.bytes.Add(-n)
		releaseFrame(c)
		q.drop()
	}
}

// pushWait queues a copy of f, waiting for room. It fails after close.
func (q *frameQueue) pushWait(f []byte) error {
	if q.isClosed() {
		return ErrClosed
	}
	c := copyParts(f)
	q.bytes.Add(int64(cap(c)))
	select {
	case q.ch <- c:
		q.pushed.Add(1)
		return nil
	case <-q.closed:
		q.bytes.Add(-int64(cap(c)))
		releaseFrame(c)
		return ErrClosed
	}
}

// pop waits for a frame and copies it into buf. A frame longer than buf is
// discarded with ErrFrameTooLong.
func (q *frameQueue) pop(buf []byte) (int, error) {
	f, err := q.popFrame()
	if err != nil {
		return 0, err
	}
	defer releaseFrame(f)
	if len(f) > len(buf) {
		return 0, fmt.Errorf("%w: %d-byte frame, %d-byte buffer", ErrFrameTooLong, len(f), len(buf))
	}
	return copy(buf, f), nil
}

// popFrame waits for a frame and hands over its buffer, which the caller
// gives back with releaseFrame.
func (q *frameQueue) popFrame() ([]byte, error) {
	if q.isClosed() {
		return nil, ErrClosed
	}
	select {
	case f := <-q.ch:
		q.bytes.Add(-int64(cap(f)))
		return f, nil
	case <-q.closed:
		return nil, ErrClosed
	}
}

// close wakes every waiter; frames still queued are dropped.
func (q *frameQueue) close() {
	q.closeOnce.Do(func() { close(q.closed) })
}

// tryPopFrame hands over a queued frame without waiting; false when none
// is queued or the queue is closed.
func (q *frameQueue) tryPopFrame() ([]byte, bool) {
	if q.isClosed() {
		return nil, false
	}
	select {
	case f := <-q.ch:
		q.bytes.Add(-int64(cap(f)))
		return f, true
	default:
		return nil, false
	}
}
