package virtio_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/pci"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

// fakeDev is a device with two queues that fills every writable buffer
// with 0xAB and returns its length.
type fakeDev struct {
	typ      uint16
	sizes    []uint16
	features uint32

	mu        sync.Mutex
	cfg       [8]byte
	cfgSize   int // ConfigSize's answer when not 0, else len(cfg)
	outside   int // config accesses that did not fit in cfg
	activated []uint32
	resets    int
	closed    atomic.Bool
	hold      chan struct{} // when set, Process waits on it
	entered   chan struct{}
	panics    atomic.Bool

	// pd, when set, is the device's transport: Close notes in
	// workerGone whether its worker goroutine had returned by then.
	pd         atomic.Pointer[virtio.PCIDevice]
	workerGone atomic.Bool
}

func newFakeDev() *fakeDev {
	return &fakeDev{typ: virtio.TypeNet, sizes: []uint16{16, 16}, features: 0x1000_0005, cfg: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}}
}

func (f *fakeDev) Type() uint16         { return f.typ }
func (f *fakeDev) Features() uint32     { return f.features }
func (f *fakeDev) QueueSizes() []uint16 { return f.sizes }
func (f *fakeDev) ConfigSize() int {
	if f.cfgSize != 0 {
		return f.cfgSize
	}
	return len(f.cfg)
}
func (f *fakeDev) ReadConfig(off int, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.check(off, data)
	copy(data, f.cfg[off:])
}
func (f *fakeDev) WriteConfig(off int, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.check(off, data)
	copy(f.cfg[off:], data)
}

// check counts an access the transport should have kept inside cfg.
func (f *fakeDev) check(off int, data []byte) {
	if off < 0 || off+len(data) > len(f.cfg) {
		f.outside++
	}
}
func (f *fakeDev) Activate(feat uint32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.activated = append(f.activated, feat)
}
func (f *fakeDev) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resets++
}
func (f *fakeDev) Close() error {
	if pd := f.pd.Load(); pd != nil {
		f.workerGone.Store(pd.WorkerExited())
	}
	f.closed.Store(true)
	return nil
}
func (f *fakeDev) Process(_ int, q *virtio.Queue) error {
	if f.entered != nil {
		f.entered <- struct{}{}
	}
	if f.hold != nil {
		<-f.hold
	}
	if f.panics.Load() {
		panic("device bug")
	}
	for {
		c, ok, err := q.Pop()
		if err != nil || !ok {
			return err
		}
		segs, _ := c.Segments(nil, true)
		for _, s := range segs {
			for i := range s {
				s[i] = 0xAB
			}
		}
		if err := q.Push(c.Head, uint32(c.WritableLen())); err != nil {
			return err
		}
	}
}

type rig struct {
	mem   *guestmem.Memory
	dev   *fakeDev
	pd    *virtio.PCIDevice
	irq   *virtiotest.IRQ
	drv   virtiotest.Driver
	alloc *virtiotest.Alloc
	rings []*virtiotest.Ring
	pfns  []uint32
	log   *strings.Builder
}

func newRig(t *testing.T, dev *fakeDev) *rig {
	t.Helper()
	return newRigOn(t, dev, guestmem.New(make([]byte, memSize)))
}

// newRigOn is newRig over guest memory mem.
func newRigOn(t *testing.T, dev *fakeDev, mem *guestmem.Memory) *rig {
	t.Helper()
	irq := virtiotest.NewIRQ()
	logBuf := &strings.Builder{}
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: logBuf}, nil))
	pd, err := virtio.NewPCIDevice(mem, dev, irq, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pd.Close() })
	r := &rig{mem: mem, dev: dev, pd: pd, irq: irq, drv: virtiotest.Driver{Regs: pd.BARDevice(0)},
		alloc: virtiotest.NewAlloc(mem, 4096), log: logBuf}
	for _, s := range dev.sizes {
		pfn := r.alloc.Pages(2)
		ring, err := virtiotest.NewRing(mem, pfn, s)
		if err != nil {
			t.Fatal(err)
		}
		r.rings = append(r.rings, ring)
		r.pfns = append(r.pfns, pfn)
	}
	return r
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// request publishes a one-buffer writable chain on queue qi, notifies and
// waits for it to come back.
func (r *rig) request(t *testing.T, qi int) (uint32, error) {
	t.Helper()
	ring := r.rings[qi]
	ring.Publish(ring.AddChain([]virtiotest.Buf{{Addr: 0x80000, Len: 32, Write: true}}))
	r.drv.Notify(uint16(qi))
	_, n, err := ring.WaitUsed(virtiotest.Patience)
	return n, err
}

