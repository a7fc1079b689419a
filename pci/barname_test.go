package pci

import (
	"testing"
)

// TestBARNames: a BAR is on the port bus under its slot's name however it
// got there (placed by Add, moved by the guest, turned back on by the
// guest, placed by a restore), so an overlap error or bus.Overlapping
// names the function.
func TestBARNames(t *testing.T) {
	const moved = 0xD000
	// moveSlot2 moves slot 2's BAR0 to moved, as a guest does.
	moveSlot2 := func(c cfg) {
		c.write32(2, RegCommand, CommandIO)
		c.write32(2, RegBAR0, moved|1)
	}
	tests := []struct {
		name string
		// run builds the host and returns its configuration access
		// and the port slot 2's BAR0 should decode at.
		run func(t *testing.T) (cfg, uint64)
	}{
		{"placed by Add", func(t *testing.T) (cfg, uint64) {
			_, c, _ := setup2(t)
			return c, IOBase + 0x40
		}},
		{"moved by the guest", func(t *testing.T) (cfg, uint64) {
			_, c, _ := setup2(t)
			moveSlot2(c)
			return c, moved
		}},
		{"I/O decode off and on", func(t *testing.T) (cfg, uint64) {
			_, c, _ := setup2(t)
			moveSlot2(c)
			c.write32(2, RegCommand, 0)
			c.write32(2, RegCommand, CommandIO)
			return c, moved
		}},
		{"placed by a restore", func(t *testing.T) (cfg, uint64) {
			h, c, _ := setup2(t)
			moveSlot2(c)
			h2, c2, _ := setup2(t)
			if err := h2.Restore(h.State()); err != nil {
				t.Fatal(err)
			}
			return c2, moved
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, port := tt.run(t)
			r := c.pio.Overlapping(port, 1)
			if len(r) != 1 || r[0].Base != port {
				t.Fatalf("Overlapping(%#x, 1) = %v, want slot 2's BAR0 there", port, r)
			}
			if want := "pci 00:02.0 BAR0"; r[0].Name != want {
				t.Errorf("BAR0 at %#x registered as %q, want %q", port, r[0].Name, want)
			}
		})
	}
}
