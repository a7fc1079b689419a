package net

import (
	"sync"
	"time"

	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

// driverShim plays a guest's virtio-net driver over a rig, and offers the
// guest's side as a netback.Backend so that a netstack guest can sit on
// top: WriteFrame puts a frame in a transmit chain, ReadFrame takes one from
// the receive ring and reposts the buffer. Receive waits for the
// interrupt; transmit polls for completions only when all its chains are in
// flight.
type driverShim struct {
	r *rig

	rxMu   sync.Mutex
	rxData map[uint16]uint64 // head -> data buffer

	txMu   sync.Mutex
	txFree []uint16          // heads of transmit chains the device returned
	txData map[uint16]uint64 // head -> buffer (header then frame)
	txHdr  map[uint16]uint64

	*closer
}

const shimBuf = 2048

func newDriverShim(r *rig) *driverShim {
	s := &driverShim{r: r, rxData: map[uint16]uint64{}, txData: map[uint16]uint64{}, txHdr: map[uint16]uint64{},
		closer: newCloser()}
	for range QueueSize / 2 {
		head, _, data := r.postRx(shimBuf)
		s.rxData[head] = data
	}
	r.drv.Notify(RxQueue)
	for range QueueSize / 2 {
		hdr := r.alloc.Take(HeaderSize, 16)
		data := r.alloc.Take(netback.MaxFrameSize, 16)
		head := r.tx.AddChain([]virtiotest.Buf{{Addr: hdr, Len: HeaderSize}, {Addr: data, Len: 1}})
		s.txFree = append(s.txFree, head)
		s.txData[head], s.txHdr[head] = data, hdr
	}
	return s
}

func (s *driverShim) wait() bool {
	select {
	case <-s.closed:
		return false
	default:
		time.Sleep(20 * time.Microsecond)
		return true
	}
}

func (s *driverShim) ReadFrame(buf []byte) (int, error) {
	s.rxMu.Lock()
	defer s.rxMu.Unlock()
	for {
		id, n, ok := s.r.rx.NextUsed()
		if ok {
			head := uint16(id)
			f := s.r.bytes(s.rxData[head], int(n)-HeaderSize)
			s.r.rx.Publish(head)
			s.r.drv.Notify(RxQueue)
			return copy(buf, f), nil
		}
		// Wait for the interrupt (reading the ISR deasserts the line, as
		// vioif's handler does), or poll again after a while in case it
		// went to the transmit side.
		select {
		case <-s.closed:
			return 0, netback.ErrClosed
		case <-s.r.irq.Raised():
			s.r.drv.ISR()
		case <-time.After(time.Millisecond):
			s.r.drv.ISR()
		}
	}
}

func (s *driverShim) WriteFrame(f []byte) error {
	s.txMu.Lock()
	defer s.txMu.Unlock()
	for {
		for id, _, ok := s.r.tx.NextUsed(); ok; id, _, ok = s.r.tx.NextUsed() {
			s.txFree = append(s.txFree, uint16(id))
		}
		if len(s.txFree) > 0 {
			break
		}
		if !s.wait() {
			return netback.ErrClosed
		}
	}
	head := s.txFree[len(s.txFree)-1]
	s.txFree = s.txFree[:len(s.txFree)-1]
	s.r.put(s.txData[head], f)
	// Rewrite the data descriptor's length (the second of the chain).
	s.r.mem.Write32(s.r.tx.Desc+16*uint64((head+1)%QueueSize)+8, uint32(len(f)))
	s.r.tx.Publish(head)
	s.r.drv.Notify(TxQueue)
	return nil
}