func TestPCIIdentity(t *testing.T) {
	r := newRig(t, newFakeDev())
	cfg := r.pd.PCIConfig()
	var b [64]byte
	cfg.Read(0, b[:])
	le := binary.LittleEndian
	for _, c := range []struct {
		name      string
		got, want uint32
	}{
		{"vendor", uint32(le.Uint16(b[pci.RegVendorID:])), 0x1AF4},
		{"device", uint32(le.Uint16(b[pci.RegDeviceID:])), 0x1000},
		{"revision", uint32(b[pci.RegRevision]), 0},
		{"class", le.Uint32(b[8:]) >> 8, 0x020000},
		{"subsystem vendor", uint32(le.Uint16(b[pci.RegSubsysVendor:])), 0x1AF4},
		{"subsystem id", uint32(le.Uint16(b[pci.RegSubsysID:])), virtio.TypeNet},
		{"BAR0 is I/O", le.Uint32(b[pci.RegBAR0:]) & 1, 1},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
	if _, size := cfg.BAR(0); size != 32 || r.pd.BARSize() != 32 {
		t.Errorf("BAR0 size %d (BARSize %d), want 32 for 20 + 8 config bytes", size, r.pd.BARSize())
	}
	if r.pd.BARDevice(1) != nil {
		t.Error("BAR1 has a device")
	}
}

// TestNoCapabilityList guards NetBSD 9's interrupt choice: its x86
// pci_attach_hook (arch/x86/pci/pci_machdep.c) allows MSI and MSI-X on bus 0
// because our host bridge sits at 00:00.0, so what keeps virtio_pci on
// INTx, and its device config at offset 20, is that pci_msix_count finds
// no MSI-X capability (dev/pci/virtio_pci.c, virtio_pci_setup_interrupts).
// A capability list would move the config to offset 24 and the interrupts
// to vectors nothing routes.
func TestNoCapabilityList(t *testing.T) {
	r := newRig(t, newFakeDev())
	var b [256]byte
	r.pd.PCIConfig().Read(0, b[:])
	if status := binary.LittleEndian.Uint16(b[pci.RegStatus:]); status&0x10 != 0 {
		t.Errorf("status %#04x has the capabilities-list bit (0x10) set", status)
	}
	if ptr := b[0x34]; ptr != 0 {
		t.Errorf("capabilities pointer (0x34) = %#x, want 0", ptr)
	}
}

func TestRegisters(t *testing.T) {
	r := newRig(t, newFakeDev())
	d := r.drv
	if got := d.Read32(virtio.RegHostFeatures); got != 0x1000_0005 {
		t.Errorf("host features %#x", got)
	}
	if got := d.Read16(virtio.RegHostFeatures + 2); got != 0x1000 {
		t.Errorf("host features high half %#x", got)
	}
	d.Write32(virtio.RegGuestFeatures, 0xFFFF_FFFF)
	if got := d.Read32(virtio.RegGuestFeatures); got != 0x1000_0005 {
		t.Errorf("guest features %#x: want the offered bits only", got)
	}
	d.Write32(virtio.RegHostFeatures, 0)
	if got := d.Read32(virtio.RegHostFeatures); got != 0x1000_0005 {
		t.Errorf("host features changed by a write: %#x", got)
	}
	for q, want := range []uint16{16, 16, 0, 0} {
		if got := d.QueueSize(uint16(q)); got != want {
			t.Errorf("queue %d size %d, want %d", q, got, want)
		}
	}
	d.Write16(virtio.RegQueueSelect, 1)
	if got := d.Read16(virtio.RegQueueSelect); got != 1 {
		t.Errorf("queue select reads %d", got)
	}
	d.Write16(virtio.RegQueueSize, 64)
	if got := d.Read16(virtio.RegQueueSize); got != 16 {
		t.Errorf("queue size is writable: %d", got)
	}
	d.SetQueue(1, r.pfns[1])
	if got := d.Read32(virtio.RegQueuePFN); got != r.pfns[1] {
		t.Errorf("queue 1 PFN %#x, want %#x", got, r.pfns[1])
	}
	d.Write8(virtio.RegStatus, virtio.StatusAcknowledge|virtio.StatusDriver)
	if got := d.Status(); got != 3 {
		t.Errorf("status reads %#x, want 3", got)
	}
	if got := d.Read16(virtio.RegQueueNotify); got != 0 {
		t.Errorf("notify reads %#x", got)
	}
	// Device configuration at 20, any width; writes reach the device.
	if got := d.Read32(virtio.RegConfig + 4); got != 0x08070605 {
		t.Errorf("config[4:8] %#x", got)
	}
	d.Write8(virtio.RegConfig+1, 0x99)
	if got := d.Read8(virtio.RegConfig + 1); got != 0x99 {
		t.Errorf("config write not applied: %#x", got)
	}
	if got := d.Read8(virtio.RegConfig + 8); got != 0 {
		t.Errorf("past the config: %#x, want 0", got)
	}
	// An access across the end of the config reaches the device clipped.
	if got := d.Read32(virtio.RegConfig + 6); got != 0x0807 {
		t.Errorf("config[6:10] %#x, want 0x0807 (two bytes, then zeros)", got)
	}
	d.Write32(virtio.RegConfig+6, 0xAABB0807)
	r.dev.mu.Lock()
	defer r.dev.mu.Unlock()
	if r.dev.outside != 0 {
		t.Errorf("%d config accesses reached the device past its config size", r.dev.outside)
	}
}

// A driver may write a register in parts; each write changes only the
// bytes it covers.
func TestPartialRegisterWrites(t *testing.T) {
	r := newRig(t, newFakeDev())
	d := r.drv
	d.Write16(virtio.RegGuestFeatures, 0x0005)
	d.Write16(virtio.RegGuestFeatures+2, 0x1000)
	if got := d.Read32(virtio.RegGuestFeatures); got != 0x1000_0005 {
		t.Errorf("guest features written as two halves read %#x, want 0x10000005", got)
	}
	d.Write16(virtio.RegQueueSelect, 1)
	d.Write8(virtio.RegQueueSelect+1, 0)
	if got := d.Read16(virtio.RegQueueSelect); got != 1 {
		t.Errorf("queue select after a write of its high byte reads %d, want 1", got)
	}
	d.Write16(virtio.RegQueuePFN, uint16(r.pfns[1]))
	d.Write16(virtio.RegQueuePFN+2, uint16(r.pfns[1]>>16))
	if got := d.Read32(virtio.RegQueuePFN); got != r.pfns[1] {
		t.Errorf("queue 1 PFN written as two halves reads %#x, want %#x", got, r.pfns[1])
	}
}

func TestAttachOrders(t *testing.T) {
	for _, tc := range []struct {
		name string
		up   func(d virtiotest.Driver, want uint32, pfns []uint32) (uint32, error)
	}{
		{"NetBSD attach: features then PFNs", virtiotest.Driver.Attach},
		{"vioif re-init: PFNs then features", virtiotest.Driver.Reinit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, newFakeDev())
			f, err := tc.up(r.drv, 0x1000_0001, r.pfns)
			if err != nil || f != 0x1000_0001 {
				t.Fatalf("bring-up: features %#x err %v", f, err)
			}
			for qi := range r.rings {
				n, err := r.request(t, qi)
				if err != nil || n != 32 {
					t.Fatalf("queue %d: used len %d err %v", qi, n, err)
				}
			}
			if got := r.mem.Bytes()[0x80000]; got != 0xAB {
				t.Errorf("buffer not written: %#x", got)
			}
			r.dev.mu.Lock()
			defer r.dev.mu.Unlock()
			if len(r.dev.activated) != 1 || r.dev.activated[0] != 0x1000_0001 {
				t.Errorf("Activate calls %#x, want one with 0x10000001", r.dev.activated)
			}
		})
	}
}

