package blk_test

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

// The benchmarks compare three ways of moving the same bytes between the
// same image file (in the page cache) and memory:
//
//   - pread-pwrite: one plain pread/pwrite per request, the ceiling;
//   - device: a request built in fake guest memory the way ld(4) builds
//     it (header, 4 KiB page segments, status, in an indirect table) and
//     served by Disk.Process on the calling goroutine. The pages are
//     scattered (reverse order, one-page gaps), the worst case of a
//     physically fragmented buffer: one preadv of 16 iovecs;
//   - device-contig: the same with physically contiguous pages, which the
//     device merges into one iovec;
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
	// Write the image back now, so that no variant later waits for pages
	// still under writeback from its creation.
	f, err := os.Open(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	return p
}

func BenchmarkBlk(b *testing.B) {
	p := benchFile(b)
	for _, w := range workloads {
		b.Run(w.name+"/pread-pwrite", func(b *testing.B) { benchLoop(b, w, newCeiling(b, p, w).do) })
		b.Run(w.name+"/device", func(b *testing.B) { benchLoop(b, w, newDirect(b, p, w, false).do) })
		b.Run(w.name+"/device-contig", func(b *testing.B) { benchLoop(b, w, newDirect(b, p, w, true).do) })
		b.Run(w.name+"/transport", func(b *testing.B) { benchLoop(b, w, newViaTransport(b, p, w).do) })
		b.Run(w.name+"/transport-inline", func(b *testing.B) { benchLoop(b, w, newViaTransport(b, p, w).doInline) })
	}
}

