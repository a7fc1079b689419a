package net

import (
	"github.com/smolvmm/smolvmm/virtio"
)

// processTx sends every available transmit chain. It runs on the worker
// goroutine, so a backend that is slow to take a frame delays only this
// queue's completions, never the vCPU.
func (d *Device) processTx(q *virtio.Queue) error {
	for {
		c, ok, err := q.Pop()
		if err != nil || !ok {
			return err
		}
		n, good := d.gather(&c)
		if w := d.watch.Load(); good && w != nil {
			(*w)(d.txbuf[HeaderSize:n])
		}
		if !good {
			d.txBad.Add(1)
		} else if err := d.backend.WriteFrame(d.txbuf[HeaderSize:n]); err != nil {
			d.txErrors.Add(1)
		} else {
			d.txFrames.Add(1)
			d.txBytes.Add(uint64(n - HeaderSize))
		}
		if err := q.Push(c.Head, 0); err != nil {
			return err
		}
	}
}

// gather copies the chain's readable buffers (header, then frame) into
// txbuf, out of the guest's reach, and returns their length. It refuses a
// chain that does not hold a header and an Ethernet header, or holds more
// than txbuf.
func (d *Device) gather(c *virtio.Chain) (int, bool) {
	total := c.ReadableLen()
	if total < HeaderSize+EthernetHeaderSize || total > uint64(len(d.txbuf)) {
		return 0, false
	}
	segs, err := c.Segments(d.seg[:0], false)
	d.seg = segs[:0]
	if err != nil {
		return 0, false
	}
	n := 0
	for _, s := range segs {
		n += copy(d.txbuf[n:], s)
	}
	return n, true
}