func TestResetAndQueueSizeStable(t *testing.T) {
	r := newRig(t, newFakeDev())
	d := r.drv
	if _, err := d.Attach(0x1, r.pfns); err != nil {
		t.Fatal(err)
	}
	if _, err := r.request(t, 0); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		d.Write16(virtio.RegQueueSelect, 1)
		d.SetStatus(0)
		if got := d.Status(); got != 0 {
			t.Fatalf("status after reset %#x", got)
		}
		// A reset selects queue 0 again (as QEMU's virtio_reset does):
		// queue registers read before any select are queue 0's.
		if got := d.Read16(virtio.RegQueueSelect); got != 0 {
			t.Errorf("reset %d: queue select %d, want 0", i, got)
		}
		if got := d.Read32(virtio.RegGuestFeatures); got != 0 {
			t.Errorf("guest features after reset %#x", got)
		}
		for q := uint16(0); q < 2; q++ {
			if got := d.QueueSize(q); got != 16 {
				t.Errorf("reset %d: queue %d size %d, want 16", i, q, got)
			}
			d.Write16(virtio.RegQueueSelect, q)
			if got := d.Read32(virtio.RegQueuePFN); got != 0 {
				t.Errorf("queue %d PFN %#x after reset", q, got)
			}
		}
		if r.irq.Level() || d.ISR() != 0 {
			t.Error("interrupt still pending after reset")
		}
	}
	r.dev.mu.Lock()
	if r.dev.resets != 4 { // Attach's own reset + 3
		t.Errorf("device Reset called %d times, want 4", r.dev.resets)
	}
	r.dev.mu.Unlock()
	// The queue indices restart from 0: a fresh ring works after reset.
	for i, s := range r.dev.sizes {
		ring, _ := virtiotest.NewRing(r.mem, r.pfns[i], s)
		r.rings[i] = ring
	}
	if _, err := d.Attach(0x1, r.pfns); err != nil {
		t.Fatal(err)
	}
	if _, err := r.request(t, 1); err != nil {
		t.Fatalf("after reset: %v", err)
	}
}

