package net

import (
	"errors"
	"io"
	stdnet "net"
	"time"

	"github.com/smolvmm/smolvmm/virtio"
)

// readRetry is the pause after a failed backend read, so a backend that
// keeps failing (a deleted tap) costs no CPU.
const readRetry = 10 * time.Millisecond

// poolFrame is the capacity of recycled receive buffers: an MTU-sized frame.
const poolFrame = 2048

// takeFrame copies src into a recycled buffer when one fits.
func (d *Device) takeFrame(src []byte) []byte {
	if len(src) <= poolFrame {
		select {
		case b := <-d.free:
			return append(b[:0], src...)
		default:
			return append(make([]byte, 0, poolFrame), src...)
		}
	}
	return append([]byte(nil), src...)
}

// releaseFrame recycles a buffer from takeFrame.
func (d *Device) releaseFrame(f []byte) {
	if cap(f) == poolFrame {
		select {
		case d.free <- f:
		default:
		}
	}
}

// readBackend moves frames from the backend to the worker until Close.
// Waiting on the hand-off queue, rather than the guest, is what keeps a
// full receive ring from stalling anything but this goroutine.
func (d *Device) readBackend() {
	defer close(d.exited)
	buf := make([]byte, MaxFrameSize)
	for {
		n, err := d.backend.ReadFrame(buf)
		if err != nil {
			if errors.Is(err, stdnet.ErrClosed) {
				return
			}
			if errors.Is(err, io.ErrShortBuffer) {
				d.rxTooLong.Add(1)
				d.warnf("rx-too-long-backend", "virtio-net: dropped a received frame longer than the device moves; later ones are counted",
					"max_bytes", MaxFrameSize, "err", err)
				continue
			}
			d.readErrors.Add(1)
			d.warnf("read-error", "virtio-net: the network backend failed to receive; retrying, later failures are counted", "err", err)
			select {
			case <-d.done:
				return
			case <-time.After(readRetry):
			}
			continue
		}
		select {
		case d.frames <- d.takeFrame(buf[:n]):
		case <-d.done:
			return
		}
		if k := d.kick.Load(); k != nil {
			(*k)(RxQueue)
		}
	}
}

// processRx copies waiting frames into the guest's receive chains until
// either runs out. A frame without a chain stays pending until the guest
// posts buffers and notifies queue 0.
func (d *Device) processRx(q *virtio.Queue) error {
	for {
		if d.pending == nil {
			select {
			case f := <-d.frames:
				d.pending = f
			default:
				return nil
			}
		}
		c := &d.held
		if !d.holding {
			ch, ok, err := q.Pop()
			if err != nil {
				return err
			}
			if !ok {
				return nil
			}
			d.held = ch
		}
		d.holding = false
		room := c.WritableLen()
		if room < HeaderSize+EthernetHeaderSize {
			// Not even a header fits: a broken buffer, given back unused.
			d.rxBad.Add(1)
			d.warnf("rx-bad-chain", "virtio-net: the guest posted a receive buffer too small for the headers; returned unused, later ones are counted",
				"buffer_bytes", room)
			if err := q.Push(c.Head, 0); err != nil {
				return err
			}
			continue
		}
		f := d.pending
		if uint64(HeaderSize+len(f)) > room {
			// Drop the frame, keep the chain for the next one.
			d.rxTooLong.Add(1)
			d.warnf("rx-too-long", "virtio-net: dropped a received frame longer than the guest's receive buffer (a network MTU above the guest's); later ones are counted",
				"frame_bytes", len(f), "buffer_bytes", room-HeaderSize)
			d.pending = nil
			d.releaseFrame(f)
			d.holding = true
			continue
		}
		n, err := d.fill(c, f)
		if err != nil {
			d.rxBad.Add(1)
			d.warnf("rx-bad-chain", "virtio-net: a receive buffer of the guest could not be reached; returned unused, later ones are counted", "err", err)
			if err := q.Push(c.Head, 0); err != nil {
				return err
			}
			continue
		}
		if err := q.Push(c.Head, uint32(n)); err != nil {
			return err
		}
		d.pending = nil
		d.releaseFrame(f)
		d.rxBytes.Add(uint64(len(f))) // before the frame, as in tx.go
		d.rxFrames.Add(1)
	}
}

// fill writes a zero header and frame f across the chain's writable
// buffers (which the caller checked are long enough) and returns the bytes
// written.
func (d *Device) fill(c *virtio.Chain, f []byte) (int, error) {
	segs, err := c.Segments(d.seg[:0], true)
	d.seg = segs[:0]
	if err != nil {
		return 0, err
	}
	var hdr [HeaderSize]byte
	n := 0
	for _, src := range [][]byte{hdr[:], f} {
		for len(src) > 0 && len(segs) > 0 {
			k := copy(segs[0], src)
			src, segs[0], n = src[k:], segs[0][k:], n+k
			if len(segs[0]) == 0 {
				segs = segs[1:]
			}
		}
	}
	return n, nil
}
