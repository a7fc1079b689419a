// Package pci is the PCI host: configuration mechanism #1 at ports
// 0xCF8-0xCFF, a host bridge at 00:00.0, and the firmware's job of placing
// I/O BARs and filling the interrupt line and pin of every function before
// the guest runs (NetBSD uses what it finds and never assigns them itself).
package pci

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/smolvmm/smolvmm/bus"
)

// Standard configuration header offsets.
const (
	RegVendorID      = 0x00
	RegDeviceID      = 0x02
	RegCommand       = 0x04
	RegStatus        = 0x06
	RegRevision      = 0x08
	RegClass         = 0x09 // programming interface, subclass, class
	RegCacheLine     = 0x0C
	RegLatency       = 0x0D
	RegHeaderType    = 0x0E
	RegBAR0          = 0x10
	RegSubsysVendor  = 0x2C
	RegSubsysID      = 0x2E
	RegInterruptLine = 0x3C
	RegInterruptPin  = 0x3D
)

// Command register bits a guest may set. The Host honours CommandIO: a
// function's I/O BARs decode only while it is set (the Host sets it when
// it places them, as firmware does). The others are the function's to
// honour (see CommandWatcher).
const (
	CommandIO        = 1 << 0
	CommandMemory    = 1 << 1
	CommandBusMaster = 1 << 2
	CommandIntxOff   = 1 << 10
)

// CommandWatcher is a Function that acts on its command register (bus
// mastering, interrupt disable). The Host calls CommandChanged, outside
// its lock, after a guest's configuration write or a Restore changed the
// register, with its old and new values; the register already holds the
// new one.
type CommandWatcher interface {
	// CommandChanged is told the command register's old and new values.
	CommandChanged(old, new uint16)
}

// Header is the identity of a type-0 function.
type Header struct {
	VendorID, DeviceID uint16 // the PCI IDs of the maker and the device
	Revision           uint8  // the device's revision ID
	// Class is class<<16 | subclass<<8 | programming interface.
	Class                          uint32
	SubsystemVendorID, SubsystemID uint16 // the subsystem's maker and ID
}

// Config is a type-0 configuration space: 256 bytes with the write masks a
// real device has. Functions embed one and the Host drives it.
type Config struct {
	mu      sync.Mutex
	space   [256]byte
	barSize [6]uint32 // 0 when the BAR is not implemented
	barIO   [6]bool
	sizing  [6]bool
}

// NewConfig returns a configuration space for h, with no BARs and no
// interrupt pin.
func NewConfig(h Header) *Config {
	c := &Config{}
	le := binary.LittleEndian
	le.PutUint16(c.space[RegVendorID:], h.VendorID)
	le.PutUint16(c.space[RegDeviceID:], h.DeviceID)
	c.space[RegRevision] = h.Revision
	c.space[RegClass] = uint8(h.Class)
	c.space[RegClass+1] = uint8(h.Class >> 8)
	c.space[RegClass+2] = uint8(h.Class >> 16)
	le.PutUint16(c.space[RegSubsysVendor:], h.SubsystemVendorID)
	le.PutUint16(c.space[RegSubsysID:], h.SubsystemID)
	return c
}