func TestISRReadToClear(t *testing.T) {
	r := newRig(t, newFakeDev())
	if _, err := r.drv.Attach(0, r.pfns); err != nil {
		t.Fatal(err)
	}
	if _, err := r.request(t, 0); err != nil {
		t.Fatal(err)
	}
	waitLevel(t, r.irq, true)
	if st := pciStatus(r.pd); st&(1<<3) == 0 {
		t.Error("PCI status interrupt bit clear while ISR is set")
	}
	if got := r.drv.ISR(); got != virtio.ISRQueue {
		t.Errorf("ISR %#x, want %#x", got, virtio.ISRQueue)
	}
	if r.irq.Level() {
		t.Error("line still high after the ISR read")
	}
	if st := pciStatus(r.pd); st&(1<<3) != 0 {
		t.Error("PCI status interrupt bit still set after the ISR read")
	}
	if got := r.drv.ISR(); got != 0 {
		t.Errorf("second ISR read %#x, want 0", got)
	}
	if got := r.irq.Levels(); len(got) != 2 || !got[0] || got[1] {
		t.Errorf("levels %v, want [true false]", got)
	}
}

func TestNoInterruptFlag(t *testing.T) {
	r := newRig(t, newFakeDev())
	if _, err := r.drv.Attach(0, r.pfns); err != nil {
		t.Fatal(err)
	}
	r.rings[0].SetAvailFlags(1)
	if _, err := r.request(t, 0); err != nil {
		t.Fatal(err)
	}
	r.pd.Close() // the worker has finished: no interrupt can still come
	if len(r.irq.Levels()) != 0 || r.drv.ISR() != 0 {
		t.Errorf("interrupt raised despite NO_INTERRUPT: levels %v", r.irq.Levels())
	}
}

