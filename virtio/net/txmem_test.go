package net

import (
	"runtime"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

// txQueue makes a device over be and a transmit queue that the test
// serves itself (playing the transport's worker), with n chains of a
// header and a frame of size bytes, not yet published.
func txQueue(t *testing.T, be netback.Backend, size, n int) (*Device, *virtio.Queue, *virtiotest.Ring, []uint16) {
	t.Helper()
	mem := guestmem.New(make([]byte, 1<<20+n*(HeaderSize+size+64)))
	alloc := virtiotest.NewAlloc(mem, 0x1000)
	dev, err := New(be, testMAC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	pfn := alloc.Pages((virtio.RingBytes(QueueSize) + 4095) / 4096)
	ring, err := virtiotest.NewRing(mem, pfn, QueueSize)
	if err != nil {
		t.Fatal(err)
	}
	q, err := virtio.NewQueue(mem, QueueSize)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.SetPFN(pfn); err != nil {
		t.Fatal(err)
	}
	var heads []uint16
	for i := range n {
		buf := alloc.Take(uint64(HeaderSize+size), 16)
		if _, err := mem.WriteAt(frame(size, byte(i)), int64(buf+HeaderSize)); err != nil {
			t.Fatal(err)
		}
		heads = append(heads, ring.AddChain([]virtiotest.Buf{{Addr: buf, Len: uint32(HeaderSize + size)}}))
	}
	return dev, q, ring, heads
}

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// A guest sending frames of MaxFrameSize to a backend that takes none
// makes the VMM hold about txHandoffBytes of them, not txHandoff: the
// worker leaves the chains beyond in the ring. Before, 64 such frames
// (4 MiB) waited.
func TestTxStuckBackendBytesBounded(t *testing.T) {
	be := &stuckBackend{release: make(chan struct{}), closer: newCloser()}
	defer be.Close()
	dev, q, ring, heads := txQueue(t, be, MaxFrameSize, txHandoff)
	before := heapInUse()
	for _, h := range heads {
		ring.Publish(h)
	}
	for range 3 { // as the guest's further notifies would
		if err := dev.Process(TxQueue, q); err != nil {
			t.Fatal(err)
		}
	}
	grown := int64(heapInUse()) - int64(before)
	taken := int(ring.UsedIdx())
	if limit := txHandoffBytes/(HeaderSize+MaxFrameSize) + 1; taken > limit {
		t.Errorf("%d chains of %d-byte frames taken with the backend stuck, want at most %d", taken, MaxFrameSize, limit)
	}
	if limit := int64(txHandoffBytes + 2*jumboBuf); grown > limit {
		t.Errorf("heap grew %d bytes with the backend stuck, want at most %d", grown, limit)
	}
}

// sinkBackend takes every frame without keeping it (no allocation),
// saying on sent that it did.
type sinkBackend struct {
	sent chan struct{}
	*closer
}

func (s *sinkBackend) ReadFrame([]byte) (int, error) {
	<-s.closed
	return 0, netback.ErrClosed
}

func (s *sinkBackend) WriteFrame([]byte) error {
	s.sent <- struct{}{}
	return nil
}

// Transmitting a frame allocates nothing once the device runs, a frame
// over poolFrame as little as an MTU-sized one: the buffer of a large frame
// is kept for the next. Before, each frame over 2 KiB allocated one of its
// size.
func TestTxNoAllocPerFrame(t *testing.T) {
	tests := []struct {
		name string
		size int
	}{
		{"MTU", 1514},
		{"over poolFrame", poolFrame + 100},
		{"MaxFrameSize", MaxFrameSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be := &sinkBackend{sent: make(chan struct{}, 1), closer: newCloser()}
			dev, q, ring, heads := txQueue(t, be, tt.size, 1)
			send := func() {
				ring.Publish(heads[0])
				if err := dev.Process(TxQueue, q); err != nil {
					t.Fatal(err)
				}
				<-be.sent // no timer: it would allocate
				if _, _, ok := ring.NextUsed(); !ok {
					t.Fatal("the chain was not given back")
				}
			}
			send() // the first frame allocates its buffer
			if n := testing.AllocsPerRun(100, send); n != 0 {
				t.Errorf("%v allocations per %d-byte frame, want none", n, tt.size)
			}
		})
	}
}

// A burst of frames of MaxFrameSize waiting for a stuck backend needs a
// jumbo buffer each; once they are written, at most txJumbos of those
// buffers are kept for the next ones, the rest given to the collector, so
// a guest's burst does not leave the VMM holding 64 KiB per frame.
func TestTxJumboBuffersKept(t *testing.T) {
	const frames = 8
	be := &stuckBackend{release: make(chan struct{}), closer: newCloser()}
	defer be.Close()
	dev, q, ring, heads := txQueue(t, be, MaxFrameSize, frames)
	for _, h := range heads {
		ring.Publish(h)
	}
	if err := dev.Process(TxQueue, q); err != nil {
		t.Fatal(err)
	}
	dev.tx.mu.Lock()
	inFlight := dev.tx.jumbos
	dev.tx.mu.Unlock()
	if inFlight <= txJumbos {
		t.Fatalf("%d jumbo buffers while the backend is stuck: the test needs more than %d waiting", inFlight, txJumbos)
	}
	close(be.release) // every write succeeds from now on
	deadline := time.Now().Add(virtiotest.Patience)
	for ring.UsedIdx() != frames {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d chains taken", ring.UsedIdx(), frames)
		}
		// As the writer's kick would: the worker takes the rest.
		if err := dev.Process(TxQueue, q); err != nil {
			t.Fatal(err)
		}
		dev.Drain(time.Second)
	}
	if !dev.Drain(virtiotest.Patience) {
		t.Fatal("frames still wait for a released backend")
	}
	if st := dev.Stats(); st.TxFrames != frames {
		t.Fatalf("%d frames sent, want %d", st.TxFrames, frames)
	}
	dev.tx.mu.Lock()
	defer dev.tx.mu.Unlock()
	kept := 0
	for _, b := range dev.tx.free {
		if cap(b) == jumboBuf {
			kept++
		}
	}
	if kept > txJumbos || kept != dev.tx.jumbos {
		t.Errorf("%d jumbo buffers kept (counted %d) after %d were in flight, want at most %d", kept, dev.tx.jumbos, inFlight, txJumbos)
	}
}