// benchLoop times b.N requests of w made by do.
func benchLoop(b *testing.B, w workload, do func(b *testing.B, i int)) {
	b.SetBytes(int64(w.size))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		do(b, i)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// ceiling is plain pread/pwrite of the workload's requests.
type ceiling struct {
	f   *os.File
	buf []byte
	off func(int) int64
	typ uint32
}

func newCeiling(b *testing.B, path string, w workload) *ceiling {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return &ceiling{f: f, buf: make([]byte, w.size), off: w.offsets(), typ: w.typ}
}

func (c *ceiling) do(b *testing.B, i int) {
	var err error
	if c.typ == blk.TypeIn {
		_, err = c.f.ReadAt(c.buf, c.off(i))
	} else {
		_, err = c.f.WriteAt(c.buf, c.off(i))
	}
	if err != nil {
		b.Fatal(err)
	}
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

func newBenchReq(b *testing.B, mem *guestmem.Memory, ring *virtiotest.Ring, w workload, contig bool) *benchReq {
	a := virtiotest.NewAlloc(mem, 0x40000)
	r := &benchReq{ring: ring, mem: mem, hdr: a.Take(16, 16), st: a.Take(1, 1), table: a.Take(16*32, 16)}
	var h [16]byte
	h[0] = byte(w.typ)
	mem.WriteAt(h[:], int64(r.hdr))
	r.bufs = append(r.bufs, virtiotest.Buf{Addr: r.hdr, Len: 16})
	pages := uint64(w.size / 4096)
	data := a.Take(2*4096*pages, 4096)
	for j := uint64(0); j < pages; j++ {
		at := data + 4096*j
		if !contig {
			at = data + 2*4096*(pages-1-j)
		}
		r.bufs = append(r.bufs, virtiotest.Buf{Addr: at, Len: 4096, Write: w.typ == blk.TypeIn})
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

// direct serves requests with Disk.Process on the calling goroutine.
type direct struct {
	d *blk.Disk
	q *virtio.Queue
	r *benchReq
}

func newDirect(b *testing.B, path string, w workload, contig bool) *direct {
	d, err := blk.Open(path, blk.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	mem := guestmem.New(make([]byte, 1<<20))
	q, _ := virtio.NewQueue(mem, blk.QueueSize)
	q.SetFeatures(virtio.Bit(virtio.FeatureIndirectDesc)) // the requests come in indirect tables
	ring, _ := virtiotest.NewRing(mem, 1, blk.QueueSize)
	if err := q.SetPFN(1); err != nil {
		b.Fatal(err)
	}
	return &direct{d: d, q: q, r: newBenchReq(b, mem, ring, w, contig)}
}

func (x *direct) do(b *testing.B, i int) {
	x.r.post(i)
	x.serve(b)
	x.r.check(b)
}

// serve is the device's share of do: what runs on the worker.
func (x *direct) serve(b *testing.B) {
	if err := x.d.Process(0, x.q); err != nil {
		b.Fatal(err)
	}
}

// viaTransport submits requests through the registers and the worker.
type viaTransport struct {
	pd  *virtio.PCIDevice
	irq *virtiotest.IRQ
	drv virtiotest.Driver
	r   *benchReq
}

func newViaTransport(b *testing.B, path string, w workload) *viaTransport {
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
	b.Cleanup(func() { pd.Close() })
	drv := virtiotest.Driver{Regs: pd.BARDevice(0)}
	ring, _ := virtiotest.NewRing(mem, 1, blk.QueueSize)
	if _, err := drv.Attach(0xFFFFFFFF, []uint32{1}); err != nil {
		b.Fatal(err)
	}
	return &viaTransport{pd: pd, irq: irq, drv: drv, r: newBenchReq(b, mem, ring, w, false)}
}

func (x *viaTransport) do(b *testing.B, i int) {
	x.r.post(i)
	x.serve(b)
	x.r.check(b)
}

// serve is notify to interrupt acknowledged: the transport's share of do.
func (x *viaTransport) serve(b *testing.B) {
	x.drv.Notify(0)
	x.acknowledge(b)
}

// doInline serves request i the way the VMM's ioeventfd reader does: Serve
// on the notifying goroutine, no hand-off to the worker.
func (x *viaTransport) doInline(b *testing.B, i int) {
	x.r.post(i)
	x.pd.Serve()
	x.acknowledge(b)
	x.r.check(b)
}

// acknowledge waits for the interrupt and reads the ISR, as the guest's
// handler does.
func (x *viaTransport) acknowledge(b *testing.B) {
	select {
	case <-x.irq.Raised():
	case <-time.After(virtiotest.Patience):
		b.Fatal("no interrupt")
	}
	x.drv.ISR()
}

// BenchmarkBlkPaired runs the ceiling, the device (scattered and
// contiguous pages) and the transport in turn within each iteration, so
// that the noise of a shared machine hits all of them alike, and reports
// each one's throughput and the others as a percentage of the ceiling.
// Only the serving side is timed (not the fake driver building the chain
// or checking the used ring, which is guest work). Each variant works on
// its own part of the image (request index shifted by a prime) and the
// order rotates every iteration, so none of them finds the bytes another
// just pulled into the CPU caches. Each disk holds its image's lock, so
// each has its own identical image; all are in the page cache.
func BenchmarkBlkPaired(b *testing.B) {
	imgs := [4]string{benchFile(b), benchFile(b), benchFile(b), benchFile(b)}
	names := [4]string{"ceiling", "device", "device-contig", "transport"}
	for _, w := range workloads {
		b.Run(w.name, func(b *testing.B) {
			c := newCeiling(b, imgs[0], w)
			d, dc := newDirect(b, imgs[1], w, false), newDirect(b, imgs[2], w, true)
			x := newViaTransport(b, imgs[3], w)
			type variant struct {
				post, check func(int)
				serve       func(int)
			}
			none := func(int) {}
			vs := [4]variant{
				{none, none, func(i int) { c.do(b, i) }},
				{d.r.post, func(int) { d.r.check(b) }, func(int) { d.serve(b) }},
				{dc.r.post, func(int) { dc.r.check(b) }, func(int) { dc.serve(b) }},
				{x.r.post, func(int) { x.r.check(b) }, func(int) { x.serve(b) }},
			}
			const shift = 1000003
			var spent [4]time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j := range vs {
					k := (i + j) % len(vs)
					n := i + k*shift
					vs[k].post(n)
					t0 := time.Now()
					vs[k].serve(n)
					spent[k] += time.Since(t0)
					vs[k].check(n)
				}
			}
			for k, name := range names {
				b.ReportMetric(float64(b.N)*float64(w.size)/spent[k].Seconds()/1e6, name+"-MB/s")
				if k > 0 {
					b.ReportMetric(100*spent[0].Seconds()/spent[k].Seconds(), name+"-%")
				}
			}
			b.ReportMetric(float64(b.N)/spent[0].Seconds(), "ceiling-req/s")
			b.ReportMetric(float64(b.N)/spent[1].Seconds(), "device-req/s")
		})
	}
}
