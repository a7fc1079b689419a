package net

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

// genBackend produces the same frame forever and counts what it is sent.
type genBackend struct {
	frame []byte
	sent  atomic.Uint64
	*closer
}

func (g *genBackend) ReadFrame(buf []byte) (int, error) {
	select {
	case <-g.closed:
		return 0, netback.ErrClosed
	default:
		return copy(buf, g.frame), nil
	}
}

func (g *genBackend) WriteFrame([]byte) error { g.sent.Add(1); return nil }

// benchQueue sets up the device and one queue driven directly (the
// benchmark goroutine plays the transport's worker), with batch chains of
// a header and a data buffer built once and republished.
func benchQueue(b *testing.B, size int, write bool) (*Device, *virtio.Queue, *virtiotest.Ring, []uint16) {
	mem := guestmem.New(make([]byte, 8<<20))
	alloc := virtiotest.NewAlloc(mem, 0x1000)
	g := &genBackend{frame: frame(size, 1), closer: newCloser()}
	dev, err := New(g, testMAC)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { dev.Close() })
	pfn := alloc.Pages((virtio.RingBytes(QueueSize) + 4095) / 4096)
	ring, err := virtiotest.NewRing(mem, pfn, QueueSize)
	if err != nil {
		b.Fatal(err)
	}
	q, err := virtio.NewQueue(mem, QueueSize)
	if err != nil {
		b.Fatal(err)
	}
	if err := q.SetPFN(pfn); err != nil {
		b.Fatal(err)
	}
	var heads []uint16
	for range QueueSize / 2 {
		hdr := alloc.Take(HeaderSize, 16)
		data := alloc.Take(2048, 16)
		if !write { // a transmit chain carries a frame
			s, _ := mem.Slice(data, uint64(size))
			copy(s, g.frame)
		}
		dataLen := uint32(2048)
		if !write {
			dataLen = uint32(size)
		}
		heads = append(heads, ring.AddChain([]virtiotest.Buf{
			{Addr: hdr, Len: HeaderSize, Write: write}, {Addr: data, Len: dataLen, Write: write}}))
	}
	return dev, q, ring, heads
}

// runBatches publishes the chains in batches, lets process serve them and
// reaps the used ring until b.N frames went through.
func runBatches(b *testing.B, size int, ring *virtiotest.Ring, heads []uint16, process func() error) {
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		batch := min(len(heads), b.N-done)
		for _, h := range heads[:batch] {
			ring.Publish(h)
		}
		for got := 0; got < batch; {
			if err := process(); err != nil {
				b.Fatal(err)
			}
			n := 0
			for _, _, ok := ring.NextUsed(); ok; _, _, ok = ring.NextUsed() {
				n++
			}
			if n == 0 {
				runtime.Gosched()
			}
			got += n
		}
		done += batch
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}

// BenchmarkRx measures frames from a backend into guest receive buffers
// (backend reader goroutine, hand-off, copy into separate header and data
// descriptors, used ring).
func BenchmarkRx(b *testing.B) {
	for _, size := range []int{64, 1500} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			dev, q, ring, heads := benchQueue(b, size, true)
			runBatches(b, size, ring, heads, func() error { return dev.Process(RxQueue, q) })
		})
	}
}

// BenchmarkTx measures guest transmit chains (header + frame descriptors)
// gathered and handed to a backend that discards them.
func BenchmarkTx(b *testing.B) {
	for _, size := range []int{64, 1500} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			dev, q, ring, heads := benchQueue(b, size, false)
			runBatches(b, size, ring, heads, func() error { return dev.Process(TxQueue, q) })
		})
	}
}