// AddIOBAR declares BAR i as an I/O BAR of size bytes (a power of two, at
// least 4). The Host gives it an address when the function is added.
func (c *Config) AddIOBAR(i int, size uint32) error {
	if i < 0 || i > 5 {
		return fmt.Errorf("pci: BAR index %d out of range 0-5", i)
	}
	if size < 4 || size&(size-1) != 0 || size > 256 {
		return fmt.Errorf("pci: BAR%d: I/O size %d must be a power of two from 4 to 256", i, size)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.barSize[i] = size
	c.barIO[i] = true
	binary.LittleEndian.PutUint32(c.space[RegBAR0+4*i:], 1)
	return nil
}

// BAR returns the address BAR i holds (0 when unassigned or unused) and
// its size. It decodes there only while the command register has
// CommandIO set, and not when the guest moved it over another device
// (Host.OnBARMove reports where it decodes).
func (c *Config) BAR(i int) (addr uint64, size uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.barAddr(i), c.barSize[i]
}

func (c *Config) barAddr(i int) uint64 {
	v := binary.LittleEndian.Uint32(c.space[RegBAR0+4*i:])
	if c.barIO[i] {
		return uint64(v &^ 3)
	}
	return uint64(v &^ 0xF)
}

// addrMask is the address bits of BAR i's register. Caller holds c.mu.
func (c *Config) addrMask(i int) uint32 {
	mask := ^(c.barSize[i] - 1)
	if c.barIO[i] {
		mask &^= 3
	}
	return mask
}

func (c *Config) setBAR(i int, addr uint64) {
	v := uint32(addr)
	if c.barIO[i] {
		v |= 1
	}
	binary.LittleEndian.PutUint32(c.space[RegBAR0+4*i:], v)
}

// Command returns the command register.
func (c *Config) Command() uint16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return binary.LittleEndian.Uint16(c.space[RegCommand:])
}

// EnableBusMaster sets the command register's Bus Master bit, for a
// device that turns it on for a driver that drives it without doing so
// (as QEMU's legacy virtio does for old Linux drivers).
func (c *Config) EnableBusMaster() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.space[RegCommand] |= CommandBusMaster
}

// InterruptLine returns the IRQ the firmware (the Host) assigned.
func (c *Config) InterruptLine() uint8 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.space[RegInterruptLine]
}

func (c *Config) setInterrupt(line, pin uint8) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.space[RegInterruptLine] = line
	c.space[RegInterruptPin] = pin
}

// SetStatusBit sets bits in the status register (interrupt status, bit 3,
// for INTx devices).
func (c *Config) SetStatusBit(mask uint16, on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := binary.LittleEndian.Uint16(c.space[RegStatus:])
	if on {
		v |= mask
	} else {
		v &^= mask
	}
	binary.LittleEndian.PutUint16(c.space[RegStatus:], v)
}

// Read copies len(data) bytes of configuration space at off into data.
// Bytes past 256 read as ones.
func (c *Config) Read(off int, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range data {
		o := off + i
		switch {
		case o < 0 || o >= len(c.space):
			data[i] = 0xFF
		case o >= RegBAR0 && o < RegBAR0+24 && c.sizing[(o-RegBAR0)/4]:
			b := (o - RegBAR0) / 4
			mask := ^(c.barSize[b] - 1)
			if c.barIO[b] {
				mask = mask&^3 | 1
			}
			data[i] = uint8(mask >> (8 * ((o - RegBAR0) % 4)))
		default:
			data[i] = c.space[o]
		}
	}
}

// write applies a guest write and reports which BARs changed address, and
// the command register before and after it.
func (c *Config) write(off int, data []byte) (moved []barMove, oldCmd, newCmd uint16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	oldCmd = binary.LittleEndian.Uint16(c.space[RegCommand:])
	defer func() { newCmd = binary.LittleEndian.Uint16(c.space[RegCommand:]) }()
	touched := [6]bool{}
	var old [6]uint64
	for b := 0; b < 6; b++ {
		old[b] = c.barAddr(b)
	}
	for i, v := range data {
		o := off + i
		switch {
		case o == RegCommand:
			c.space[o] = v & (CommandIO | CommandMemory | CommandBusMaster | 0x40) // + parity
		case o == RegCommand+1:
			c.space[o] = v & (CommandIntxOff>>8 | 0x01) // INTx disable, SERR#
		case o == RegCacheLine || o == RegLatency || o == RegInterruptLine:
			c.space[o] = v
		case o >= RegBAR0 && o < RegBAR0+24:
			b := (o - RegBAR0) / 4
			if c.barSize[b] == 0 {
				continue
			}
			c.space[o] = v
			touched[b] = true
		}
	}
	for b := 0; b < 6; b++ {
		if !touched[b] {
			continue
		}
		raw := binary.LittleEndian.Uint32(c.space[RegBAR0+4*b:])
		mask := c.addrMask(b)
		if raw&mask == mask {
			// Sizing: the guest wrote all ones and will read the size
			// mask back, then restore the address. Keep decoding the old
			// address meanwhile.
			c.sizing[b] = true
			c.setBAR(b, old[b])
			continue
		}
		c.sizing[b] = false
		addr := uint64(raw & mask)
		c.setBAR(b, addr)
		if addr != old[b] {
			moved = append(moved, barMove{bar: b, old: old[b], new: addr})
		}
	}
	return moved, oldCmd, newCmd
}

