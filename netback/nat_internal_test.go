package netback

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// A UDP flow that carries nothing for udpIdleFor ends: its far side is
// closed and its end called, so that its socket and goroutines go.
func TestUDPFlowEndsWhenIdle(t *testing.T) {
	defer func(d time.Duration) { udpIdleFor = d }(udpIdleFor)
	udpIdleFor = 20 * time.Millisecond
	near, far := net.Pipe()
	defer near.Close()
	ended := make(chan struct{})
	f := newUDPFlow(far, func([]byte) error { return nil }, func() { close(ended) })
	read := make(chan error, 1)
	go func() {
		f.readFar()
		_, err := far.Read(make([]byte, 1))
		read <- err
	}()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("an idle flow did not end")
	}
	if err := <-read; !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("far side after the flow ended: %v, want closed", err)
	}
}
