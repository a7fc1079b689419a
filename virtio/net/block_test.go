package net

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
	"github.com/smolvmm/smolvmm/vmm/guestmem"
)

// stuckBackend blocks every WriteFrame until released, and fails reads.
type stuckBackend struct {
	release chan struct{}
	closed  chan struct{}
	once    sync.Once
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

func (s *stuckBackend) Close() error {
	s.once.Do(func() { close(s.closed) })
	return nil
}

// A backend that does not take a frame holds up the worker, never the
// vCPU: notifying, reading the ISR and the configuration return at once.
// Failing reads are counted without stopping the device.
func TestSlowBackendDoesNotBlockVCPU(t *testing.T) {
	be := &stuckBackend{release: make(chan struct{}), closed: make(chan struct{})}
	mem := guestmem.New(make([]byte, 4<<20))
	r := &rig{t: t, mem: mem, alloc: virtiotest.NewAlloc(mem, 0x1000), irq: virtiotest.NewIRQ()}
	var err error
	if r.dev, err = New(be, testMAC); err != nil {
		t.Fatal(err)
	}
	if r.pd, err = virtio.NewPCIDevice(mem, r.dev, r.irq, nil); err != nil {
		t.Fatal(err)
	}
	r.dev.SetKick(r.pd.KickQueue)
	r.drv = virtiotest.Driver{Regs: r.pd.BARDevice(0)}
	r.attach(false)

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
