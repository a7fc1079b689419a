package pci

import (
	"encoding/binary"
	"fmt"
)

// FunctionState is one function's configuration space, for snapshots.
type FunctionState struct {
	Device int     // the function's device number on bus 0
	Space  []byte  // its 256 bytes of configuration space
	Sizing [6]bool // for each BAR, whether the guest is sizing it (wrote all ones)
	// Decoding says which BARs are on the port bus. A BAR the guest
	// moved over another device decodes nothing, even once that device
	// moved away (until the guest moves it, or turns I/O decode off and
	// on), so its address alone does not tell. State records a BAR
	// decoding only while the command register has CommandIO set, and
	// Restore refuses a state that says one decodes with it clear.
	Decoding [6]bool
}

// HostState is the host's address latch and every function's
// configuration space, BAR placement included.
type HostState struct {
	Addr      uint32          // the configuration address register (0xCF8)
	Functions []FunctionState // the functions, in device order
}

// State returns the host's state.
func (h *Host) State() HostState {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := HostState{Addr: h.addr}
	for i, fn := range h.funcs {
		if fn == nil {
			continue
		}
		c := fn.PCIConfig()
		c.mu.Lock()
		f := FunctionState{Device: i, Space: append([]byte(nil), c.space[:]...), Sizing: c.sizing}
		c.mu.Unlock()
		for b, d := range h.decoded[i] {
			f.Decoding[b] = d.on
		}
		s.Functions = append(s.Functions, f)
	}
	return s
}

// Restore sets the state of a host built with the same functions in the
// same slots as the one State was taken from. A function's configuration
// space may differ from this machine's only in what a guest can write
// (command bits, cache line, latency, interrupt line, implemented BARs at
// an address aligned to their size) and in the interrupt status bit its
// device drives; the BARs it has decoding must fit on the port bus
// together, as a guest's moves leave them. Anything else (another
// device, a corrupt file) is refused, naming the slot and register,
// before anything is applied. BARs whose address or decoding changed
// are moved on the port bus too, and reported to OnBARMove: first each
// that left a decoded place or decodes nothing (new NoAddress), then
// each that decodes at its new place, so that a BAR moved from one
// decoded place to another is reported twice. A state that has a BAR
// decoding with CommandIO clear in its command register, which State
// never records, is refused. Last, each CommandWatcher whose command
// register changed is told, so a device follows the restored bus
// mastering and interrupt disable bits.
func (h *Host) Restore(s HostState) error {
	h.mu.Lock()
	if err := h.checkState(s); err != nil {
		h.mu.Unlock()
		return err
	}
	type was struct {
		addr uint64
		on   bool
	}
	var before [32][6]was
	type cmdChange struct {
		w        CommandWatcher
		old, new uint16
	}
	var cmds []cmdChange
	// Every BAR leaves its place before any takes its new one: a guest
	// may have swapped two, and the result must not depend on the order
	// of the slots.
	for _, f := range s.Functions {
		c := h.funcs[f.Device].PCIConfig()
		c.mu.Lock()
		for b := range 6 {
			before[f.Device][b] = was{c.barAddr(b), h.decoded[f.Device][b].on}
		}
		oldCmd := binary.LittleEndian.Uint16(c.space[RegCommand:])
		copy(c.space[:], f.Space)
		c.sizing = f.Sizing
		if w, ok := h.funcs[f.Device].(CommandWatcher); ok && oldCmd != f.command() {
			cmds = append(cmds, cmdChange{w, oldCmd, f.command()})
		}
		for b := range 6 {
			d := &h.decoded[f.Device][b]
			if d.on && (!f.Decoding[b] || d.base != c.barAddr(b)) {
				h.pio.Unregister(d.base)
				d.on = false
			}
		}
		c.mu.Unlock()
	}
	type move struct {
		fn       Function
		bar      int
		old, new uint64
	}
	// Reported as the bus changed: every BAR that left its place goes
	// undecoded first, then each that decodes anew arrives, so that a
	// hook following them one at a time (ioeventfds) never has two at
	// one address.
	var leaving, arriving []move
	for _, f := range s.Functions {
		fn := h.funcs[f.Device]
		c := fn.PCIConfig()
		c.mu.Lock()
		for b := range 6 {
			if c.barSize[b] == 0 {
				continue
			}
			d := &h.decoded[f.Device][b]
			nw := c.barAddr(b)
			if f.Decoding[b] && !d.on {
				// checkState found the range free: an error is not
				// reached, and would leave the BAR undecoded.
				if h.pio.Register(barName(f.Device, b), nw, uint64(c.barSize[b]), fn.BARDevice(b)) == nil {
					d.base, d.on = nw, true
				}
			}
			if !d.on {
				nw = NoAddress
			}
			w := before[f.Device][b]
			if w.addr == c.barAddr(b) && w.on == d.on {
				continue
			}
			if w.on || !d.on {
				leaving = append(leaving, move{fn, b, w.addr, NoAddress})
			}
			if d.on {
				arriving = append(arriving, move{fn, b, w.addr, nw})
			}
		}
		c.mu.Unlock()
	}
	h.addr = s.Addr
	h.mu.Unlock()
	if h.OnBARMove != nil {
		for _, m := range append(leaving, arriving...) {
			h.OnBARMove(m.fn, m.bar, m.old, m.new)
		}
	}
	for _, c := range cmds {
		c.w.CommandChanged(c.old, c.new)
	}
	return nil
}

