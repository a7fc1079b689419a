package net

import (
	"errors"
	"sync/atomic"
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

	r.postTx(1)
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
	case <-time.After(virtiotest.Patience):
		t.Fatal("a vCPU register access blocked behind a stuck backend")
	}
	r.waitStat("ReadErrors", func(s Stats) uint64 {
		if s.ReadErrors > 0 {
			return 1
		}
		return 0
	}, 1)
	close(be.release)
	if _, _, err := r.tx.WaitUsed(virtiotest.Patience); err != nil {
		t.Fatalf("transmit chain not completed once the backend took it: %v", err)
	}
	if err := r.pd.Close(); err != nil {
		t.Fatal(err)
	}
}

// A backend that never takes a frame (a shared network stopped with
// SIGSTOP) holds up neither a reset (the vCPU's write of status 0) nor
// the transport's Close: the worker hands frames to a writer goroutine
// and never waits on the backend. The guest's transmit queue still feels
// the back-pressure: beyond txHandoff frames waiting, its chains stay in
// the ring. Before, the worker waited in WriteFrame holding the lock of
// every register write, so the reset blocked the vCPU, and Close waited
// for the worker: the VM could neither run on nor exit.
func TestStuckBackendDoesNotBlockResetOrClose(t *testing.T) {
	const chains = txHandoff + 10
	tests := []struct {
		name string
		do   func(r *rig, be *stuckBackend)
	}{
		{"reset", func(r *rig, _ *stuckBackend) {
			r.drv.Write8(virtio.RegStatus, 0)
			if s := r.drv.Status(); s != 0 {
				t.Errorf("status %#x after the reset, want 0", s)
			}
		}},
		{"close", func(r *rig, _ *stuckBackend) { r.pd.Close() }},
		{"backend back", func(r *rig, be *stuckBackend) {
			close(be.release)
			for i := range chains - txHandoff {
				if _, _, err := r.tx.WaitUsed(virtiotest.Patience); err != nil {
					t.Errorf("transmit chain %d of the %d left in the ring not taken once the backend took frames again: %v", i, chains-txHandoff, err)
					return
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be := &stuckBackend{release: make(chan struct{}), closer: newCloser()}
			defer be.Close() // lets a worker the fix did not free go, for the rig's cleanup
			r := newRigOn(t, be)
			for i := range chains {
				r.postTx(byte(i))
			}
			r.drv.Notify(TxQueue)
			for i := range txHandoff {
				if _, _, err := r.tx.WaitUsed(virtiotest.Patience); err != nil {
					t.Fatalf("transmit chain %d of %d not given back while frames wait for the backend: %v", i, txHandoff, err)
				}
			}
			// A register write waits for the worker to be done serving
			// the notify (it takes the worker lock): had the worker gone
			// on taking chains, they would be given back by now, and
			// nothing kicks the queue again while the backend is stuck.
			r.drv.QueueSize(TxQueue)
			if got := r.tx.UsedIdx(); got != txHandoff {
				t.Errorf("%d transmit chains given back with the backend stuck, want %d: the rest wait in the ring", got, txHandoff)
			}
			done := make(chan struct{})
			go func() {
				tt.do(r, be)
				close(done)
			}()
			select {
			case <-done:
			case <-time.After(virtiotest.Patience):
				t.Fatalf("%s blocked behind a backend stuck in WriteFrame", tt.name)
			}
			closed := make(chan struct{})
			go func() {
				r.pd.Close()
				close(closed)
			}()
			select {
			case <-closed:
			case <-time.After(virtiotest.Patience):
				t.Fatal("Close blocked behind a backend stuck in WriteFrame")
			}
		})
	}
}

// drainGateBackend takes no frame until a Drain waits for the writer,
// then takes each at once: the writer holds the frames when Quiesce
// begins, whatever the machine's load, and they reach the backend at the
// writer's own pace, not at a timer's.
type drainGateBackend struct {
	dev atomic.Pointer[Device]
	*closer
}

func (g *drainGateBackend) ReadFrame([]byte) (int, error) {
	<-g.closed
	return 0, netback.ErrClosed
}

func (g *drainGateBackend) WriteFrame([]byte) error {
	for deadline := time.Now().Add(virtiotest.Patience); ; time.Sleep(100 * time.Microsecond) {
		select {
		case <-g.closed:
			return netback.ErrClosed
		default:
		}
		p := g.dev.Load().tx
		p.mu.Lock()
		draining := p.drained != nil
		p.mu.Unlock()
		if draining {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("no Drain waited for the frame")
		}
	}
}

// Quiesce waits, for at most 100 ms, until the frames whose chains the
// guest was given back reach the backend, so that a snapshot does not
// lose them; a backend that takes none holds Quiesce up for that bound
// only. Before, Quiesce waited for the worker alone, and the frames still
// waiting for the writer were missing from the snapshot (and dropped at
// Close).
func TestQuiesceDrainsTransmit(t *testing.T) {
	const frames = 5
	tests := []struct {
		name    string
		be      func() netback.Backend
		drained bool
	}{
		// A backend that took frames on a timer (1 ms a frame) raced
		// Quiesce's bound: under load its timers fired late, and CI's
		// -race run saw 3 of 5 frames taken in 100 ms.
		{"slow backend", func() netback.Backend { return &drainGateBackend{closer: newCloser()} }, true},
		{"stuck backend", func() netback.Backend { return &stuckBackend{release: make(chan struct{}), closer: newCloser()} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be := tt.be()
			defer be.Close()
			r := newRigOn(t, be)
			if g, ok := be.(*drainGateBackend); ok {
				g.dev.Store(r.dev)
			}
			for i := range frames {
				r.postTx(byte(i))
			}
			r.drv.Notify(TxQueue)
			for i := range frames {
				if _, _, err := r.tx.WaitUsed(virtiotest.Patience); err != nil {
					t.Fatalf("transmit chain %d not given back: %v", i, err)
				}
			}
			start := time.Now()
			resume := r.pd.Quiesce()
			took := time.Since(start)
			sent := r.dev.Stats().TxFrames
			resume()
			if tt.drained && sent != frames {
				t.Errorf("%d frames given to the backend when Quiesce returned, want %d", sent, frames)
			}
			// The bound and a loaded -race run's scheduling: a bound
			// many times virtio's still fails.
			if !tt.drained && (took < quiesceDrainForTest || took > quiesceDrainForTest+1500*time.Millisecond) {
				t.Errorf("Quiesce took %v with the backend stuck, want its bound, %v", took, quiesceDrainForTest)
			}
		})
	}
}

// quiesceDrainForTest is virtio's bound on Quiesce's drain.
const quiesceDrainForTest = 100 * time.Millisecond
