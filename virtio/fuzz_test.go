package virtio_test

import (
	"errors"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

// FuzzChain's guest: 64 KiB of memory, a queue of 8 at PFN 1, and a
// scratch page at 0x3000 for indirect tables and buffers. The fuzz input is
// copied over the descriptor table, the available ring and the scratch
// page, in that order.
const (
	fuzzMem     = 64 << 10
	fuzzQSize   = 8
	fuzzPFN     = 1
	fuzzScratch = 0x3000
)

// fuzzRegions are the descriptor table, the available ring and the
// scratch page: the guest memory a fuzz input stands for.
var fuzzRegions = []struct{ at, n uint64 }{
	{fuzzPFN * 4096, 16 * fuzzQSize},
	{fuzzPFN*4096 + 16*fuzzQSize, 4 + 2*fuzzQSize},
	{fuzzScratch, 4096},
}

func fuzzLayout(mem *guestmem.Memory, data []byte) {
	for _, r := range fuzzRegions {
		s, _ := mem.Slice(r.at, r.n)
		data = data[copy(s, data):]
	}
}

// chainSeed builds a ring with the driver helper and returns the input
// bytes that reproduce it.
func chainSeed(build func(r *virtiotest.Ring)) []byte {
	mem := guestmem.New(make([]byte, fuzzMem))
	r, _ := virtiotest.NewRing(mem, fuzzPFN, fuzzQSize)
	build(r)
	var out []byte
	for _, reg := range fuzzRegions {
		s, _ := mem.Slice(reg.at, reg.n)
		out = append(out, s...)
	}
	for len(out) > 0 && out[len(out)-1] == 0 {
		out = out[:len(out)-1]
	}
	return out
}

func chainSeeds() [][]byte {
	return [][]byte{
		chainSeed(func(r *virtiotest.Ring) {
			r.Publish(r.AddChain([]virtiotest.Buf{{Addr: 0x4000, Len: 16}, {Addr: 0x5000, Len: 512, Write: true}, {Addr: 0x6000, Len: 1, Write: true}}))
		}),
		chainSeed(func(r *virtiotest.Ring) {
			r.Publish(r.AddIndirect(fuzzScratch, []virtiotest.Buf{{Addr: 0x4000, Len: 16}, {Addr: 0x5000, Len: 4096}, {Addr: 0x6000, Len: 1, Write: true}}))
			r.Publish(r.AddChain([]virtiotest.Buf{{Addr: 0x7000, Len: 16}}))
		}),
		chainSeed(func(r *virtiotest.Ring) {
			r.WriteDesc(r.Desc, 0, 0x4000, 16, virtio.DescNext, 1)
			r.WriteDesc(r.Desc, 1, 0x4000, 16, virtio.DescNext, 0)
			r.Publish(0)
		}),
		chainSeed(func(r *virtiotest.Ring) {
			r.WriteDesc(fuzzScratch, 0, fuzzScratch, 16, virtio.DescIndirect, 0)
			r.WriteDesc(r.Desc, 0, fuzzScratch, 16, virtio.DescIndirect, 0)
			r.Publish(0)
		}),
	}
}

// FuzzChain feeds random descriptor tables and available rings to Pop and
// checks that it never panics, always terminates, and only ever returns
// buffers that lie inside guest memory in readable-then-writable order.
func FuzzChain(f *testing.F) {
	for _, s := range chainSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		mem := guestmem.New(make([]byte, fuzzMem))
		fuzzLayout(mem, data)
		q, err := virtio.NewQueue(mem, fuzzQSize)
		if err != nil {
			t.Fatal(err)
		}
		q.SetFeatures(virtio.Bit(virtio.FeatureIndirectDesc)) // the table walk with the most to check
		if err := q.SetPFN(fuzzPFN); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			drainChains(t, q)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Pop did not terminate")
		}
	})
}

func drainChains(t *testing.T, q *virtio.Queue) {
	for i := 0; i < 3*fuzzQSize; i++ {
		c, ok, err := q.Pop()
		if err != nil {
			if !errors.Is(err, virtio.ErrRing) {
				t.Errorf("error not wrapping ErrRing: %v", err)
			}
			return
		}
		if !ok {
			return
		}
		if c.Head >= fuzzQSize {
			t.Errorf("head %d >= queue size", c.Head)
		}
		if len(c.Descs) > 2*fuzzQSize {
			t.Errorf("chain of %d buffers from a queue of %d", len(c.Descs), fuzzQSize)
		}
		seenWrite := false
		for _, d := range c.Descs {
			if end := d.Addr + uint64(d.Len); end < d.Addr || end > fuzzMem {
				t.Errorf("buffer [%#x, +%#x) outside memory", d.Addr, d.Len)
			}
			if !d.Write && seenWrite {
				t.Error("readable buffer after a writable one")
			}
			seenWrite = seenWrite || d.Write
		}
		if _, err := c.Segments(nil, true); err != nil {
			t.Errorf("Segments of a validated chain: %v", err)
		}
		if err := q.Push(c.Head, uint32(c.WritableLen())); err != nil {
			t.Errorf("Push: %v", err)
		}
	}
}