// command is the command register f.Space holds (256 bytes, checked).
func (f FunctionState) command() uint16 {
	return binary.LittleEndian.Uint16(f.Space[RegCommand:])
}

// CheckState refuses what Restore refuses, changing nothing: a machine
// checks every device's state before it restores any.
func (h *Host) CheckState(s HostState) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.checkState(s)
}

// addrMask is what the address latch keeps of a write.
const addrMask = 0x80FFFFFC

// checkState refuses s unless every function it names is this machine's,
// once, and holds a space its guest could have written. Caller holds
// h.mu.
func (h *Host) checkState(s HostState) error {
	if s.Addr&^addrMask != 0 {
		return fmt.Errorf("pci: address latch %#x has bits outside %#x", s.Addr, uint32(addrMask))
	}
	var seen [32]bool
	for _, f := range s.Functions {
		if f.Device < 0 || f.Device >= len(h.funcs) || h.funcs[f.Device] == nil {
			return fmt.Errorf("pci: snapshot has a function in slot %d, this machine has none there", f.Device)
		}
		if seen[f.Device] {
			return fmt.Errorf("pci: snapshot has slot %d twice", f.Device)
		}
		seen[f.Device] = true
		if len(f.Space) != 256 {
			return fmt.Errorf("pci: slot %d: configuration space of %d bytes, want 256", f.Device, len(f.Space))
		}
		c := h.funcs[f.Device].PCIConfig()
		c.mu.Lock()
		id := string(c.space[:RegCommand])
		c.mu.Unlock()
		if id != string(f.Space[:RegCommand]) {
			return fmt.Errorf("pci: slot %d holds device %x, the snapshot's is %x", f.Device, id, f.Space[:RegCommand])
		}
		if err := c.check(f); err != nil {
			return fmt.Errorf("pci: slot %d: %w", f.Device, err)
		}
	}
	return h.checkDecoding(s)
}

