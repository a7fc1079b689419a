package vmm

import (
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/smolvmm/smolvmm/bus"
)

// DeviceBus is one of the machine's buses (PortBus, MMIOBus) as a caller
// adds its own devices to it. It refuses a range the guest can never
// reach there, whose device would never be called: KVM serves some
// addresses itself, and guest RAM is memory, not a bus.
type DeviceBus struct {
	m    *Machine
	b    *bus.Bus
	mmio bool

	mu  sync.Mutex
	own map[uint64]bool // bases the caller registered here
}

// Register maps [base, base+size) to dev, as bus.Bus.Register does (an
// empty, overflowing or overlapping range is refused), and refuses with
// ErrConfig a range the guest cannot reach: ports past 0xFFFF, or those
// of KVM's PIC (0x20-0x21, 0xA0-0xA1, 0x4D0-0x4D1) and PIT (0x40-0x43,
// 0x61); on the MMIO bus, guest RAM (all below the memory size but the
// VGA window 0xA0000-0xBFFFF), KVM's I/O APIC (0xFEC00000-0xFEC000FF),
// local APIC (0xFEE00000-0xFEE00FFF) and TSS pages
// (0xFFFBC000-0xFFFBFFFF), and addresses past 52 bits. dev is called on
// the vCPU thread; a panic in it stops the machine, and Run returns it,
// a *PanicError in an *Error whose Op names the device ("MMIO device
// NAME"); dev is not called again, and its reads are then all ones.
func (d *DeviceBus) Register(name string, base, size uint64, dev bus.Device) error {
	return d.register(name, base, size, dev, d.b.Register)
}

// RegisterClipped is Register for a device that also takes an access
// which starts in its range and runs past its end (bus.Bus.RegisterClipped).
func (d *DeviceBus) RegisterClipped(name string, base, size uint64, dev bus.Device) error {
	return d.register(name, base, size, dev, d.b.RegisterClipped)
}

func (d *DeviceBus) register(name string, base, size uint64, dev bus.Device, reg func(string, uint64, uint64, bus.Device) error) error {
	kind := "port"
	if d.mmio {
		kind = "MMIO"
	}
	if size != 0 && base+size >= base {
		if what := d.unreachable(base, size); what != "" {
			return &Error{Op: "register " + name, Err: fmt.Errorf("%s range [%#x, %#x) %s: the guest's accesses there never reach this bus: %w",
				kind, base, base+size, what, ErrConfig)}
		}
	}
	g := &guardedDevice{m: d.m, op: kind + " device " + name, dev: dev}
	if err := reg(name, base, size, g); err != nil {
		return &Error{Op: "register " + name, Err: err}
	}
	d.mu.Lock()
	d.own[base] = true
	d.mu.Unlock()
	return nil
}

// Unregister removes the range at base that the caller registered, and
// reports whether there was one; the machine's own devices stay.
func (d *DeviceBus) Unregister(base uint64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.own[base] {
		return false
	}
	delete(d.own, base)
	return d.b.Unregister(base)
}

// Overlapping returns the registered ranges, the machine's included,
// that overlap [base, base+size), in address order.
func (d *DeviceBus) Overlapping(base, size uint64) []bus.Range {
	return d.b.Overlapping(base, size)
}

// span is a range of addresses a caller's device cannot have, and what
// is there.
type span struct {
	start, end uint64 // [start, end)
	what       string
}

// kvmPorts are the ports KVM's in-kernel devices serve: an access there
// never leaves the kernel.
var kvmPorts = []span{
	{0x20, 0x22, "KVM's PIC"},
	{0x40, 0x44, "KVM's PIT"},
	{0x61, 0x62, "KVM's PIT (speaker port)"},
	{0xA0, 0xA2, "KVM's PIC"},
	{0x4D0, 0x4D2, "KVM's PIC (ELCR)"},
}

// kvmMMIO are the guest-physical addresses KVM serves itself.
var kvmMMIO = []span{
	{0xFEC00000, 0xFEC00100, "KVM's I/O APIC"},
	{0xFEE00000, 0xFEE01000, "KVM's local APIC"},
	{0xFFFBC000, 0xFFFC0000, "KVM's TSS and identity map pages"},
}

// maxPhysAddr is the architectural bound of x86 physical addresses.
const maxPhysAddr = 1 << 52

// unreachable says what stands in the way of [base, base+size) on the
// bus, "" when the guest can reach it.
func (d *DeviceBus) unreachable(base, size uint64) string {
	end := base + size
	if !d.mmio {
		if end > 0x10000 {
			return "is past the 16-bit port space"
		}
		return overlaps(base, end, kvmPorts)
	}
	if end > maxPhysAddr {
		return "is past the 52-bit physical address space"
	}
	// RAM is in two slots around the VGA window (useMemory).
	ram := []span{{0, vgaStart, "guest RAM"}, {vgaEnd, d.m.gmem.Size(), "guest RAM"}}
	if w := overlaps(base, end, ram); w != "" {
		return w
	}
	return overlaps(base, end, kvmMMIO)
}

// overlaps returns what the first of spans that [base, end) overlaps
// holds, "" for none.
func overlaps(base, end uint64, spans []span) string {
	for _, s := range spans {
		if base < s.end && s.start < end {
			return fmt.Sprintf("overlaps %s [%#x, %#x)", s.what, s.start, s.end)
		}
	}
	return ""
}

// guardedDevice is a caller's device on a DeviceBus, which the vCPU
// thread calls: its panic would unwind the run loop, and Run, past
// Run's cleanup (the input pump left reading the program's input). The
// panic stops the machine instead, and Run returns it (a *PanicError in
// an *Error whose Op names the device); the device is not called again,
// its reads then all ones, as an unclaimed access's.
type guardedDevice struct {
	m      *Machine
	op     string // "port device NAME"
	dev    bus.Device
	failed atomic.Bool
}

// Read calls the device's Read unless it panicked.
func (g *guardedDevice) Read(offset uint64, data []byte) {
	if !g.call("Read", func() { g.dev.Read(offset, data) }) {
		for i := range data {
			data[i] = 0xFF
		}
	}
}

// Write calls the device's Write unless it panicked.
func (g *guardedDevice) Write(offset uint64, data []byte) {
	g.call("Write", func() { g.dev.Write(offset, data) })
}

// call runs f, the device's method what, and reports whether it
// returned: false once the device panicked.
func (g *guardedDevice) call(what string, f func()) (ok bool) {
	if g.failed.Load() {
		return false
	}
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		ok = false
		g.failed.Store(true)
		pe := &PanicError{Call: g.op + "'s " + what, Value: r, Stack: debug.Stack()}
		g.m.callbackPanic(g.op, "", pe) // machine.go
	}()
	f()
	return true
}