func waitLevel(t *testing.T, irq *virtiotest.IRQ, want bool) {
	t.Helper()
	deadline := time.Now().Add(virtiotest.Patience)
	for irq.Level() != want {
		if time.Now().After(deadline) {
			t.Fatalf("IRQ level never became %v", want)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func pciStatus(pd *virtio.PCIDevice) uint16 {
	var b [2]byte
	pd.PCIConfig().Read(pci.RegStatus, b[:])
	return binary.LittleEndian.Uint16(b[:])
}

func TestKicksBeforeDriverOK(t *testing.T) {
	r := newRig(t, newFakeDev())
	d := r.drv
	d.SetStatus(virtio.StatusAcknowledge | virtio.StatusDriver)
	d.SetQueue(0, r.pfns[0])
	ring := r.rings[0]
	ring.Publish(ring.AddChain([]virtiotest.Buf{{Addr: 0x80000, Len: 4, Write: true}}))
	d.Notify(0)
	r.pd.Kick()
	// Serve serves every queue on this goroutine, after any serve the
	// worker is in: had the kicks gone through, the request is used when
	// it returns.
	r.pd.Serve()
	if ring.UsedIdx() != 0 {
		t.Fatal("request served before DRIVER_OK")
	}
	d.SetStatus(virtio.StatusDriverOK)
	if _, n, err := ring.WaitUsed(virtiotest.Patience); err != nil || n != 4 {
		t.Fatalf("request made available before DRIVER_OK not served after it: n %d err %v", n, err)
	}
}

func TestNotifyDoesNotRunOnCaller(t *testing.T) {
	dev := newFakeDev()
	dev.hold, dev.entered = make(chan struct{}), make(chan struct{}, 4)
	r := newRig(t, dev)
	if _, err := r.drv.Attach(0, r.pfns); err != nil {
		t.Fatal(err)
	}
	<-dev.entered // DRIVER_OK kicked every queue; drain those runs
	dev.hold <- struct{}{}
	<-dev.entered
	dev.hold <- struct{}{}
	ring := r.rings[0]
	ring.Publish(ring.AddChain([]virtiotest.Buf{{Addr: 0x80000, Len: 4, Write: true}}))
	returned := make(chan struct{})
	go func() {
		r.drv.Notify(0)
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(virtiotest.Patience):
		t.Fatal("notify write blocked on the device's Process")
	}
	<-dev.entered // the worker runs Process while the notify has returned
	dev.hold <- struct{}{}
	if _, _, err := ring.WaitUsed(virtiotest.Patience); err != nil {
		t.Fatal(err)
	}
}

func TestBrokenDevice(t *testing.T) {
	for _, tc := range []struct {
		name  string
		panic bool
		wreck func(r *rig)
		// reason: the logged reason, when it matters (one line, naming
		// the queue and both PFNs), given queue 0's PFN.
		reason func(pfn uint32) string
	}{
		{"loop in the chain", false, func(r *rig) {
			ring := r.rings[0]
			ring.WriteDesc(ring.Desc, 0, 0x80000, 4, virtio.DescNext|virtio.DescWrite, 0)
			ring.Publish(0)
			r.drv.Notify(0)
		}, nil},
		{"avail idx jump", false, func(r *rig) {
			r.rings[0].SetAvailIdx(100)
			r.drv.Notify(0)
		}, nil},
		{"PFN rewritten while live", false, func(r *rig) {
			r.drv.SetQueue(0, r.pfns[0]+8)
		}, func(pfn uint32) string {
			return fmt.Sprintf("reason=\"virtqueue violation: queue 0: PFN %#x rewritten to %#x while DRIVER_OK\"\n", pfn, pfn+8)
		}},
		{"PFN zeroed while live", false, func(r *rig) {
			r.drv.SetQueue(1, 0)
		}, nil},
		// The device model's bug, not the guest's: no "virtqueue
		// violation", and the stack says where.
		{"device panics", true, func(r *rig) {
			r.pd.Kick()
		}, func(uint32) string {
			return `reason="queue 0: device model panicked: device bug" stack="goroutine `
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, newFakeDev())
			if _, err := r.drv.Attach(0, r.pfns); err != nil {
				t.Fatal(err)
			}
			r.dev.panics.Store(tc.panic)
			tc.wreck(r)
			deadline := time.Now().Add(virtiotest.Patience)
			for r.drv.Status()&virtio.StatusNeedsReset == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("status %#x: NEEDS_RESET never set", r.drv.Status())
				}
				time.Sleep(100 * time.Microsecond)
			}
			if !r.pd.Broken() {
				t.Error("Broken() = false")
			}
			waitLevel(t, r.irq, true)
			if isr := r.drv.ISR(); isr&virtio.ISRConfig == 0 {
				t.Errorf("ISR %#x: no configuration-change bit", isr)
			}
			// The driver ORing status bits keeps NEEDS_RESET.
			r.drv.Write8(virtio.RegStatus, 7)
			if r.drv.Status()&virtio.StatusNeedsReset == 0 {
				t.Error("NEEDS_RESET lost before a reset")
			}
			// Nothing is served until reset.
			other := r.rings[1]
			other.Publish(other.AddChain([]virtiotest.Buf{{Addr: 0x90000, Len: 4, Write: true}}))
			r.drv.Notify(1)
			r.pd.Serve() // as in TestKicksBeforeDriverOK: no wait
			if other.UsedIdx() != 0 {
				t.Error("broken device served a request")
			}
			// A reset brings it back.
			r.dev.panics.Store(false)
			for i, s := range r.dev.sizes {
				r.rings[i], _ = virtiotest.NewRing(r.mem, r.pfns[i], s)
			}
			if _, err := r.drv.Attach(0, r.pfns); err != nil {
				t.Fatal(err)
			}
			if r.drv.Status()&virtio.StatusNeedsReset != 0 || r.pd.Broken() {
				t.Fatal("still broken after reset")
			}
			if _, err := r.request(t, 1); err != nil {
				t.Fatalf("after reset: %v", err)
			}
			if n := strings.Count(r.log.String(), "needs reset"); n != 1 {
				t.Errorf("logged %d times, want once:\n%s", n, r.log.String())
			}
			if tc.panic && !strings.Contains(r.log.String(), "fakeDev).Process") {
				t.Errorf("the logged stack does not name the device's Process:\n%s", r.log.String())
			}
			if tc.reason != nil && !strings.Contains(r.log.String(), tc.reason(r.pfns[0])) {
				t.Errorf("log does not end its line with %s:\n%s", tc.reason(r.pfns[0]), r.log.String())
			}
		})
	}
}

