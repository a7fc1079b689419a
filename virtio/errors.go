package virtio

import (
	"errors"
	"fmt"
)

// ErrRing is wrapped by every error that means the driver corrupted a
// queue (see the package documentation's failure policy): the transport
// marks the device broken when Process returns one.
var ErrRing = errors.New("virtqueue violation")

// ErrNotReady is returned by Pop and Push on a queue the driver has not set
// up (PFN 0).
var ErrNotReady = errors.New("virtqueue not set up")

// ErrMemoryFault is wrapped by the error of a device whose Process faulted
// on guest memory: a page that can be neither read nor written, as a
// restored guest's are once the file they map is truncated. The device is
// marked broken, and the transport's fault handler (SetOnFault) told.
var ErrMemoryFault = errors.New("guest memory fault")

// PanicError is a panic of a device model's Process, recovered: a bug in
// the device model, not a driver's corrupt queue (it wraps no ErrRing).
// The device is marked broken, as for a corrupt queue, and the log's
// warning carries the stack.
type PanicError struct {
	Queue int    // the queue Process was serving
	Value any    // what Process panicked with
	Stack []byte // the serving goroutine's stack at the panic
}

// Error names the queue and the panic's value; Stack says where it came
// from.
func (e *PanicError) Error() string {
	return fmt.Sprintf("queue %d: device model panicked: %v", e.Queue, e.Value)
}

// Unwrap returns the panic's value when it is an error (a runtime error,
// say), for errors.Is and errors.As.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// MemoryFaultError is a device's fault on guest memory.
type MemoryFaultError struct {
	Addr  uintptr // the host address that faulted
	Queue int     // the queue Process was serving
}

// Error names the queue and the address.
func (e *MemoryFaultError) Error() string {
	return fmt.Sprintf("queue %d: %v at host address %#x", e.Queue, ErrMemoryFault, e.Addr)
}

// Unwrap returns ErrMemoryFault.
func (e *MemoryFaultError) Unwrap() error { return ErrMemoryFault }