// checkDecoding refuses s unless the BARs it has decoding fit on the
// port bus together: each range one takes anew must be free but for the
// BARs the restore takes off, and apart from the others it takes. A
// guest's move onto a taken range leaves the BAR undecoded. Caller holds
// h.mu, and checkState has checked each function.
func (h *Host) checkDecoding(s HostState) error {
	type placed struct {
		slot, bar  int
		base, size uint64
	}
	leaving := map[uint64]bool{}
	var taking []placed
	for _, f := range s.Functions {
		c := h.funcs[f.Device].PCIConfig()
		c.mu.Lock()
		for b := range 6 {
			if c.barSize[b] == 0 {
				continue
			}
			addr := uint64(binary.LittleEndian.Uint32(f.Space[RegBAR0+4*b:]) & c.addrMask(b))
			d := h.decoded[f.Device][b]
			stays := d.on && f.Decoding[b] && d.base == addr
			if d.on && !stays {
				leaving[d.base] = true
			}
			if f.Decoding[b] && !stays {
				taking = append(taking, placed{f.Device, b, addr, uint64(c.barSize[b])})
			}
		}
		c.mu.Unlock()
	}
	for i, p := range taking {
		for _, r := range h.pio.Overlapping(p.base, p.size) {
			if !leaving[r.Base] {
				return fmt.Errorf("pci: slot %d: BAR%d decoding at [%#x, %#x), over %s at [%#x, %#x): a BAR a guest moves over another device decodes nothing",
					p.slot, p.bar, p.base, p.base+p.size, r.Name, r.Base, r.Base+r.Size)
			}
		}
		for _, q := range taking[:i] {
			if p.base < q.base+q.size && q.base < p.base+p.size {
				return fmt.Errorf("pci: slot %d: BAR%d decoding at [%#x, %#x), over slot %d's BAR%d at [%#x, %#x): a BAR a guest moves over another device decodes nothing",
					p.slot, p.bar, p.base, p.base+p.size, q.slot, q.bar, q.base, q.base+q.size)
			}
		}
	}
	return nil
}

// StatusInterrupt is the status register's interrupt status bit, which an
// INTx device drives (SetStatusBit) and a restore may find either way.
const StatusInterrupt = 1 << 3

// writable returns the bits of the byte at o that a guest's write (or,
// for the status register, the device) can change; BAR bytes are checked
// on their own. Caller holds c.mu.
func (c *Config) writable(o int) uint8 {
	switch o {
	case RegCommand:
		return CommandIO | CommandMemory | CommandBusMaster | 0x40
	case RegCommand + 1:
		return CommandIntxOff>>8 | 0x01
	case RegStatus:
		return StatusInterrupt
	case RegCacheLine, RegLatency, RegInterruptLine:
		return 0xFF
	}
	if o >= RegBAR0 && o < RegBAR0+24 && c.barSize[(o-RegBAR0)/4] != 0 {
		return 0xFF
	}
	return 0
}

// check refuses a function's state whose space differs from c's where no
// guest writes, whose BARs are not aligned as a guest's writes leave
// them or hold the size probe, or that is sizing or decoding a BAR c does
// not have, or decoding one with I/O decode off.
// It takes c.mu.
func (c *Config) check(f FunctionState) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for o, v := range f.Space {
		if (v^c.space[o])&^c.writable(o) != 0 {
			return fmt.Errorf("register %#x is %#x in the snapshot, %#x here, and not one a guest writes", o, v, c.space[o])
		}
	}
	for b := range 6 {
		if c.barSize[b] == 0 {
			if f.Sizing[b] {
				return fmt.Errorf("BAR%d sizing, but the function has no BAR%d", b, b)
			}
			if f.Decoding[b] {
				return fmt.Errorf("BAR%d decoding, but the function has no BAR%d", b, b)
			}
			continue
		}
		if f.Decoding[b] && f.command()&CommandIO == 0 {
			return fmt.Errorf("BAR%d decoding, but the command register %#x has I/O decode off, which takes every BAR off the bus", b, f.command())
		}
		low := c.barSize[b] - 1
		raw := binary.LittleEndian.Uint32(f.Space[RegBAR0+4*b:])
		want := binary.LittleEndian.Uint32(c.space[RegBAR0+4*b:]) & low
		if raw&low != want {
			return fmt.Errorf("BAR%d %#x: a %d-byte BAR's low bits are %#x", b, raw, c.barSize[b], want)
		}
		// A write of every address bit starts sizing and keeps the old
		// address, so no BAR ever holds that pattern.
		if mask := c.addrMask(b); raw&mask == mask {
			return fmt.Errorf("BAR%d %#x: every address bit set, the size probe, which a guest's write never leaves as the address", b, raw)
		}
	}
	return nil
}
