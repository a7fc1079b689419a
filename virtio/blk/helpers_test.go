package blk_test

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

// memBackend is an in-memory image that fails (and records) any access
// outside it, so a test or fuzzer sees an out-of-range request that the
// device performed.
type memBackend struct {
	mu    sync.Mutex
	b     []byte
	oob   bool
	syncs int
	// onSync, when set, runs inside Sync (to look at guest memory then).
	onSync func()
}

func newMemBackend(size int) *memBackend { return &memBackend{b: make([]byte, size)} }

func (m *memBackend) check(n int, off int64) error {
	if off < 0 || off+int64(n) > int64(len(m.b)) || off+int64(n) < off {
		m.oob = true
		return fmt.Errorf("memBackend: access [%d, +%d) outside %d bytes", off, n, len(m.b))
	}
	return nil
}

func (m *memBackend) ReadAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(len(p), off); err != nil {
		return 0, err
	}
	return copy(p, m.b[off:]), nil
}

func (m *memBackend) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(len(p), off); err != nil {
		return 0, err
	}
	return copy(m.b[off:], p), nil
}

func (m *memBackend) Sync() error {
	if m.onSync != nil {
		m.onSync()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.syncs++
	return nil
}

// blkRig is a disk behind the transport, brought up like NetBSD's ld(4).
type blkRig struct {
	mem   *guestmem.Memory
	disk  *blk.Disk
	pd    *virtio.PCIDevice
	drv   virtiotest.Driver
	ring  *virtiotest.Ring
	alloc *virtiotest.Alloc
	irq   *virtiotest.IRQ
}

const guestMem = 4 << 20

func newBlkRig(t testing.TB, disk *blk.Disk) *blkRig {
	t.Helper()
	return newBlkRigOn(t, disk, guestmem.New(make([]byte, guestMem)))
}

// newBlkRigOn is newBlkRig over guest memory mem.
func newBlkRigOn(t testing.TB, disk *blk.Disk, mem *guestmem.Memory) *blkRig {
	t.Helper()
	return newBlkRigLogged(t, disk, mem, nil)
}

// newBlkRigLogged is newBlkRigOn with the transport logging to log.
func newBlkRigLogged(t testing.TB, disk *blk.Disk, mem *guestmem.Memory, log *slog.Logger) *blkRig {
	t.Helper()
	irq := virtiotest.NewIRQ()
	pd, err := virtio.NewPCIDevice(mem, disk, irq, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pd.Close() })
	a := virtiotest.NewAlloc(mem, 4096)
	pfn := a.Pages(2)
	ring, err := virtiotest.NewRing(mem, pfn, blk.QueueSize)
	if err != nil {
		t.Fatal(err)
	}
	r := &blkRig{mem: mem, disk: disk, pd: pd, drv: virtiotest.Driver{Regs: pd.BARDevice(0)}, ring: ring, alloc: a, irq: irq}
	if r.drv.QueueSize(0) != blk.QueueSize {
		t.Fatalf("queue size %d", r.drv.QueueSize(0))
	}
	if _, err := r.drv.Attach(0xFFFFFFFF, []uint32{pfn}); err != nil {
		t.Fatal(err)
	}
	return r
}

// header writes a request header at a fresh address and returns it.
func (r *blkRig) header(typ uint32, sector uint64) uint64 {
	at := r.alloc.Take(blk.HeaderSize, 16)
	var h [blk.HeaderSize]byte
	binary.LittleEndian.PutUint32(h[0:], typ)
	binary.LittleEndian.PutUint64(h[8:], sector)
	r.mem.WriteAt(h[:], int64(at))
	return at
}

// status returns the address of a fresh status byte preset to 0xFF.
func (r *blkRig) status() uint64 {
	at := r.alloc.Take(1, 1)
	r.mem.Write8(at, 0xFF)
	return at
}

// submit publishes bufs (indirect when asked), notifies, and waits for
// the used element.
func (r *blkRig) submit(t testing.TB, bufs []virtiotest.Buf, indirect bool) uint32 {
	t.Helper()
	head := r.ring.Add(r.alloc, bufs, indirect)
	r.ring.Publish(head)
	r.drv.Notify(0)
	id, n, err := r.ring.WaitUsed(virtiotest.Patience)
	if err != nil {
		t.Fatal(err)
	}
	if id != uint32(head) {
		t.Fatalf("used id %d, want %d", id, head)
	}
	return n
}
