package blk_test

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
	"github.com/smolvmm/smolvmm/vmm/guestmem"
)

// The benchmarks compare three ways of moving the same bytes between the
// same image file (in the page cache) and memory:
//
//   - pread-pwrite: one plain pread/pwrite per request, the ceiling;
//   - device: a request built in fake guest memory the way ld(4) builds
//     it (header, 4 KiB page segments, status, in an indirect table) and
//     served by Disk.Process on the calling goroutine;
//   - transport: the same request submitted through the legacy registers
//     (notify write), served on the device's worker goroutine, completed by
//     the interrupt and an ISR read: the whole off-vCPU path minus KVM.
//
// One request in flight at a time in every case.

const benchImage = 64 << 20

type workload struct {
	name   string
	typ    uint32
	size   int
	random bool
}

var workloads = []workload{
	{"seq-read-64K", blk.TypeIn, 64 << 10, false},
	{"seq-write-64K", blk.TypeOut, 64 << 10, false},
	{"rand-read-4K", blk.TypeIn, 4 << 10, true},
}

// offsets returns the byte offset of request i.
func (w workload) offsets() func(i int) int64 {
	if !w.random {
		return func(i int) int64 { return int64(i*w.size) % benchImage }
	}
	r := rand.New(rand.NewPCG(1, 2))
	offs := make([]int64, 4096)
	for i := range offs {
		offs[i] = r.Int64N(benchImage/int64(w.size)) * int64(w.size)
	}
	return func(i int) int64 { return offs[i%len(offs)] }
}

func benchFile(b *testing.B) string {
	b.Helper()
	p := filepath.Join(b.TempDir(), "bench.img")
	if err := os.WriteFile(p, pattern(benchImage, 1), 0o644); err != nil {
		b.Fatal(err)
	}
	return p
}

func BenchmarkBlk(b *testing.B) {
	p := benchFile(b)
	for _, w := range workloads {
		b.Run(w.name+"/pread-pwrite", func(b *testing.B) { benchCeiling(b, p, w) })
		b.Run(w.name+"/device", func(b *testing.B) { benchDevice(b, p, w) })
		b.Run(w.name+"/transport", func(b *testing.B) { benchTransport(b, p, w) })
	}
}

func report(b *testing.B, w workload) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

func benchCeiling(b *testing.B, path string, w workload) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, w.size)
	off := w.offsets()
	b.SetBytes(int64(w.size))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if w.typ == blk.TypeIn {
			_, err = f.ReadAt(buf, off(i))
		} else {
			_, err = f.WriteAt(buf, off(i))
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	report(b, w)
}

// benchReq is a request laid out once in guest memory; only the sector
// changes between submissions.
type benchReq struct {
	ring   *virtiotest.Ring
	mem    *guestmem.Memory
	hdr    uint64
	st     uint64
	table  uint64
	bufs   []virtiotest.Buf
	sector func(i int) uint64
}

func newBenchReq(b *testing.B, mem *guestmem.Memory, ring *virtiotest.Ring, w workload) *benchReq {
	a := virtiotest.NewAlloc(mem, 0x40000)
	r := &benchReq{ring: ring, mem: mem, hdr: a.Take(16, 16), st: a.Take(1, 1), table: a.Take(16*32, 16)}
	var h [16]byte
	h[0] = byte(w.typ)
	mem.WriteAt(h[:], int64(r.hdr))
	r.bufs = append(r.bufs, virtiotest.Buf{Addr: r.hdr, Len: 16})
	data := a.Take(uint64(w.size), 4096)
	for o := 0; o < w.size; o += 4096 {
		r.bufs = append(r.bufs, virtiotest.Buf{Addr: data + uint64(o), Len: 4096, Write: w.typ == blk.TypeIn})
	}
	r.bufs = append(r.bufs, virtiotest.Buf{Addr: r.st, Len: 1, Write: true})
	off := w.offsets()
	r.sector = func(i int) uint64 { return uint64(off(i)) / 512 }
	return r
}

// post publishes request i.
func (r *benchReq) post(i int) {
	r.mem.Write64(r.hdr+8, r.sector(i))
	r.ring.Publish(r.ring.AddIndirect(r.table, r.bufs))
}

func (r *benchReq) check(b *testing.B) {
	if _, _, ok := r.ring.NextUsed(); !ok {
		b.Fatal("request not completed")
	}
	if s, _ := r.mem.Read8(r.st); s != blk.StatusOK {
		b.Fatalf("status %d", s)
	}
}

func benchDevice(b *testing.B, path string, w workload) {
	d, err := blk.Open(path, blk.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	mem := guestmem.New(make([]byte, 1<<20))
	q, _ := virtio.NewQueue(mem, blk.QueueSize)
	ring, _ := virtiotest.NewRing(mem, 1, blk.QueueSize)
	if err := q.SetPFN(1); err != nil {
		b.Fatal(err)
	}
	r := newBenchReq(b, mem, ring, w)
	b.SetBytes(int64(w.size))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.post(i)
		if err := d.Process(0, q); err != nil {
			b.Fatal(err)
		}
		r.check(b)
	}
	report(b, w)
}

func benchTransport(b *testing.B, path string, w workload) {
	d, err := blk.Open(path, blk.Options{})
	if err != nil {
		b.Fatal(err)
	}
	mem := guestmem.New(make([]byte, 1<<20))
	irq := virtiotest.NewIRQ()
	pd, err := virtio.NewPCIDevice(mem, d, irq, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer pd.Close()
	drv := virtiotest.Driver{Regs: pd.BARDevice(0)}
	ring, _ := virtiotest.NewRing(mem, 1, blk.QueueSize)
	if _, err := drv.Attach(0xFFFFFFFF, []uint32{1}); err != nil {
		b.Fatal(err)
	}
	r := newBenchReq(b, mem, ring, w)
	b.SetBytes(int64(w.size))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.post(i)
		drv.Notify(0)
		select {
		case <-irq.Raised():
		case <-time.After(5 * time.Second):
			b.Fatal("no interrupt")
		}
		drv.ISR()
		r.check(b)
	}
	report(b, w)
}
