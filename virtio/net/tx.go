package net

import (
	"runtime/debug"
	"sync"
	"time"

	"github.com/smolvmm/smolvmm/virtio"
)

// Transmit hand-off between the worker and the goroutine that writes the
// backend.
const (
	// txHandoff is how many transmitted frames may wait for the backend.
	// While they all wait the worker leaves the guest's further chains in
	// the ring: the back-pressure of a congested backend reaches the
	// guest's transmit queue, as it did when the worker wrote to the
	// backend itself, but the worker (and the vCPU's register writes, a
	// reset among them, which wait for it) never waits on the backend.
	txHandoff = 64
	// txHandoffBytes bounds the bytes of the frames waiting likewise: the
	// worker takes a chain only while fewer wait, so that a guest sending
	// frames of MaxFrameSize to a stuck backend makes the VMM hold about
	// this much (plus a frame), not txHandoff such frames (4 MiB).
	txHandoffBytes = 256 << 10
	// txJumbos is how many buffers of frames over poolFrame are kept for
	// the next ones; those beyond (a burst of such frames waiting) are
	// dropped once written.
	txJumbos = 2
	// jumboBuf is a kept jumbo buffer's capacity: any frame fits.
	jumboBuf = HeaderSize + MaxFrameSize
	// txBatch is how many frames the worker gathers before it hands them
	// over: a hand-off wakes the writer, which costs more than a frame's
	// copy.
	txBatch = 16
)

// txPipe carries frames (each behind its virtio header) from the worker
// to writeBackend, in order, in txHandoff buffers that go round.
type txPipe struct {
	mu      sync.Mutex
	free    [][]byte // buffers for the worker (nil: not allocated yet)
	queued  [][]byte // frames for the writer
	waiting int      // bytes of the frames handed over and not yet written
	jumbos  int      // buffers of jumboBuf bytes, free or holding a frame
	starved bool     // the worker found no free buffer or too many bytes waiting: kick the queue on freeing one
	wake    chan struct{}
	// drained, when not nil, is closed (and set nil) by the writer
	// once no frame waits: Drain waits for it.
	drained chan struct{}
	// The worker's alone: its frames not handed over yet, and their
	// bytes.
	batch      [][]byte
	batchBytes int
}

func newTxPipe() *txPipe {
	p := &txPipe{free: make([][]byte, txHandoff), queued: make([][]byte, 0, txHandoff),
		wake: make(chan struct{}, 1), batch: make([][]byte, 0, txBatch)}
	return p
}

// take is a free buffer; false when the writer holds them all, or
// txHandoffBytes wait, which it is then told (starved) so that it kicks
// the queue once it frees one.
func (p *txPipe) take() ([]byte, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.free)
	if n == 0 || p.waiting+p.batchBytes >= txHandoffBytes {
		p.starved = true
		return nil, false
	}
	b := p.free[n-1]
	p.free = p.free[:n-1]
	return b, true
}

// give returns a buffer the worker took and did not fill.
func (p *txPipe) give(b []byte) {
	p.mu.Lock()
	p.free = append(p.free, b[:0])
	p.mu.Unlock()
}

// add gives the writer a frame in a buffer from take, in a batch handed
// over every txBatch frames and by flush.
func (p *txPipe) add(b []byte) {
	p.batch = append(p.batch, b)
	p.batchBytes += len(b)
	if len(p.batch) == txBatch {
		p.flush()
	}
}

// flush hands the batch to the writer.
func (p *txPipe) flush() {
	if len(p.batch) == 0 {
		return
	}
	p.mu.Lock()
	p.queued = append(p.queued, p.batch...)
	p.waiting += p.batchBytes
	p.mu.Unlock()
	clear(p.batch)
	p.batch, p.batchBytes = p.batch[:0], 0
	select {
	case p.wake <- struct{}{}:
	default: // a wake-up is pending: the writer will see these too
	}
}

// jumbo is a buffer for a frame over poolFrame, replacing the worker's
// buffer small: one kept, else a new one.
func (p *txPipe) jumbo(small []byte) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, b := range p.free {
		if cap(b) == jumboBuf {
			// small takes its place: the buffers stay txHandoff.
			p.free[i] = small[:0]
			return b[:0]
		}
	}
	p.jumbos++
	return make([]byte, 0, jumboBuf)
}

