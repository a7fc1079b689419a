package netback

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// None is the backend of the spec "none": the guest has a NIC with the link
// up, but its frames go nowhere and nothing ever arrives.
type None struct {
	closed    chan struct{}
	closeOnce sync.Once
	sent      atomic.Uint64
}

// NewNone returns a backend that discards every frame.
func NewNone() *None { return &None{closed: make(chan struct{})} }

// ReadFrame implements Backend: it waits for Close.
func (n *None) ReadFrame(_ []byte) (int, error) {
	<-n.closed
	return 0, fmt.Errorf("none network: read frame: %w", ErrClosed)
}

// WriteFrame implements Backend: it discards the frame.
func (n *None) WriteFrame(frame []byte) error {
	select {
	case <-n.closed:
		return fmt.Errorf("none network: write frame: %w", ErrClosed)
	default:
	}
	if err := checkOutgoing(frame); err != nil {
		return fmt.Errorf("none network: write frame: %w", err)
	}
	n.sent.Add(1)
	return nil
}

// Stats implements StatsReporter.
func (n *None) Stats() Stats { return Stats{FromGuest: n.sent.Load()} }

// Close implements Backend.
func (n *None) Close() error {
	n.closeOnce.Do(func() { close(n.closed) })
	return nil
}