func TestPFNOutsideMemory(t *testing.T) {
	r := newRig(t, newFakeDev())
	r.drv.SetStatus(virtio.StatusAcknowledge | virtio.StatusDriver)
	r.drv.SetQueue(0, memSize/4096) // the rings would start at the end of RAM
	if !r.pd.Broken() || r.drv.Status()&virtio.StatusNeedsReset == 0 {
		t.Fatalf("PFN outside memory accepted: status %#x", r.drv.Status())
	}
	if got := r.drv.Read32(virtio.RegQueuePFN); got != 0 {
		t.Errorf("PFN reads %#x, want 0 (queue left down)", got)
	}
}

func TestFeaturesAfterDriverOKIgnored(t *testing.T) {
	r := newRig(t, newFakeDev())
	if _, err := r.drv.Attach(0x1, r.pfns); err != nil {
		t.Fatal(err)
	}
	r.drv.Write32(virtio.RegGuestFeatures, 0x4)
	if got := r.drv.Read32(virtio.RegGuestFeatures); got != 0x1 {
		t.Errorf("guest features %#x after a write while live, want 0x1", got)
	}
	if r.pd.Broken() {
		t.Error("a late feature write broke the device")
	}
}

// TestNewPCIDeviceRejects: a device the legacy transport cannot present
// is refused with an error wrapping ErrInvalidDevice, among them a type
// whose legacy device ID (0x1000 + type - 1) is outside 0x1000-0x103F,
// which used to be accepted (type 0xFFFF wrapped to 1af4:0ffe, no virtio
// device ID).
func TestNewPCIDeviceRejects(t *testing.T) {
	mem := guestmem.New(make([]byte, 4096))
	for _, tc := range []struct {
		name string
		mod  func(f *fakeDev)
		want string // in the error
	}{
		{"queue size 0", func(f *fakeDev) { f.sizes = []uint16{0} }, "queue 0: queue size 0"},
		{"queue size not a power of two", func(f *fakeDev) { f.sizes = []uint16{16, 3} }, "queue 1: queue size 3"},
		{"no queues", func(f *fakeDev) { f.sizes = nil }, "0 queues"},
		{"EVENT_IDX offered", func(f *fakeDev) { f.features |= virtio.Bit(virtio.FeatureEventIdx) }, "EVENT_IDX"},
		{"type 0", func(f *fakeDev) { f.typ = 0 }, "virtio type 0: must be 1 to 64"},
		{"type 65", func(f *fakeDev) { f.typ = 65 }, "virtio type 65: must be 1 to 64"},
		{"type 0xFFFF", func(f *fakeDev) { f.typ = 0xFFFF }, "virtio type 65535: must be 1 to 64"},
		// The registers and the configuration space share BAR0, which as
		// an I/O BAR holds at most 256 bytes (PCI Local Bus spec 3.0,
		// 6.2.5.1): 20 of registers leave 236.
		{"config size 237", func(f *fakeDev) { f.cfgSize = 237 }, "virtio type 1: config size 237: must be 0 to 236"},
		{"config size 1000", func(f *fakeDev) { f.cfgSize = 1000 }, "config size 1000: must be 0 to 236"},
		{"config size -1", func(f *fakeDev) { f.cfgSize = -1 }, "config size -1: must be 0 to 236"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeDev()
			tc.mod(f)
			pd, err := virtio.NewPCIDevice(mem, f, nil, nil)
			if err == nil {
				pd.Close()
				t.Fatal("accepted")
			}
			if !errors.Is(err, virtio.ErrInvalidDevice) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q; want one wrapping ErrInvalidDevice, with %q", err, tc.want)
			}
		})
	}
	// The ends of the range are legacy device IDs 0x1000 and 0x103F.
	for _, typ := range []uint16{1, 64} {
		f := newFakeDev()
		f.typ = typ
		pd, err := virtio.NewPCIDevice(mem, f, nil, nil)
		if err != nil {
			t.Fatalf("type %d: %v", typ, err)
		}
		id := make([]byte, 2)
		pd.PCIConfig().Read(pci.RegDeviceID, id)
		if got, want := binary.LittleEndian.Uint16(id), 0x1000+typ-1; got != want {
			t.Errorf("type %d: device ID %#x, want %#x", typ, got, want)
		}
		pd.Close()
	}
	// The largest configuration space fills BAR0's 256 bytes.
	f := newFakeDev()
	f.cfgSize = 256 - virtio.RegConfig
	pd, err := virtio.NewPCIDevice(mem, f, nil, nil)
	if err != nil {
		t.Fatalf("config size %d: %v", f.cfgSize, err)
	}
	if _, size := pd.PCIConfig().BAR(0); size != 256 {
		t.Errorf("config size %d: BAR0 of %d bytes, want 256", f.cfgSize, size)
	}
	pd.Close()
}

