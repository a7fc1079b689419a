package virtio_test

import (
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/bus"
	"github.com/smolvmm/smolvmm/pci"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

// pciRig is a rig whose device sits on a PCI host, so that the guest
// writes its command register as NetBSD does.
type pciRig struct {
	*rig
	pio  *bus.Bus
	host *pci.Host
	slot pci.Slot
}

func newPCIRig(t *testing.T) *pciRig {
	t.Helper()
	dev := newFakeDev()
	dev.sizes = []uint16{16}
	r := &pciRig{rig: newRig(t, dev), pio: bus.New("port")}
	r.host = pci.NewHost(r.pio)
	if err := r.pio.Register("pci", 0xCF8, 8, r.host); err != nil {
		t.Fatal(err)
	}
	var err error
	if r.slot, err = r.host.Add(r.pd, 10); err != nil {
		t.Fatal(err)
	}
	return r
}

// command writes the command register through configuration mechanism #1.
func (r *pciRig) command(v uint16) {
	var a [4]byte
	binary.LittleEndian.PutUint32(a[:], 0x80000000|uint32(r.slot.Device)<<11|pci.RegCommand)
	r.pio.Write(0xCF8, a[:])
	var b [2]byte
	binary.LittleEndian.PutUint16(b[:], v)
	r.pio.Write(0xCFC, b[:])
}

// statusInterrupt reads the PCI status register's interrupt status bit.
func (r *pciRig) statusInterrupt() bool {
	var b [2]byte
	r.pd.PCIConfig().Read(pci.RegStatus, b[:])
	return binary.LittleEndian.Uint16(b[:])&pci.StatusInterrupt != 0
}

// publish puts one writable buffer on queue 0 and notifies it.
func (r *pciRig) publish() {
	ring := r.rings[0]
	ring.Publish(ring.AddChain([]virtiotest.Buf{{Addr: 0x80000, Len: 8, Write: true}}))
	r.drv.Notify(0)
}

const (
	ioBM     = pci.CommandIO | pci.CommandBusMaster
	ioBMIntx = ioBM | pci.CommandIntxOff
)

// TestINTxDisable: while the guest has Interrupt Disable set, INTx stays
// low; the ISR and the interrupt status bit still say one is pending, and
// the line rises when the guest clears the bit with one pending.
func TestINTxDisable(t *testing.T) {
	tests := []struct {
		name    string
		before  uint16 // command when the request completes
		after   uint16 // then written
		readISR bool   // the guest reads (and clears) the ISR before it
		line    bool   // the line after
	}{
		{"disabled, then enabled", ioBMIntx, ioBM, false, true},
		{"disabled, ISR read, then enabled", ioBMIntx, ioBM, true, false},
		{"enabled, then disabled", ioBM, ioBMIntx, false, false},
		{"disabled, bus master toggled", ioBMIntx, pci.CommandIO | pci.CommandIntxOff, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newPCIRig(t)
			r.command(tt.before)
			if _, err := r.drv.Attach(0, r.pfns); err != nil {
				t.Fatal(err)
			}
			r.publish()
			if _, _, err := r.rings[0].WaitUsed(virtiotest.Patience); err != nil {
				t.Fatal(err)
			}
			// The used element is published before the interrupt is raised.
			for deadline := time.Now().Add(virtiotest.Patience); !r.statusInterrupt(); {
				if time.Now().After(deadline) {
					t.Fatal("interrupt status never set")
				}
				time.Sleep(100 * time.Microsecond)
			}
			if want := tt.before&pci.CommandIntxOff == 0; r.irq.Level() != want {
				t.Fatalf("line %v with command %#x, want %v", r.irq.Level(), tt.before, want)
			}
			if tt.readISR {
				if got := r.drv.ISR(); got != virtio.ISRQueue {
					t.Fatalf("ISR %#x, want %#x", got, virtio.ISRQueue)
				}
				if r.statusInterrupt() {
					t.Fatal("interrupt status still set after the ISR read")
				}
			}
			r.command(tt.after)
			if r.irq.Level() != tt.line {
				t.Fatalf("line %v after command %#x, want %v", r.irq.Level(), tt.after, tt.line)
			}
			if !tt.readISR {
				if !r.statusInterrupt() {
					t.Error("interrupt status lost")
				}
				if got := r.drv.ISR(); got != virtio.ISRQueue {
					t.Errorf("ISR %#x, want %#x", got, virtio.ISRQueue)
				}
			}
			if r.irq.Level() || r.statusInterrupt() {
				t.Error("line or interrupt status still up after the ISR read")
			}
		})
	}
}

