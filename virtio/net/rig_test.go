package net

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

// fakeBackend is a netback.Backend fed and drained by the test.
type fakeBackend struct {
	in  chan []byte // frames for the guest
	out chan []byte // frames the guest sent
	*closer
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{in: make(chan []byte, 1024), out: make(chan []byte, 1024), closer: newCloser()}
}

func (f *fakeBackend) ReadFrame(buf []byte) (int, error) {
	select {
	case fr := <-f.in:
		if len(fr) > len(buf) {
			return 0, netback.ErrFrameTooLong
		}
		return copy(buf, fr), nil
	case <-f.closed:
		return 0, netback.ErrClosed
	}
}

func (f *fakeBackend) WriteFrame(fr []byte) error {
	select {
	case f.out <- append([]byte(nil), fr...):
		return nil
	case <-f.closed:
		return netback.ErrClosed
	}
}

// closer is the Close of the test backends: it closes closed, once.
type closer struct {
	closed chan struct{}
	once   sync.Once
}

func newCloser() *closer { return &closer{closed: make(chan struct{})} }

func (c *closer) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

// rig is a net device behind the real transport, driven like vioif over
// fake guest memory.
type rig struct {
	t      testing.TB
	mem    *guestmem.Memory
	alloc  *virtiotest.Alloc
	be     *fakeBackend
	dev    *Device
	pd     *virtio.PCIDevice
	drv    virtiotest.Driver
	irq    *virtiotest.IRQ
	rx, tx *virtiotest.Ring
}

var testMAC = []byte{0x52, 0x54, 0x00, 0xab, 0xcd, 0xef}

const wantFeatures = 1<<FeatureMAC | 1<<FeatureStatus | 1<<virtio.FeatureIndirectDesc

func newRig(t *testing.T) *rig {
	t.Helper()
	be := newFakeBackend()
	r := newRigOn(t, be)
	r.be = be
	return r
}

// newRigOn builds a rig whose device runs over backend instead of a fake.
// The transport is closed when the test ends.
func newRigOn(t testing.TB, backend netback.Backend) *rig {
	t.Helper()
	return newRigLog(t, backend, nil)
}

// newRigLog is newRigOn with the transport logging to log (nil: slog's
// default).
func newRigLog(t testing.TB, backend netback.Backend, log *slog.Logger) *rig {
	t.Helper()
	mem := guestmem.New(make([]byte, 16<<20))
	r := &rig{t: t, mem: mem, alloc: virtiotest.NewAlloc(mem, 0x1000), irq: virtiotest.NewIRQ()}
	var err error
	if r.dev, err = New(backend, testMAC); err != nil {
		t.Fatal(err)
	}
	if r.pd, err = virtio.NewPCIDevice(mem, r.dev, r.irq, log); err != nil {
		t.Fatal(err)
	}
	r.dev.SetKick(r.pd.KickQueue)
	r.dev.SetConfigChanged(r.pd.ConfigChanged)
	t.Cleanup(func() { r.pd.Close() })
	r.drv = virtiotest.Driver{Regs: r.pd.BARDevice(0)}
	r.attach(false)
	return r
}

// attach lays out fresh rings and brings the device up, in the attach
// order or (reinit) vioif's ifconfig-up order.
func (r *rig) attach(reinit bool) {
	r.t.Helper()
	pages := (virtio.RingBytes(QueueSize) + 4095) / 4096
	var err error
	if r.rx, err = virtiotest.NewRing(r.mem, r.alloc.Pages(pages), QueueSize); err != nil {
		r.t.Fatal(err)
	}
	if r.tx, err = virtiotest.NewRing(r.mem, r.alloc.Pages(pages), QueueSize); err != nil {
		r.t.Fatal(err)
	}
	up := r.drv.Attach
	if reinit {
		up = r.drv.Reinit
	}
	f, err := up(wantFeatures|1<<22 /* CTRL_VQ: not offered */, []uint32{r.rx.PFN, r.tx.PFN})
	if err != nil {
		r.t.Fatal(err)
	}
	if f != wantFeatures {
		r.t.Fatalf("negotiated features %#x, want %#x", f, wantFeatures)
	}
}

// postRx posts one receive chain of separate header and data buffers
// (vioif's layout) and returns its head and the data buffer's address.
func (r *rig) postRx(dataLen uint32) (head uint16, hdr, data uint64) {
	hdr = r.alloc.Take(HeaderSize, 16)
	data = r.alloc.Take(uint64(dataLen), 16)
	r.fill(hdr, HeaderSize, 0xAA)
	head = r.rx.AddChain([]virtiotest.Buf{{Addr: hdr, Len: HeaderSize, Write: true}, {Addr: data, Len: dataLen, Write: true}})
	r.rx.Publish(head)
	return head, hdr, data
}

func (r *rig) fill(addr uint64, n int, b byte) {
	s, err := r.mem.Slice(addr, uint64(n))
	if err != nil {
		r.t.Fatal(err)
	}
	for i := range s {
		s[i] = b
	}
}

func (r *rig) bytes(addr uint64, n int) []byte {
	s, err := r.mem.Slice(addr, uint64(n))
	if err != nil {
		r.t.Fatal(err)
	}
	return append([]byte(nil), s...)
}

// frame makes an Ethernet frame of n bytes whose payload counts from seed.
func frame(n int, seed byte) []byte {
	f := make([]byte, n)
	copy(f, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x88, 0xb5})
	for i := 14; i < n; i++ {
		f[i] = seed + byte(i)
	}
	return f
}

// sent waits for the backend to receive a frame from the guest.
func (r *rig) sent() []byte {
	r.t.Helper()
	select {
	case f := <-r.be.out:
		return f
	case <-time.After(virtiotest.Patience):
		r.t.Fatalf("no frame reached the backend within %v", virtiotest.Patience)
	}
	return nil
}

func (r *rig) waitStat(what string, get func(Stats) uint64, want uint64) {
	r.t.Helper()
	deadline := time.Now().Add(virtiotest.Patience)
	for get(r.dev.Stats()) != want {
		if time.Now().After(deadline) {
			r.t.Fatalf("%s = %d after %v, want %d (stats %+v)", what, get(r.dev.Stats()), virtiotest.Patience, want, r.dev.Stats())
		}
		time.Sleep(time.Millisecond)
	}
}

// postTx publishes a transmit chain of one buffer holding the header and
// a 60-byte frame of b.
func (r *rig) postTx(b byte) {
	buf := r.alloc.Take(HeaderSize+60, 16)
	r.put(buf+HeaderSize, frame(60, b))
	r.tx.Publish(r.tx.AddChain([]virtiotest.Buf{{Addr: buf, Len: HeaderSize + 60}}))
}

// put writes b at guest address addr.
func (r *rig) put(addr uint64, b []byte) {
	r.t.Helper()
	if _, err := r.mem.WriteAt(b, int64(addr)); err != nil {
		r.t.Fatal(err)
	}
}
