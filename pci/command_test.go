package pci

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/bus"
)

// watchedFn is a function that records what CommandChanged told it.
type watchedFn struct {
	*fn
	changes []string
}

func (w *watchedFn) CommandChanged(old, new uint16) {
	w.changes = append(w.changes, fmt.Sprintf("%#x->%#x", old, new))
}

// TestIODecode: a function's BARs decode only while its command register
// has I/O decode on, which the firmware (Add) sets; the guest turning it
// off takes them off the bus (reads float, writes vanish) and reports
// them leaving, turning it on puts them back where they are then, and
// the function hears of every change of its command register.
func TestIODecode(t *testing.T) {
	type step struct {
		reg     int
		v       uint32
		claimed map[uint64]bool // port: whether a read there is claimed
		moves   []barMove
		changes []string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"off and on", []step{
			{RegCommand, 0, map[uint64]bool{IOBase: false}, []barMove{{0, IOBase, NoAddress}}, []string{"0x1->0x0"}},
			{RegCommand, CommandIO | CommandBusMaster, map[uint64]bool{IOBase: true}, []barMove{{0, IOBase, IOBase}}, []string{"0x0->0x5"}},
		}},
		{"bus master alone", []step{
			{RegCommand, CommandIO | CommandBusMaster, map[uint64]bool{IOBase: true}, nil, []string{"0x1->0x5"}},
			{RegCommand, CommandIO | CommandBusMaster, map[uint64]bool{IOBase: true}, nil, nil},
		}},
		{"moved while off", []step{
			{RegCommand, 0, map[uint64]bool{IOBase: false}, []barMove{{0, IOBase, NoAddress}}, []string{"0x1->0x0"}},
			{RegBAR0, 0xD000, map[uint64]bool{IOBase: false, 0xD000: false}, nil, nil},
			{RegCommand, CommandIO, map[uint64]bool{IOBase: false, 0xD000: true}, []barMove{{0, 0xD000, 0xD000}}, []string{"0x0->0x1"}},
		}},
		{"sized while off", []step{
			{RegCommand, 0, map[uint64]bool{IOBase: false}, []barMove{{0, IOBase, NoAddress}}, []string{"0x1->0x0"}},
			{RegBAR0, 0xFFFFFFFF, map[uint64]bool{IOBase: false}, nil, nil},
			{RegBAR0, IOBase, map[uint64]bool{IOBase: false}, nil, nil},
			{RegCommand, CommandIO, map[uint64]bool{IOBase: true}, []barMove{{0, IOBase, IOBase}}, []string{"0x0->0x1"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pio, h, c := newBus(t)
			w := &watchedFn{fn: newFn(t)}
			if _, err := h.Add(w, 10); err != nil {
				t.Fatal(err)
			}
			if got := w.cfg.Command(); got != CommandIO {
				t.Fatalf("command %#x after Add, want I/O decode on (%#x)", got, CommandIO)
			}
			var moves []barMove
			h.OnBARMove = func(_ Function, bar int, old, new uint64) { moves = append(moves, barMove{bar, old, new}) }
			for i, s := range tt.steps {
				moves, w.changes = nil, nil
				c.write32(1, s.reg, s.v)
				if !reflect.DeepEqual(moves, s.moves) || !reflect.DeepEqual(w.changes, s.changes) {
					t.Errorf("step %d (%#x = %#x): moves %v, changes %v; want %v, %v", i, s.reg, s.v, moves, w.changes, s.moves, s.changes)
				}
				for port, want := range s.claimed {
					d := []byte{0}
					w.dev.last = nil
					if got := pio.Read(port, d); got != want || !want && d[0] != 0xFF {
						t.Errorf("step %d: read at %#x claimed %v (%#x), want %v", i, port, got, d[0], want)
					}
					pio.Write(port+2, []byte{0x42})
					if got := w.dev.last != nil; got != want {
						t.Errorf("step %d: write at %#x reached the device: %v, want %v", i, port+2, got, want)
					}
				}
			}
			// What the guest left is a state a restore reaches again.
			_, h2, _ := newBus(t)
			if _, err := h2.Add(newFn(t), 10); err != nil {
				t.Fatal(err)
			}
			if err := h2.Restore(h.State()); err != nil {
				t.Fatal(err)
			}
			if got, want := h2.State(), h.State(); !reflect.DeepEqual(got, want) {
				t.Errorf("restored %+v, want %+v", got, want)
			}
		})
	}
}

// TestRestoreIODecodeOff: a state whose BARs the guest took off the bus
// with I/O decode restores with them off, until the guest turns it on,
// and the function hears of its restored command register.
func TestRestoreIODecodeOff(t *testing.T) {
	_, h, c := newBus(t)
	if _, err := h.Add(newFn(t), 10); err != nil {
		t.Fatal(err)
	}
	c.write32(1, RegCommand, CommandBusMaster)
	s := h.State()
	if s.Functions[1].Decoding[0] {
		t.Fatal("BAR0 decoding with I/O decode off")
	}
	pio, h2, c2 := newBus(t)
	w := &watchedFn{fn: newFn(t)}
	if _, err := h2.Add(w, 10); err != nil {
		t.Fatal(err)
	}
	var moves []barMove
	h2.OnBARMove = func(_ Function, bar int, old, new uint64) { moves = append(moves, barMove{bar, old, new}) }
	if err := h2.Restore(s); err != nil {
		t.Fatal(err)
	}
	d := []byte{0}
	if pio.Read(IOBase, d) || h2.State().Functions[1].Decoding[0] {
		t.Error("BAR0 decodes after a restore with I/O decode off")
	}
	if want := []barMove{{0, IOBase, NoAddress}}; !reflect.DeepEqual(moves, want) {
		t.Errorf("moves %v, want %v", moves, want)
	}
	if want := []string{"0x1->0x4"}; !reflect.DeepEqual(w.changes, want) {
		t.Errorf("CommandChanged %v, want %v", w.changes, want)
	}
	c2.write32(1, RegCommand, CommandIO|CommandBusMaster)
	if !pio.Read(IOBase, d) {
		t.Error("BAR0 does not decode once the guest turned I/O decode on")
	}
}

// TestRestoreRefusesDecodingIOOff: a state that says a BAR decodes with
// I/O decode off in its command register is none State writes (a
// version-7 snapshot from before the command register was honoured, now
// refused by its version, or a forged one): CheckState and Restore refuse
// it, naming the slot, the BAR and the command register, and change
// nothing, where a guess set I/O decode in it.
func TestRestoreRefusesDecodingIOOff(t *testing.T) {
	for _, tc := range []struct {
		name    string
		command byte
	}{
		{"command 0", 0},
		{"bus master only", CommandBusMaster},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, h, _ := newBus(t)
			if _, err := h.Add(newFn(t), 10); err != nil {
				t.Fatal(err)
			}
			s := h.State()
			space := append([]byte(nil), s.Functions[1].Space...)
			space[RegCommand] = tc.command
			s.Functions[1] = FunctionState{Device: 1, Space: space, Decoding: [6]bool{true}}
			pio, h2, c2 := newBus(t)
			w := &watchedFn{fn: newFn(t)}
			if _, err := h2.Add(w, 10); err != nil {
				t.Fatal(err)
			}
			c2.write32(1, RegCommand, 0) // the live machine differs: its BAR is off
			w.changes = nil
			var moves []barMove
			h2.OnBARMove = func(_ Function, bar int, old, new uint64) { moves = append(moves, barMove{bar, old, new}) }
			want := fmt.Sprintf("pci: slot 1: BAR0 decoding, but the command register %#x has I/O decode off", tc.command)
			for name, f := range map[string]func(HostState) error{"CheckState": h2.CheckState, "Restore": h2.Restore} {
				if err := f(s); err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("%s = %v, want an error saying %q", name, err, want)
				}
			}
			d := []byte{0}
			if pio.Read(IOBase, d) || h2.State().Functions[1].Decoding[0] {
				t.Error("BAR0 on the bus after a refused restore")
			}
			if got := uint16(c2.read32(1, RegCommand)); got != 0 {
				t.Errorf("command %#x after a refused restore, want 0", got)
			}
			if len(w.changes) != 0 || len(moves) != 0 {
				t.Errorf("a refused restore reported CommandChanged %v, moves %v", w.changes, moves)
			}
		})
	}
}

// newBus returns a port bus with a Host on it and no function yet.
func newBus(t *testing.T) (*bus.Bus, *Host, cfg) {
	t.Helper()
	pio := bus.New("port")
	h := NewHost(pio)
	if err := pio.Register("pci", 0xCF8, 8, h); err != nil {
		t.Fatal(err)
	}
	return pio, h, cfg{pio}
}
