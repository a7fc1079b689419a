package virtio

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
	"runtime/debug"
	"unsafe"
)

// Kick asks the worker to serve every queue. It never blocks: the VMM calls
// it from its ioeventfd reader.
func (d *PCIDevice) Kick() {
	d.pending.Or(d.allQueues())
	d.wake()
}

// allQueues is the pending mask with every queue's bit set.
func (d *PCIDevice) allQueues() uint32 { return uint32(1)<<len(d.queues) - 1 }

// Serve serves every queue at once on the calling goroutine, which must not
// be a vCPU thread: the VMM's ioeventfd reader calls it, saving the hand-off
// to the worker goroutine on every guest notification. It serializes with
// the worker, so the two never serve a queue at the same time, and does
// nothing once Close has begun. While the guest has bus mastering off the
// queues are left for the worker to serve once it is on (command.go).
func (d *PCIDevice) Serve() {
	d.serve(d.pending.Swap(0) | d.allQueues())
}

// KickQueue asks the worker to serve queue i (ignored if there is no such
// queue). It never blocks. Devices that produce data on their own (net
// receive) call it from their backend goroutine.
func (d *PCIDevice) KickQueue(i int) {
	if i < 0 || i >= len(d.queues) {
		return
	}
	d.pending.Or(1 << i)
	d.wake()
}

func (d *PCIDevice) wake() {
	select {
	case d.kick <- struct{}{}:
	default: // a wake-up is already pending; it will see our bit
	}
}

// Close stops the worker, waits for the requests in flight (the worker's,
// and a Serve's), and then closes the device model if it is an io.Closer
// (a blk device closes its image). It also waits for a Quiesce to be
// resumed. It is safe to call more than once.
func (d *PCIDevice) Close() error {
	var err error
	d.closer.Do(func() {
		close(d.done)
		<-d.exited
		// A Serve in flight holds workMu; any that takes it later sees
		// done and serves nothing.
		d.workMu.Lock()
		d.workMu.Unlock()
		if c, ok := d.dev.(io.Closer); ok {
			err = c.Close()
		}
	})
	return err
}

func (d *PCIDevice) work() {
	defer close(d.exited)
	for {
		select {
		case <-d.done:
			return
		case <-d.kick:
		}
		d.serve(d.pending.Swap(0))
	}
}

// serve processes the kicked queues while the device is live, healthy,
// started (not held since a restore), allowed to reach guest memory (bus
// master) and not closing, then raises
// one interrupt for all the used rings that want one.
func (d *PCIDevice) serve(kicked uint32) {
	d.workMu.Lock()
	defer d.workMu.Unlock()
	select {
	case <-d.done:
		return // closing: the device model may be gone
	default:
	}
	d.mu.Lock()
	if d.held {
		// Restored, not yet started: kept for Start, under mu so that
		// Start, which clears held under it, sees them.
		d.pending.Or(kicked)
		d.mu.Unlock()
		return
	}
	live := d.status&StatusDriverOK != 0 && !d.broken
	d.mu.Unlock()
	if !live {
		// Kicks before DRIVER_OK are dropped; DRIVER_OK kicks every queue.
		return
	}
	if !d.busMaster() {
		d.holdKicks(kicked) // command.go
		return
	}
	var interrupt bool
	for kicked != 0 {
		i := bits.TrailingZeros32(kicked)
		kicked &^= 1 << i
		q := d.queues[i]
		if !q.Ready() {
			continue
		}
		err := d.process(i, q)
		interrupt = q.NeedsInterrupt() || interrupt
		if err != nil {
			var p *PanicError
			var f *MemoryFaultError
			if !errors.As(err, &p) && !errors.As(err, &f) {
				err = fmt.Errorf("queue %d: %w", i, err) // the others name it
			}
			d.mu.Lock()
			d.markBroken("process", err)
			d.mu.Unlock()
			if fn := d.onFault.Load(); fn != nil && errors.Is(err, ErrMemoryFault) {
				(*fn)(err)
			}
			break
		}
	}
	if interrupt {
		d.mu.Lock()
		d.raise(ISRQueue)
		d.mu.Unlock()
	}
}

// process runs the device's Process and turns a panic into an error (a
// *PanicError): a bug in a device model must cost the guest its device,
// not the VMM, and must not be taken for the guest's corrupt queue. A
// fault on guest memory (SIGBUS on a page cut from a restored guest's
// file) is made a panic too, for the goroutine serving (the worker's, or
// Serve's caller's) only while it serves: a *MemoryFaultError.
func (d *PCIDevice) process(i int, q *Queue) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			var fault interface{ Addr() uintptr }
			if re, ok := r.(error); ok && errors.As(re, &fault) && d.inMemory(fault.Addr()) {
				err = &MemoryFaultError{Addr: fault.Addr(), Queue: i}
				return
			}
			err = &PanicError{Queue: i, Value: r, Stack: debug.Stack()}
		}
	}()
	return d.dev.Process(i, q)
}

// SetOnFault sets fn to be called, on the goroutine serving the device,
// when its Process faulted on guest memory (an error wrapping
// ErrMemoryFault): the device is then broken, and the memory it could not
// reach likely gone for the vCPU too, so the VMM stops the guest. fn runs
// while the device serves, so it must not call Close, which waits for that.
func (d *PCIDevice) SetOnFault(fn func(error)) { d.onFault.Store(&fn) }

// inMemory reports whether the host address addr lies in guest memory.
func (d *PCIDevice) inMemory(addr uintptr) bool {
	b := d.mem.Bytes()
	if len(b) == 0 {
		return false
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return addr >= base && addr-base < uintptr(len(b))
}
