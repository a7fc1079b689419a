package pci

import (
	"encoding/binary"
	"reflect"
	"testing"
)

// FuzzRestore restores fuzzed host state into the machine setup builds
// (the host bridge and a function with a 64-byte I/O BAR0), as a machine
// restores a snapshot's PCI state: each function's space is this
// machine's XOR the fuzzer's bytes (a short slice changes the first
// bytes, a longer one the length), so that most inputs stay close to a
// valid state, and its BARs decode as this machine's but where the
// fuzzer's decoding bits flip them. A refused state must change nothing;
// an accepted one must read back as restored, decode each BAR where its
// register says, or not at all, as the state says, and then survive the
// guest's configuration accesses (ops: register, value, read or write
// per three bytes) and port accesses to the BAR, reaching only states
// Restore accepts again, and that a fresh machine then decodes alike.
func FuzzRestore(f *testing.F) {
	// The machine as set up; BAR0 moved, I/O on and the latch left on a
	// register (TestStateRestoresBARs's guest); BAR0 being sized; BAR0
	// moved over the configuration ports, undecoded (as a guest leaves
	// it) and decoding (refused); BAR0 undecoded where it was placed.
	f.Add(uint32(0), 0, []byte{}, uint8(0), uint8(0), 1, []byte{}, uint8(0), uint8(0), []byte{})
	f.Add(uint32(0x8000083C), 0, []byte{}, uint8(0), uint8(0), 1, []byte{0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10 ^ 0xD0}, uint8(0), uint8(0), []byte{0x10, 0xFF, 1, 0x10, 0x01, 1})
	f.Add(uint32(0x80000810), 0, []byte{}, uint8(0), uint8(0), 1, []byte{}, uint8(1), uint8(0), []byte{0x10, 0x01, 0x81})
	f.Add(uint32(0), 0, []byte{}, uint8(0), uint8(0), 1, []byte{0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xC0 ^ 0xC1, 0xC0 ^ 0x0C}, uint8(0), uint8(1), []byte{0x10, 0x01, 0x81, 0x10, 0xC1, 1})
	f.Add(uint32(0), 0, []byte{}, uint8(0), uint8(0), 1, []byte{0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xC0 ^ 0xC1, 0xC0 ^ 0x0C}, uint8(0), uint8(0), []byte{})
	f.Add(uint32(0), 0, []byte{}, uint8(0), uint8(0), 1, []byte{}, uint8(0), uint8(1), []byte{0x10, 0x41, 1})
	f.Fuzz(func(t *testing.T, addr uint32, dev0 int, delta0 []byte, sizing0, decoding0 uint8, dev1 int, delta1 []byte, sizing1, decoding1 uint8, ops []byte) {
		h, c, _ := setup(t)
		var moves []barMove
		h.OnBARMove = func(_ Function, bar int, old, new uint64) { moves = append(moves, barMove{bar, old, new}) }
		fresh := h.State()
		s := HostState{Addr: addr}
		for i, in := range []struct {
			dev              int
			delta            []byte
			sizing, decoding uint8
		}{{dev0, delta0, sizing0, decoding0}, {dev1, delta1, sizing1, decoding1}} {
			fs := FunctionState{Device: in.dev, Space: append([]byte(nil), fresh.Functions[i].Space...)}
			for b := range 6 {
				fs.Decoding[b] = fresh.Functions[i].Decoding[b] != (in.decoding&(1<<b) != 0)
			}
			for j, b := range in.delta {
				if j >= len(fs.Space) {
					fs.Space = append(fs.Space, b)
					continue
				}
				fs.Space[j] ^= b
			}
			for b := range 6 {
				fs.Sizing[b] = in.sizing&(1<<b) != 0
			}
			s.Functions = append(s.Functions, fs)
		}
		if err := h.Restore(s); err != nil {
			if got := h.State(); !reflect.DeepEqual(got, fresh) || len(moves) != 0 {
				t.Fatalf("Restore refused the state (%v) but changed the host: %+v, moves %v", err, got, moves)
			}
			return
		}
		// A state with a BAR decoding while I/O decode is off is refused
		// (above), so what was accepted reads back as it was.
		want := s.Functions
		if got := h.State(); !reflect.DeepEqual(got.Functions, want) || got.Addr != s.Addr {
			t.Fatalf("restored %+v, reads back %+v", s, got)
		}
		fn := h.funcs[1]
		bar, size := fn.PCIConfig().BAR(0)
		if bar%uint64(size) != 0 {
			t.Fatalf("BAR0 restored at %#x, not aligned to its %d bytes", bar, size)
		}
		if d := h.decoded[1][0]; d.on && d.base != bar {
			t.Fatalf("BAR0 reads %#x, decoded at %#x", bar, d.base)
		}
		for _, f := range want {
			for b, on := range f.Decoding {
				if h.decoded[f.Device][b].on != on {
					t.Fatalf("slot %d BAR%d: decoding %v, the state says %v", f.Device, b, h.decoded[f.Device][b].on, on)
				}
			}
		}
		for _, m := range moves {
			if m.new != bar && m.new != NoAddress {
				t.Fatalf("BAR0 reported moved to %#x, reads %#x", m.new, bar)
			}
		}
		d := make([]byte, 4)
		for n := 0; len(ops) >= 3 && n < 32; n++ {
			reg, v, w := int(ops[0]), ops[1], ops[2]
			ops = ops[3:]
			if w&0x40 != 0 {
				// The guest at the BAR, wherever it decodes.
				c.pio.Read(bar+uint64(v%64), d[:1])
				c.pio.Write(bar+uint64(v%64), d[:1])
				continue
			}
			c.sel(int(w&0x1F), reg)
			at := 0xCFC + uint64(reg&3)
			if w&0x80 != 0 {
				c.pio.Read(at, d[:1])
				continue
			}
			binary.LittleEndian.PutUint32(d, uint32(v)*0x01010101)
			c.pio.Write(at, d[:4-reg&3])
		}
		h2, _, _ := setup(t)
		if err := h2.Restore(h.State()); err != nil {
			t.Fatalf("the host reached %+v, which Restore refuses: %v", h.State(), err)
		}
		for slot := range h.decoded {
			for b, d := range h.decoded[slot] {
				if d2 := h2.decoded[slot][b]; d2.on != d.on || d.on && d2.base != d.base {
					t.Fatalf("slot %d BAR%d: decoding %+v live, %+v restored", slot, b, d, d2)
				}
			}
		}
	})
}