// TestBusMaster: while the guest has Bus Master clear, the device serves
// no queue, whoever kicks it (a notify write, the VMM's ioeventfd reader
// or a restore); the kicks are kept, and served once the guest sets it.
func TestBusMaster(t *testing.T) {
	tests := []struct {
		name string
		kick func(r *pciRig)
	}{
		{"notify write", func(r *pciRig) { r.drv.Notify(0) }},
		{"Serve", func(r *pciRig) { r.pd.Serve() }},
		{"Kick", func(r *pciRig) { r.pd.Kick() }},
		{"restore", func(r *pciRig) {
			if err := r.pd.Restore(r.pd.State()); err != nil {
				t.Fatal(err)
			}
			r.pd.Start()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newPCIRig(t)
			r.command(pci.CommandIO) // what the firmware leaves
			if _, err := r.drv.Attach(0, r.pfns); err != nil {
				t.Fatal(err)
			}
			if r.pd.PCIConfig().Command()&pci.CommandBusMaster == 0 {
				t.Fatal("a driver's ACKNOWLEDGE|DRIVER did not turn bus mastering on")
			}
			r.command(pci.CommandIO)
			ring := r.rings[0]
			ring.Publish(ring.AddChain([]virtiotest.Buf{{Addr: 0x80000, Len: 8, Write: true}}))
			tt.kick(r)
			if _, _, err := ring.WaitUsed(100 * time.Millisecond); err == nil {
				t.Fatal("served a queue with bus mastering off")
			}
			r.command(pci.CommandIO) // another write, the bit still clear
			if _, _, err := ring.WaitUsed(50 * time.Millisecond); err == nil {
				t.Fatal("served a queue with bus mastering off")
			}
			r.command(ioBM)
			if _, n, err := ring.WaitUsed(virtiotest.Patience); err != nil || n != 8 {
				t.Fatalf("once bus mastering is on: used %d bytes, %v; want the kept request served", n, err)
			}
			waitLevel(t, r.irq, true)
		})
	}
}

// TestBusMasterOffWaits: the guest's write that clears Bus Master
// returns only once the request in flight is done: the device touches
// guest memory no more after it.
func TestBusMasterOffWaits(t *testing.T) {
	r := newPCIRig(t)
	r.dev.hold, r.dev.entered = make(chan struct{}), make(chan struct{}, 1)
	var release sync.Once
	free := func() { release.Do(func() { close(r.dev.hold) }) }
	defer free() // a failure must not leave the worker, and Close, waiting
	if _, err := r.drv.Attach(0, r.pfns); err != nil {
		t.Fatal(err)
	}
	r.publish()
	<-r.dev.entered
	done := make(chan struct{})
	go func() {
		r.command(pci.CommandIO)
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("the write clearing Bus Master returned while a request was in flight")
	case <-time.After(50 * time.Millisecond):
	}
	free()
	select {
	case <-done:
	case <-time.After(virtiotest.Patience):
		t.Fatal("the write clearing Bus Master never returned")
	}
	if _, _, err := r.rings[0].WaitUsed(virtiotest.Patience); err != nil {
		t.Fatalf("the request in flight was not completed: %v", err)
	}
}

// TestIODecodeOff: with I/O decode off, BAR0 answers nothing: reads float
// (the ISR is not read, so not cleared) and writes vanish.
func TestIODecodeOff(t *testing.T) {
	r := newPCIRig(t)
	if _, err := r.drv.Attach(0, r.pfns); err != nil {
		t.Fatal(err)
	}
	r.publish()
	waitLevel(t, r.irq, true)
	bar := r.slot.BARs[0]
	r.command(pci.CommandBusMaster)
	var b [1]byte
	if r.pio.Read(bar+virtio.RegISR, b[:]) || b[0] != 0xFF {
		t.Errorf("ISR read with I/O decode off: claimed, %#x", b[0])
	}
	r.pio.Write(bar+virtio.RegStatus, []byte{0})
	if r.drv.Status()&virtio.StatusDriverOK == 0 {
		t.Error("a status write with I/O decode off reset the device")
	}
	r.command(ioBM)
	if !r.pio.Read(bar+virtio.RegISR, b[:]) || b[0] != virtio.ISRQueue {
		t.Errorf("ISR read once I/O decode is on: %#x, want %#x", b[0], virtio.ISRQueue)
	}
}