func TestClose(t *testing.T) {
	f := newFakeDev()
	pd, err := virtio.NewPCIDevice(guestmem.New(make([]byte, 4096)), f, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pd.Close(); err != nil || !f.closed.Load() {
		t.Fatalf("Close: err %v, device closed %v", err, f.closed.Load())
	}
	if err := pd.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	pd.Kick() // must not block or panic after Close
}

// TestCloseWaitsForServe: Close closes the device model only once the
// request a Serve (the VMM's ioeventfd path) is serving is done, and a
// Serve left waiting for the worker lock when Close begins serves nothing.
// Before,
// Close waited for the worker goroutine alone and closed the device (a
// disk's image) under a Serve still in Process.
func TestCloseWaitsForServe(t *testing.T) {
	for _, tc := range []struct {
		name string
		// run starts serve and closing on goroutines, in the case's
		// order, and returns once both have begun.
		run  func(t *testing.T, pd *virtio.PCIDevice, dev *fakeDev, serve, closing func())
		hold bool // Process waits for dev.hold
	}{
		{"Close during Serve's Process", func(t *testing.T, pd *virtio.PCIDevice, dev *fakeDev, serve, closing func()) {
			go serve()
			<-dev.entered
			go closing()
		}, true},
		{"Serve waiting for the lock when Close begins", func(t *testing.T, pd *virtio.PCIDevice, dev *fakeDev, serve, closing func()) {
			resume := pd.Quiesce()
			go serve()
			if !waitForStack(10*time.Second, "sync.Mutex.Lock", "virtio.(*PCIDevice).Serve(") {
				t.Fatal("Serve never waited for the lock Quiesce holds")
			}
			go closing()
			// Close waits for the lock once it has begun (closed done
			// and seen the worker out).
			if !waitForStack(10*time.Second, "sync.Mutex.Lock", "virtio.(*PCIDevice).Close(") {
				t.Fatal("Close never waited for the lock Quiesce holds")
			}
			resume()
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev := newFakeDev()
			dev.sizes = []uint16{16}
			dev.entered = make(chan struct{}, 4)
			if tc.hold {
				dev.hold = make(chan struct{})
			}
			r := newRig(t, dev)
			if _, err := r.drv.Attach(0, r.pfns); err != nil {
				t.Fatal(err)
			}
			// DRIVER_OK kicked the worker: let it serve, then wait for it.
			<-dev.entered
			if tc.hold {
				dev.hold <- struct{}{}
			}
			r.pd.Quiesce()()

			served, closed := make(chan struct{}), make(chan struct{})
			tc.run(t, r.pd, dev, func() { r.pd.Serve(); close(served) }, func() { r.pd.Close(); close(closed) })
			if tc.hold {
				// Close either returns (wrong: Process still runs) or
				// waits for the lock Serve holds; nothing else ends this.
				for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
					if isClosed(closed) {
						t.Error("Close returned while Serve's Process was still running")
						break
					}
					if hasStack("sync.Mutex.Lock", "virtio.(*PCIDevice).Close(") {
						break
					}
					if time.Now().After(deadline) {
						t.Fatal("Close neither returned nor waited for the lock Serve holds")
					}
				}
				if dev.closed.Load() {
					t.Error("device closed while Serve's Process was still running")
				}
				close(dev.hold)
			}
			for what, c := range map[string]chan struct{}{"Serve": served, "Close": closed} {
				select {
				case <-c:
				case <-time.After(virtiotest.Patience):
					t.Fatalf("%s did not return", what)
				}
			}
			if n := len(dev.entered); n != 0 {
				t.Errorf("Process ran %d times after Close began", n)
			}
			if !dev.closed.Load() {
				t.Error("device not closed")
			}
		})
	}
}