type barMove struct {
	bar      int
	old, new uint64
}

// Function is a PCI function: a configuration space and the devices behind
// its BARs.
type Function interface {
	// PCIConfig returns the function's configuration space.
	PCIConfig() *Config
	// BARDevice returns the device that serves BAR i, or nil.
	BARDevice(i int) bus.Device
}

// Slot is where a function was placed and what it was given.
type Slot struct {
	Device  int       // device number on bus 0
	IRQLine uint8     // the legacy IRQ its INTx is routed to, 0 for none
	BARs    [6]uint64 // each BAR's port address; 0 for a BAR not declared
}

// Host is the host bridge and configuration mechanism #1. Register it on the
// port bus at 0xCF8 with size 8.
type Host struct {
	mu     sync.Mutex
	pio    *bus.Bus
	addr   uint32
	funcs  [Slots]Function
	next   int
	nextIO uint64
	// decoded is where each function's BARs are registered on the port
	// bus: a BAR's configured address is not, when the guest moved it
	// over another device.
	decoded [Slots][6]struct {
		base uint64
		on   bool
	}

	// OnBARMove, when set, is called after a guest moved an I/O BAR (the
	// machine uses it to move ioeventfds). new is NoAddress when the BAR
	// landed on another device and decodes nothing. A guest clearing
	// CommandIO is reported as each decoded BAR leaving for NoAddress,
	// and setting it as each BAR that then decodes arriving where it is
	// (old == new). A BAR moved while CommandIO is clear is reported
	// only when it decodes again. Restore calls it too, for every BAR
	// leaving a decoded place (new NoAddress) before any arriving at its
	// new one.
	OnBARMove func(fn Function, bar int, old, new uint64)

	// ResetControl, when set, serves byte accesses to port 0xCF9, the
	// chipset's reset control register, which sits inside the
	// configuration mechanism's port range.
	ResetControl bus.Device
}

// IOBase is where the Host starts placing I/O BARs, above every legacy ISA
// port.
const IOBase = 0xC000

// NoAddress is the new address OnBARMove reports for a BAR the guest moved
// over another device: it then decodes nothing.
const NoAddress = ^uint64(0)

// Slots is the number of devices bus 0 holds, the host bridge at 00:00.0
// among them: one function each.
const Slots = 32

// NewHost returns a host with a host bridge at 00:00.0 whose functions' I/O
// BARs are registered on pio.
func NewHost(pio *bus.Bus) *Host {
	h := &Host{pio: pio, nextIO: IOBase, next: 1}
	h.funcs[0] = &hostBridge{cfg: NewConfig(Header{
		VendorID: 0x1B36, DeviceID: 0x0008, // Red Hat generic PCIe host bridge ID
		Class: 0x060000,
	})}
	return h
}

// ErrISAIRQ is matched by Add's refusal of an interrupt line an ISA
// device uses: a PCI function here takes 5, 9, 10 or 11 (or 0, none).
var ErrISAIRQ = errors.New("IRQ used by ISA devices")

