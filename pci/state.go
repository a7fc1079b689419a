package pci

import (
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
// same slots as the one State was taken from. The identity registers
// (vendor, device, class) must match; BARs the guest had moved are moved
// on the port bus too, with OnBARMove called for each.
func (h *Host) Restore(s HostState) error {
	h.mu.Lock()
	var moved []struct {
		fn  Function
		bar int
		old uint64
		new uint64
	}
	for _, f := range s.Functions {
		if f.Device < 0 || f.Device >= len(h.funcs) || h.funcs[f.Device] == nil {
			h.mu.Unlock()
			return fmt.Errorf("pci: snapshot has a function in slot %d, this machine has none there", f.Device)
		}
		if len(f.Space) != 256 {
			h.mu.Unlock()
			return fmt.Errorf("pci: slot %d: configuration space of %d bytes, want 256", f.Device, len(f.Space))
		}
		fn := h.funcs[f.Device]
		c := fn.PCIConfig()
		c.mu.Lock()
		if string(c.space[:RegCommand]) != string(f.Space[:RegCommand]) {
			c.mu.Unlock()
			h.mu.Unlock()
			return fmt.Errorf("pci: slot %d holds device %x, the snapshot's is %x", f.Device, c.space[:RegCommand], f.Space[:RegCommand])
		}
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
	h.addr = s.Addr & 0x80FFFFFC
	h.mu.Unlock()
	if h.OnBARMove != nil {
		for _, m := range moved {
			h.OnBARMove(m.fn, m.bar, m.old, m.new)
		}
	}
	return nil
}