// TestOtherDeviceUnaffected breaks one device with a corrupt ring while a
// second one, on its own transport and worker, keeps serving.
func TestOtherDeviceUnaffected(t *testing.T) {
	bad, good := newRig(t, newFakeDev()), newRig(t, newFakeDev())
	for _, r := range []*rig{bad, good} {
		if _, err := r.drv.Attach(0, r.pfns); err != nil {
			t.Fatal(err)
		}
	}
	bad.rings[0].SetAvailIdx(0x8000)
	bad.drv.Notify(0)
	for i := 0; i < 10; i++ {
		if n, err := good.request(t, i%2); err != nil || n != 32 {
			t.Fatalf("healthy device, request %d: used len %d err %v", i, n, err)
		}
	}
	deadline := time.Now().Add(virtiotest.Patience)
	for !bad.pd.Broken() {
		if time.Now().After(deadline) {
			t.Fatal("corrupt device not marked broken")
		}
		time.Sleep(100 * time.Microsecond)
	}
	if good.pd.Broken() {
		t.Fatal("healthy device marked broken")
	}
}

// TestServeInline checks the VMM's ioeventfd path: Serve processes the
// queues on the caller's goroutine (the used element is there when it
// returns, with the interrupt raised), and does nothing once closed.
func TestServeInline(t *testing.T) {
	r := newRig(t, newFakeDev())
	if _, err := r.drv.Attach(0x1000_0001, r.pfns); err != nil {
		t.Fatal(err)
	}
	ring := r.rings[0]
	ring.Publish(ring.AddChain([]virtiotest.Buf{{Addr: 0x80000, Len: 32, Write: true}}))
	r.pd.Serve()
	if got := ring.UsedIdx(); got != 1 {
		t.Fatalf("used idx %d right after Serve, want 1", got)
	}
	waitLevel(t, r.irq, true)
	r.pd.Close()
	ring.Publish(ring.AddChain([]virtiotest.Buf{{Addr: 0x81000, Len: 32, Write: true}}))
	r.pd.Serve()
	if got := ring.UsedIdx(); got != 1 {
		t.Fatalf("Serve after Close served a request (used idx %d)", got)
	}
}

// waitForStack waits, at most d, for a goroutine in state (the bracketed
// status of a stack dump, such as "[sync.Mutex.Lock") with frame in its
// stack, and reports whether one was seen.
func waitForStack(d time.Duration, state, frame string) bool {
	for deadline := time.Now().Add(d); !time.Now().After(deadline); time.Sleep(time.Millisecond) {
		if hasStack(state, frame) {
			return true
		}
	}
	return false
}

// hasStack reports whether a goroutine is in state with frame in its
// stack now.
func hasStack(state, frame string) bool {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	for n == len(buf) {
		buf = make([]byte, 2*len(buf))
		n = runtime.Stack(buf, true)
	}
	for _, g := range strings.Split(string(buf[:n]), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		if strings.Contains(header, " ["+state) && strings.Contains(g, frame) {
			return true
		}
	}
	return false
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