// processTx takes every available transmit chain it has a buffer for,
// copies its frame out of the guest's reach, gives the chain back and
// hands the frame to writeBackend. Without a free buffer, or with
// txHandoffBytes waiting, it leaves the rest in the ring: writeBackend
// kicks the queue when it frees one.
func (d *Device) processTx(q *virtio.Queue) error {
	defer d.tx.flush()
	for {
		buf, ok := d.tx.take()
		if !ok {
			return nil
		}
		c, ok, err := q.Pop()
		if err != nil || !ok {
			d.tx.give(buf)
			return err
		}
		buf, good := d.gather(&c, buf)
		if w := d.watch.Load(); good && w != nil {
			d.showWatch(w, buf[HeaderSize:])
		}
		if good {
			d.tx.add(buf)
		} else {
			d.txBad.Add(1)
			d.warnf("tx-bad-chain", "virtio-net: the guest sent a frame without a whole header, or longer than the device moves; not sent, later ones are counted",
				"chain_bytes", c.ReadableLen())
			d.tx.give(buf)
		}
		if err := q.Push(c.Head, 0); err != nil {
			return err
		}
	}
}

// showWatch shows frame to w, SetTransmitWatch's function. A panic of
// w is its setter's bug, not the guest's: the transport would take it
// for the device's and stop serving the guest (a virtqueue violation).
// w is removed instead, not to be called again, the panic logged as
// its, and the frame sent.
func (d *Device) showWatch(w *func([]byte), frame []byte) {
	defer func() {
		if r := recover(); r != nil {
			d.watch.CompareAndSwap(w, nil)
			d.warnf("tx-watch-panic", "virtio-net: the transmit watch panicked; it is removed, and the guest's frames go on",
				"panic", r, "stack", string(debug.Stack()))
		}
	}()
	(*w)(frame)
}

// writeBackend writes the frames processTx hands it to the backend, in
// order, until Close; the backend may take its time (a congested
// network) or never answer (a stopped one) without holding up anything
// but this goroutine.
func (d *Device) writeBackend() {
	defer close(d.txExited)
	p := d.tx
	spare := make([][]byte, 0, txHandoff)
	for {
		select {
		case <-p.wake:
		case <-d.done:
			return
		}
		p.mu.Lock()
		frames := p.queued
		p.queued = spare
		p.mu.Unlock()
		for _, b := range frames {
			if err := d.backend.WriteFrame(b[HeaderSize:]); err != nil {
				d.txErrors.Add(1)
				d.warnf("tx-error", "virtio-net: the network backend failed to send a frame; it is lost, later failures are counted", "err", err)
			} else {
				// Bytes first: whoever sees a frame counted sees
				// its bytes too.
				d.txBytes.Add(uint64(len(b) - HeaderSize))
				d.txFrames.Add(1)
			}
		}
		p.mu.Lock()
		for _, b := range frames {
			p.waiting -= len(b)
			if cap(b) == jumboBuf && p.jumbos > txJumbos {
				b = nil // beyond those kept
				p.jumbos--
			}
			p.free = append(p.free, b[:0])
		}
		starved := p.starved
		p.starved = false
		if p.waiting == 0 && p.drained != nil {
			close(p.drained)
			p.drained = nil
		}
		p.mu.Unlock()
		clear(frames)
		spare = frames[:0]
		if k := d.kick.Load(); starved && k != nil {
			(*k)(TxQueue)
		}
	}
}

// Drain waits until the writer has given the backend every frame the
// worker handed it (virtio.Drainer: a snapshot counts them sent, as the
// guest does), for at most timeout; false when frames still wait then (a
// backend that takes none), and after Close.
func (d *Device) Drain(timeout time.Duration) bool {
	p := d.tx
	p.mu.Lock()
	if p.waiting == 0 {
		p.mu.Unlock()
		return true
	}
	if p.drained == nil {
		p.drained = make(chan struct{})
	}
	drained := p.drained
	p.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-drained:
		return true
	case <-t.C:
	case <-d.done:
	}
	return false
}

// gather copies the chain's readable buffers (header, then frame) into
// buf, grown if need be, out of the guest's reach. It refuses a chain that
// does not hold a header and an Ethernet header, or holds more than a
// header and MaxFrameSize.
func (d *Device) gather(c *virtio.Chain, buf []byte) ([]byte, bool) {
	total := c.ReadableLen()
	if total < HeaderSize+EthernetHeaderSize || total > HeaderSize+MaxFrameSize {
		return buf[:0], false
	}
	segs, err := c.Segments(d.seg[:0], false)
	d.seg = segs[:0]
	if err != nil {
		return buf[:0], false
	}
	switch {
	case uint64(cap(buf)) >= total:
	case total > poolFrame:
		buf = d.tx.jumbo(buf)
	default:
		buf = make([]byte, 0, poolFrame)
	}
	buf = buf[:total]
	n := 0
	for _, s := range segs {
		n += copy(buf[n:], s)
	}
	return buf[:n], true
}
