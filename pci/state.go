package pci

import (
	"encoding/binary"
	"fmt"
)

// FunctionState is one function's configuration space, for snapshots.
type FunctionState struct {
	Device int
	Space  []byte
	Sizing [6]bool
}

// HostState is the host's address latch and every function's
// configuration space, BAR placement included.
type HostState struct {
	Addr      uint32
	Functions []FunctionState
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
		s.Functions = append(s.Functions, FunctionState{Device: i, Space: append([]byte(nil), c.space[:]...), Sizing: c.sizing})
		c.mu.Unlock()
	}
	return s
}

// Restore sets the state of a host built with the same functions in the
// same slots as the one State was taken from. A function's configuration
// space may differ from this machine's only in what a guest can write
// (command bits, cache line, latency, interrupt line, implemented BARs at
// an address aligned to their size) and in the interrupt status bit its
// device drives; anything else (another device, a corrupt file) is
// refused, naming the slot and register, before anything is applied.
// BARs the guest had moved are moved on the port bus too, with OnBARMove
// called for each.
func (h *Host) Restore(s HostState) error {
	h.mu.Lock()
	if err := h.checkState(s); err != nil {
		h.mu.Unlock()
		return err
	}
	var moved []struct {
		fn  Function
		bar int
		old uint64
		new uint64
	}
	for _, f := range s.Functions {
		fn := h.funcs[f.Device]
		c := fn.PCIConfig()
		c.mu.Lock()
		old := [6]uint64{}
		for b := range 6 {
			old[b] = c.barAddr(b)
		}
		copy(c.space[:], f.Space)
		c.sizing = f.Sizing
		for b := range 6 {
			if c.barSize[b] == 0 || c.barAddr(b) == old[b] {
				continue
			}
			d := &h.decoded[f.Device][b]
			if d.on {
				h.pio.Unregister(d.base)
				d.on = false
			}
			nw := c.barAddr(b)
			if err := h.pio.Register(fmt.Sprintf("pci BAR%d", b), nw, uint64(c.barSize[b]), fn.BARDevice(b)); err != nil {
				nw = NoAddress
			} else {
				d.base, d.on = nw, true
			}
			moved = append(moved, struct {
				fn       Function
				bar      int
				old, new uint64
			}{fn, b, old[b], nw})
		}
		c.mu.Unlock()
	}
	h.addr = s.Addr
	h.mu.Unlock()
	if h.OnBARMove != nil {
		for _, m := range moved {
			h.OnBARMove(m.fn, m.bar, m.old, m.new)
		}
	}
	return nil
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
// them or hold the size probe, or that is sizing a BAR c does not have.
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
			continue
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