// Add places fn in the next free slot of bus 0, assigns its I/O BARs and
// registers them on the port bus, and fills interrupt line irq with pin
// INTA (irq 0 means no interrupt). NetBSD refuses to share an ISA edge IRQ
// with a level-triggered PCI handler, so irq must be one no ISA device uses.
// A refused Add changes nothing: no BAR is left on the port bus or in fn's
// configuration space, so fn may be added again once the fault is fixed.
func (h *Host) Add(fn Function, irq uint8) (Slot, error) {
	switch irq {
	case 0, 5, 9, 10, 11:
	default:
		return Slot{}, fmt.Errorf("pci: %w: IRQ %d (the lines free of them are 5, 9, 10 and 11)", ErrISAIRQ, irq)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.next >= len(h.funcs) {
		return Slot{}, fmt.Errorf("pci: bus 0 is full (%d devices)", Slots)
	}
	cfg := fn.PCIConfig()
	s := Slot{Device: h.next, IRQLine: irq}
	// Place every BAR before touching anything, so that a refusal at a
	// later BAR leaves no earlier one behind.
	type placed struct {
		name string
		size uint64
		dev  bus.Device
	}
	var bars [6]placed
	nextIO := h.nextIO
	for b := 0; b < 6; b++ {
		_, size := cfg.BAR(b)
		if size == 0 {
			continue
		}
		dev := fn.BARDevice(b)
		if dev == nil {
			return Slot{}, fmt.Errorf("pci: BAR%d declared without a device", b)
		}
		sz := uint64(size)
		base := (nextIO + sz - 1) &^ (sz - 1)
		if base+sz > 0x10000 {
			return Slot{}, fmt.Errorf("pci: out of I/O space for BAR%d", b)
		}
		if r := h.pio.Overlapping(base, sz); len(r) != 0 {
			return Slot{}, fmt.Errorf("pci: BAR%d at [%#x, %#x) overlaps %s at [%#x, %#x)",
				b, base, base+sz, r[0].Name, r[0].Base, r[0].Base+r[0].Size)
		}
		bars[b] = placed{barName(h.next, b), sz, dev}
		s.BARs[b] = base
		nextIO = base + sz
	}
	for b, p := range bars {
		if p.dev == nil {
			continue
		}
		if err := h.pio.Register(p.name, s.BARs[b], p.size, p.dev); err != nil {
			// Another user of the bus took the range since the check.
			for u := range b {
				if bars[u].dev != nil {
					h.pio.Unregister(s.BARs[u])
				}
			}
			return Slot{}, fmt.Errorf("pci: BAR%d: %w", b, err)
		}
	}
	cfg.mu.Lock()
	for b, p := range bars {
		if p.dev == nil {
			continue
		}
		cfg.setBAR(b, s.BARs[b])
		// Firmware enables the decoding of what it placed.
		cfg.space[RegCommand] |= CommandIO
		h.decoded[h.next][b].base, h.decoded[h.next][b].on = s.BARs[b], true
	}
	cfg.mu.Unlock()
	h.nextIO = nextIO
	pin := uint8(1)
	if irq == 0 {
		pin = 0
	}
	cfg.setInterrupt(irq, pin)
	h.funcs[h.next] = fn
	h.next++
	return s, nil
}

// Read serves the guest's accesses to 0xCF8-0xCFF.
func (h *Host) Read(off uint64, data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if off == 1 && len(data) == 1 && h.ResetControl != nil {
		h.ResetControl.Read(0, data)
		return
	}
	if off < 4 {
		// Only a full 32-bit read of 0xCF8 returns the address latch;
		// byte and word reads of 0xCF8-0xCFB belong to other
		// mechanisms (0xCF9 is the reset control register).
		if off == 0 && len(data) == 4 {
			binary.LittleEndian.PutUint32(data, h.addr)
			return
		}
		bus.Float(data)
		return
	}
	fn, reg, ok := h.selected()
	if !ok {
		bus.Float(data)
		return
	}
	fn.PCIConfig().Read(reg+int(off-4), data)
}

// Write serves the guest's accesses to 0xCF8-0xCFF.
func (h *Host) Write(off uint64, data []byte) {
	if off == 1 && len(data) == 1 && h.ResetControl != nil {
		h.ResetControl.Write(0, data)
		return
	}
	w := h.write(off, data)
	if h.OnBARMove != nil {
		for _, m := range w.moved {
			h.OnBARMove(w.fn, m.bar, m.old, m.new)
		}
	}
	if cw, ok := w.fn.(CommandWatcher); ok && w.oldCmd != w.newCmd {
		cw.CommandChanged(w.oldCmd, w.newCmd)
	}
}

// written is what a configuration write changed, for the hooks.
type written struct {
	fn             Function
	moved          []barMove
	oldCmd, newCmd uint16
}

// write applies a guest write under the lock and returns the BARs it moved
// to a new place on the port bus, or on or off it, and the command
// register's change (the hooks run after the lock is released).
func (h *Host) write(off uint64, data []byte) written {
	h.mu.Lock()
	defer h.mu.Unlock()
	if off < 4 {
		// Byte and word writes to 0xCF8-0xCFB must leave the latched
		// address alone: NetBSD's mechanism #1 detection checks that.
		if off == 0 && len(data) == 4 {
			h.addr = binary.LittleEndian.Uint32(data) & 0x80FFFFFC
		}
		return written{}
	}
	fn, reg, ok := h.selected()
	if !ok {
		return written{}
	}
	slot := int(h.addr>>11) & 0x1F
	cfg := fn.PCIConfig()
	moved, oldCmd, newCmd := cfg.write(reg+int(off-4), data)
	w := written{fn: fn, oldCmd: oldCmd, newCmd: newCmd}
	io := newCmd&CommandIO != 0
	for _, m := range moved {
		// Only the range this BAR holds comes off the bus: its old
		// address may be another device's, which it failed to take.
		d := &h.decoded[slot][m.bar]
		if d.on {
			h.pio.Unregister(d.base)
			d.on = false
			if !io {
				w.moved = append(w.moved, barMove{bar: m.bar, old: d.base, new: NoAddress})
			}
		}
		if !io {
			continue // it decodes where it is once I/O decode is on
		}
		if !h.decode(slot, fn, m.bar, m.new) {
			// The guest moved a BAR over another device: leave it
			// undecoded, as a conflicting real device would be.
			m.new = NoAddress
		}
		w.moved = append(w.moved, m)
	}
	switch {
	case oldCmd&CommandIO != 0 && !io:
		for b := range 6 {
			if d := &h.decoded[slot][b]; d.on {
				h.pio.Unregister(d.base)
				d.on = false
				w.moved = append(w.moved, barMove{bar: b, old: d.base, new: NoAddress})
			}
		}
	case oldCmd&CommandIO == 0 && io:
		// Each BAR tries its place anew, one that had landed on
		// another device included.
		for b := range 6 {
			addr, size := cfg.BAR(b)
			if size != 0 && !h.decoded[slot][b].on && h.decode(slot, fn, b, addr) {
				w.moved = append(w.moved, barMove{bar: b, old: addr, new: addr})
			}
		}
	}
	return w
}

// decode puts BAR bar of fn, in slot, on the port bus at addr, and reports
// whether the range was free. Caller holds h.mu.
func (h *Host) decode(slot int, fn Function, bar int, addr uint64) bool {
	_, size := fn.PCIConfig().BAR(bar)
	if err := h.pio.Register(barName(slot, bar), addr, uint64(size), fn.BARDevice(bar)); err != nil {
		return false
	}
	d := &h.decoded[slot][bar]
	d.base, d.on = addr, true
	return true
}

// barName is the port bus's name for BAR bar of the function in slot,
// however the BAR got its place (Add, the guest, Restore): overlap errors
// and bus.Overlapping then say whose it is.
func barName(slot, bar int) string { return fmt.Sprintf("pci 00:%02x.0 BAR%d", slot, bar) }

// selected returns the function and register the address latch names.
// Caller holds h.mu.
func (h *Host) selected() (Function, int, bool) {
	a := h.addr
	if a&0x80000000 == 0 {
		return nil, 0, false
	}
	busNo := (a >> 16) & 0xFF
	dev := (a >> 11) & 0x1F
	fnNo := (a >> 8) & 0x7
	if busNo != 0 || fnNo != 0 || h.funcs[dev] == nil {
		return nil, 0, false
	}
	return h.funcs[dev], int(a & 0xFC), true
}

type hostBridge struct{ cfg *Config }

func (b *hostBridge) PCIConfig() *Config       { return b.cfg }
func (b *hostBridge) BARDevice(int) bus.Device { return nil }
