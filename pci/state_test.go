package pci

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
)

// TestStateRestoresBARs: a host restored from one whose guest moved a BAR
// and enabled the function decodes the BAR where the guest put it,
// reports the move, and reads the same configuration space.
func TestStateRestoresBARs(t *testing.T) {
	h, c, _ := setup(t)
	c.write32(1, 0x04, 0x1)    // command: I/O space on
	c.write32(1, 0x10, 0xD000) // BAR0 moved
	c.sel(1, 0x3C)             // the latch left pointing at a register
	h2, c2, _ := setup(t)
	var moves [][2]uint64
	h2.OnBARMove = func(_ Function, _ int, old, new uint64) { moves = append(moves, [2]uint64{old, new}) }
	if err := h2.Restore(h.State()); err != nil {
		t.Fatal(err)
	}
	if want := [][2]uint64{{IOBase, NoAddress}, {IOBase, 0xD000}}; fmt.Sprint(moves) != fmt.Sprint(want) {
		t.Fatalf("moves %x, want %x: off its place, then at 0xd000", moves, want)
	}
	d := make([]byte, 1)
	if !c2.pio.Read(0xD003, d) || d[0] != 3 || c2.pio.Read(IOBase, d) {
		t.Fatal("restored BAR0 not decoded at 0xd000 alone")
	}
	for _, reg := range []int{0x00, 0x04, 0x10, 0x3C} {
		if got, want := c2.read32(1, reg), c.read32(1, reg); got != want {
			t.Errorf("register %#x: restored %#x, original %#x", reg, got, want)
		}
	}
}

