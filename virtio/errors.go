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
