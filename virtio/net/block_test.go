package net

import (
	"errors"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

// stuckBackend blocks every WriteFrame until released, and fails reads.
type stuckBackend struct {
	release chan struct{}
	*closer
}

func (s *stuckBackend) ReadFrame([]byte) (int, error) {
	select {
	case <-s.closed:
		return 0, netback.ErrClosed
	default:
		return 0, errors.New("backend failure")
	}
}

func (s *stuckBackend) WriteFrame([]byte) error {
	select {
	case <-s.release:
		return nil
	case <-s.closed:
		return netback.ErrClosed
	}
}

// A backend that does not take a frame holds up the worker, never the
// vCPU: notifying, reading the ISR and the configuration return at once.
// Failing reads are counted without stopping the device.
func TestSlowBackendDoesNotBlockVCPU(t *testing.T) {
	be := &stuckBackend{release: make(chan struct{}), closer: newCloser()}
	r := newRigOn(t, be)

	buf := r.alloc.Take(HeaderSize+60, 16)
	r.put(buf+HeaderSize, frame(60, 1))
	r.tx.Publish(r.tx.AddChain([]virtiotest.Buf{{Addr: buf, Len: HeaderSize + 60}}))
	done := make(chan struct{})
	go func() {
		r.drv.Notify(TxQueue)
		r.drv.ISR()
		r.drv.Read8(virtio.RegConfig)
		r.drv.Status()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("a vCPU register access blocked behind a stuck backend")
	}
	r.waitStat("ReadErrors", func(s Stats) uint64 {
		if s.ReadErrors > 0 {
			return 1
		}
		return 0
	}, 1)
	close(be.release)
	if _, _, err := r.tx.WaitUsed(5 * time.Second); err != nil {
		t.Fatalf("transmit chain not completed once the backend took it: %v", err)
	}
	if err := r.pd.Close(); err != nil {
		t.Fatal(err)
	}
}