// TestRestoreRefusesOtherFunctions: a snapshot's functions must be the
// machine's, slot for slot.
func TestRestoreRefusesOtherFunctions(t *testing.T) {
	h, _, _ := setup(t)
	tests := []struct {
		name string
		edit func(s *HostState)
		want string
	}{
		{"empty slot", func(s *HostState) { s.Functions[1].Device = 7 }, "slot 7, this machine has none there"},
		{"other device", func(s *HostState) { s.Functions[1].Space[2] ^= 0xFF }, "slot 1 holds device"},
		{"short space", func(s *HostState) { s.Functions[1].Space = s.Functions[1].Space[:10] }, "10 bytes, want 256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := h.State()
			tt.edit(&s)
			h2, _, _ := setup(t)
			err := h2.Restore(s)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Restore = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

// TestRestoreRefusesUnwritableState: a snapshot's configuration space
// may differ from this machine's only where a guest can write it (and in
// the interrupt status a device drives); BARs must be aligned, and only
// implemented ones sizing. Each refusal names the slot, the register and
// the values.
func TestRestoreRefusesUnwritableState(t *testing.T) {
	h, c, _ := setup(t)
	c.write32(1, 0x04, 0x1)    // command: I/O space on
	c.write32(1, 0x10, 0xD000) // BAR0 moved
	c.write32(1, 0x3C, 0x0B)   // interrupt line
	tests := []struct {
		name string
		edit func(s *HostState)
		want string
	}{
		{"interrupt pin", func(s *HostState) { s.Functions[1].Space[RegInterruptPin] = 2 }, "slot 1: register 0x3d is 0x2 in the snapshot, 0x1 here"},
		{"class", func(s *HostState) { s.Functions[1].Space[RegClass+2] = 0x02 }, "slot 1: register 0xb is 0x2 in the snapshot, 0x1 here"},
		{"status", func(s *HostState) { s.Functions[1].Space[RegStatus] |= 0x10 }, "register 0x6 is 0x10"},
		{"command bit", func(s *HostState) { s.Functions[1].Space[RegCommand] |= 0x80 }, "register 0x4 is 0x81 in the snapshot, 0x1 here"},
		{"device-specific", func(s *HostState) { s.Functions[0].Space[0x80] = 1 }, "slot 0: register 0x80"},
		{"unimplemented BAR", func(s *HostState) { s.Functions[1].Space[RegBAR0+4] = 0x11 }, "register 0x14"},
		{"unaligned BAR", func(s *HostState) { s.Functions[1].Space[RegBAR0] = 0x21 }, "slot 1: BAR0 0xd021: a 64-byte BAR's low bits are 0x1"},
		{"BAR at the size probe", func(s *HostState) { copy(s.Functions[1].Space[RegBAR0:], []byte{0xC1, 0xFF, 0xFF, 0xFF}) }, "slot 1: BAR0 0xffffffc1: every address bit set"},
		{"BAR sizing at the size probe", func(s *HostState) {
			copy(s.Functions[1].Space[RegBAR0:], []byte{0xC1, 0xFF, 0xFF, 0xFF})
			s.Functions[1].Sizing[0] = true
		}, "slot 1: BAR0 0xffffffc1: every address bit set"},
		{"BAR without its I/O bit", func(s *HostState) { s.Functions[1].Space[RegBAR0] = 0 }, "BAR0 0xd000"},
		{"decoding an unimplemented BAR", func(s *HostState) { s.Functions[1].Decoding[3] = true }, "slot 1: BAR3 decoding, but the function has no BAR3"},
		{"decoding over the configuration ports", func(s *HostState) { copy(s.Functions[1].Space[RegBAR0:], []byte{0xC1, 0x0C}) }, "slot 1: BAR0 decoding at [0xcc0, 0xd00), over pci at [0xcf8, 0xd00)"},
		{"sizing an unimplemented BAR", func(s *HostState) { s.Functions[1].Sizing[3] = true }, "slot 1: BAR3 sizing, but the function has no BAR3"},
		{"slot twice", func(s *HostState) { s.Functions = append(s.Functions, s.Functions[1]) }, "slot 1 twice"},
		{"address latch", func(s *HostState) { s.Addr = 0x80000801 }, "address latch 0x80000801"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := h.State()
			h2, _, _ := setup(t)
			if err := h2.Restore(h.State()); err != nil {
				t.Fatalf("the unedited state: %v", err)
			}
			tt.edit(&s)
			h3, _, _ := setup(t)
			err := h3.Restore(s)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Restore = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

// TestRestoreRefusedChangesNothing: a Restore refused for one function
// has applied nothing of the others: no BAR moved on the bus, none
// reported, no register changed.
func TestRestoreRefusedChangesNothing(t *testing.T) {
	h, c, _ := setup(t)
	c.write32(1, 0x04, CommandIO|CommandBusMaster)
	c.write32(1, 0x10, 0xD000)
	s := h.State()
	s.Functions[0], s.Functions[1] = s.Functions[1], s.Functions[0]
	s.Functions[1].Space = s.Functions[1].Space[:10] // the host bridge's, now second
	h2, c2, _ := setup(t)
	var moves int
	h2.OnBARMove = func(Function, int, uint64, uint64) { moves++ }
	if err := h2.Restore(s); err == nil {
		t.Fatal("Restore took a short configuration space")
	}
	d := make([]byte, 1)
	if moves != 0 || c2.pio.Read(0xD000, d) || !c2.pio.Read(IOBase, d) {
		t.Fatalf("refused Restore moved BAR0 (%d moves reported)", moves)
	}
	if got := c2.read32(1, 0x10); got != IOBase|1 {
		t.Fatalf("refused Restore left BAR0 reading %#x, want %#x", got, IOBase|1)
	}
	if got := c2.read32(1, 0x04) & 0xFFFF; got != CommandIO {
		t.Fatalf("refused Restore left the command register %#x, want %#x (the firmware's)", got, CommandIO)
	}
}

// setup2 is setup with a second function like the first in slot 2, its
// BAR0 placed after the first's.
func setup2(t *testing.T) (*Host, cfg, [3]*fn) {
	t.Helper()
	h, c, f1 := setup(t)
	f2 := newFn(t)
	if _, err := h.Add(f2, 11); err != nil {
		t.Fatal(err)
	}
	return h, c, [3]*fn{nil, f1, f2}
}

// answering returns the slot whose BAR0 takes a write at port, 0 when
// none does.
func answering(c cfg, fns [3]*fn, port uint64) int {
	for _, f := range fns[1:] {
		f.dev.last = nil
	}
	c.pio.Write(port, []byte{0x5A})
	for slot, f := range fns {
		if f != nil && f.dev.last != nil {
			return slot
		}
	}
	return 0
}

// TestRestoreDecodesAsLive: a restored host decodes every BAR exactly
// where the live one did, whatever order the guest moved them in: a
// BAR moved over another device decodes nothing, even once that device
// moved away, and BARs that traded places both decode.
func TestRestoreDecodesAsLive(t *testing.T) {
	const a, b = IOBase, IOBase + 0x40 // where setup2 places slots 1 and 2
	type move struct {
		slot int
		addr uint32
	}
	tests := []struct {
		name  string
		moves []move
	}{
		{"traded places, first moved aside", []move{{1, 0xD001}, {2, a | 1}, {1, b | 1}}},
		{"traded places, second moved aside", []move{{2, 0xD001}, {1, b | 1}, {2, a | 1}}},
		{"second over the first, first moved away", []move{{2, a | 1}, {1, 0xD001}}},
		{"first over the second, second moved away", []move{{1, b | 1}, {2, 0xD001}}},
		{"first moved where the second left", []move{{2, 0xD001}, {1, b | 1}}},
		{"second moved where the first left", []move{{1, 0xD001}, {2, a | 1}}},
		{"over the configuration ports", []move{{1, 0xCC1}}},
		{"over the configuration ports and back", []move{{2, 0xCC1}, {2, b | 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, c, fns := setup2(t)
			for _, m := range tt.moves {
				c.write32(m.slot, RegBAR0, m.addr)
			}
			h2, c2, fns2 := setup2(t)
			// As the machine's ioeventfds follow the BARs: one per
			// address, where the BAR decodes.
			efd := map[uint64]Function{a: fns2[1], b: fns2[2]}
			at := map[Function]uint64{fns2[1]: a, fns2[2]: b}
			slotOf := map[Function]int{fns2[1]: 1, fns2[2]: 2}
			h2.OnBARMove = func(fn Function, _ int, _, new uint64) {
				if old, ok := at[fn]; ok {
					delete(efd, old)
					delete(at, fn)
				}
				if new == NoAddress {
					return
				}
				if other, ok := efd[new]; ok {
					t.Errorf("slot %d's BAR reported at %#x, where slot %d's still is", slotOf[fn], new, slotOf[other])
					return
				}
				efd[new], at[fn] = fn, new
			}
			if err := h2.Restore(h.State()); err != nil {
				t.Fatal(err)
			}
			for slot, f := range fns2 {
				if f == nil {
					continue
				}
				addr, _ := f.cfg.BAR(0)
				if _, ok := at[f]; ok != h2.decoded[slot][0].on || ok && at[f] != addr {
					t.Errorf("slot %d: the hook has its BAR at %#x (%v), it decodes at %#x (%v)", slot, at[f], ok, addr, h2.decoded[slot][0].on)
				}
			}
			for _, port := range []uint64{a, b, 0xD000, 0xCC0} {
				if got, want := answering(c2, fns2, port), answering(c, fns, port); got != want {
					t.Errorf("port %#x: slot %d answers after the restore, slot %d live", port, got, want)
				}
			}
			if err := h2.Restore(h2.State()); err != nil {
				t.Errorf("the restored state restored again: %v", err)
			}
		})
	}
}

// TestRestoreRefusesOverlappingBARs: BARs a state has decoding must fit
// on the port bus together, as no guest can make two decode at once; a
// refused state moves nothing.
func TestRestoreRefusesOverlappingBARs(t *testing.T) {
	setBAR := func(f *FunctionState, addr uint32) { binary.LittleEndian.PutUint32(f.Space[RegBAR0:], addr) }
	tests := []struct {
		name string
		edit func(s *HostState)
		want string
	}{
		{"moved onto one staying", func(s *HostState) { setBAR(&s.Functions[2], IOBase|1) },
			"slot 2: BAR0 decoding at [0xc000, 0xc040), over pci 00:01.0 BAR0 at [0xc000, 0xc040)"},
		{"both moved to one place", func(s *HostState) { setBAR(&s.Functions[1], 0xD001); setBAR(&s.Functions[2], 0xD001) },
			"slot 2: BAR0 decoding at [0xd000, 0xd040), over slot 1's BAR0 at [0xd000, 0xd040)"},
		{"one undecoded", func(s *HostState) { setBAR(&s.Functions[2], IOBase|1); s.Functions[2].Decoding[0] = false }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _, _ := setup2(t)
			s := h.State()
			tt.edit(&s)
			h2, c2, fns2 := setup2(t)
			moves := 0
			h2.OnBARMove = func(Function, int, uint64, uint64) { moves++ }
			err := h2.Restore(s)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := answering(c2, fns2, IOBase); got != 1 {
					t.Fatalf("slot %d answers at %#x, want slot 1", got, IOBase)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Restore = %v, want an error mentioning %q", err, tt.want)
			}
			if moves != 0 || answering(c2, fns2, IOBase) != 1 || answering(c2, fns2, IOBase+0x40) != 2 {
				t.Fatal("a refused Restore moved a BAR")
			}
		})
	}
}
