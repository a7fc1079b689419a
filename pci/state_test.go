package pci

import (
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
	if len(moves) != 1 || moves[0] != [2]uint64{IOBase, 0xD000} {
		t.Fatalf("moves %v, want one from %#x to 0xd000", moves, IOBase)
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
