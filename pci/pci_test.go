package pci

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/bus"
)

type regs struct{ last []byte }

func (r *regs) Read(off uint64, d []byte) {
	for i := range d {
		d[i] = byte(off) + byte(i)
	}
}
func (r *regs) Write(off uint64, d []byte) { r.last = append([]byte{byte(off)}, d...) }

type fn struct {
	cfg *Config
	dev *regs
}

func (f *fn) PCIConfig() *Config { return f.cfg }
func (f *fn) BARDevice(i int) bus.Device {
	if i == 0 {
		return f.dev
	}
	return nil
}

func newFn(t *testing.T) *fn {
	t.Helper()
	c := NewConfig(Header{VendorID: 0x1AF4, DeviceID: 0x1001, Class: 0x010000, SubsystemVendorID: 0x1AF4, SubsystemID: 2})
	if err := c.AddIOBAR(0, 64); err != nil {
		t.Fatal(err)
	}
	return &fn{cfg: c, dev: &regs{}}
}

// cfg drives configuration mechanism #1 the way a guest does.
type cfg struct {
	pio *bus.Bus
}

func (c cfg) sel(dev, reg int) {
	c.pio.Write(0xCF8, le32(0x80000000|uint32(dev)<<11|uint32(reg&^3)))
}
func (c cfg) read32(dev, reg int) uint32 {
	c.sel(dev, reg)
	d := make([]byte, 4)
	c.pio.Read(0xCFC, d)
	return binary.LittleEndian.Uint32(d)
}
func (c cfg) read8(dev, reg int) uint8 {
	c.sel(dev, reg)
	d := make([]byte, 1)
	c.pio.Read(0xCFC+uint64(reg&3), d)
	return d[0]
}
func (c cfg) write32(dev, reg int, v uint32) {
	c.sel(dev, reg)
	c.pio.Write(0xCFC, le32(v))
}

func le32(v uint32) []byte { b := make([]byte, 4); binary.LittleEndian.PutUint32(b, v); return b }

func setup(t *testing.T) (*Host, cfg, *fn) {
	t.Helper()
	pio := bus.New("port")
	h := NewHost(pio)
	if err := pio.Register("pci", 0xCF8, 8, h); err != nil {
		t.Fatal(err)
	}
	f := newFn(t)
	if _, err := h.Add(f, 10); err != nil {
		t.Fatal(err)
	}
	return h, cfg{pio}, f
}

func TestMechanismOneDetection(t *testing.T) {
	_, c, _ := setup(t)
	c.pio.Write(0xCF8, le32(0x80000000))
	// Byte and word writes inside 0xCF8-0xCFB must not change the latch.
	c.pio.Write(0xCFB, []byte{0x00})
	c.pio.Write(0xCFA, []byte{0x00, 0x00})
	d := make([]byte, 4)
	c.pio.Read(0xCF8, d)
	if got := binary.LittleEndian.Uint32(d) & 0x80FFFFFC; got != 0x80000000 {
		t.Fatalf("latch = %#x, want 0x80000000", got)
	}
	c.pio.Write(0xCF8, le32(0x8012345F))
	c.pio.Read(0xCF8, d)
	if got := binary.LittleEndian.Uint32(d); got != 0x8012345C {
		t.Fatalf("latch = %#x, want the written value masked with 0x80fffffc", got)
	}
}

func TestConfigSpace(t *testing.T) {
	h, c, _ := setup(t)
	tests := []struct {
		name     string
		dev, reg int
		want     uint32
		// wantNoDev: no function claims the slot; the all ones read is
		// the absent device's, not a device's own.
		wantNoDev bool
	}{
		{"host bridge id", 0, 0, 0x00081B36, false},
		{"host bridge class", 0, 8, 0x06000000, false},
		{"virtio id", 1, 0, 0x10011AF4, false},
		{"virtio revision 0 + class", 1, 8, 0x01000000, false},
		{"subsystem", 1, 0x2C, 0x00021AF4, false},
		{"BAR0 assigned as I/O", 1, 0x10, IOBase | 1, false},
		{"BAR1 unused", 1, 0x14, 0, false},
		{"interrupt line 10 pin A", 1, 0x3C, 0x0000010A, false},
		{"absent device", 7, 0, 0xFFFFFFFF, true},
		// The device number is 5 bits: 16-31 are absent, not 0-15 again.
		{"device 16 absent, not the host bridge", 16, 0, 0xFFFFFFFF, true},
		{"device 17 absent, not the virtio device", 17, 0, 0xFFFFFFFF, true},
		{"device 31 absent", 31, 0, 0xFFFFFFFF, true},
		// The register number is 6 bits: 0x80-0xFC are their own
		// (zero without capabilities), not 0x00-0x7C again.
		{"register 0x80, not the IDs", 1, 0x80, 0, false},
		{"register 0x90, not BAR0", 1, 0x90, 0, false},
		{"register 0xBC, not the interrupt line", 1, 0xBC, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.read32(tt.dev, tt.reg); got != tt.want {
				t.Fatalf("read %#x, want %#x", got, tt.want)
			}
			h.mu.Lock()
			_, _, claimed := h.selected()
			h.mu.Unlock()
			if claimed == tt.wantNoDev {
				t.Fatalf("slot %d claimed by a function: %v, want %v", tt.dev, claimed, !tt.wantNoDev)
			}
		})
	}
	// Bus 1 and function 1 are absent.
	c.pio.Write(0xCF8, le32(0x80010000))
	d := make([]byte, 4)
	c.pio.Read(0xCFC, d)
	if binary.LittleEndian.Uint32(d) != 0xFFFFFFFF {
		t.Fatal("bus 1 answered")
	}
	c.pio.Write(0xCF8, le32(0x80000900))
	c.pio.Read(0xCFC, d)
	if binary.LittleEndian.Uint32(d) != 0xFFFFFFFF {
		t.Fatal("function 1 answered")
	}
	// Disabled mechanism (bit 31 clear) reads all ones.
	c.pio.Write(0xCF8, le32(0x00000800))
	c.pio.Read(0xCFC, d)
	if binary.LittleEndian.Uint32(d) != 0xFFFFFFFF {
		t.Fatal("enable bit ignored")
	}
	if got := c.read8(1, 0x3D); got != 1 {
		t.Fatalf("byte read of interrupt pin = %d", got)
	}
}

// TestBARSizingAndMove: a write setting every address bit of a BAR sizes
// it (PCI Local Bus spec 3.0, 6.2.5.1): the read back is the size mask, the
// BAR stays where it was. All ones is what Linux and NetBSD write; the
// address bits alone, the type bits clear, is what some others write.
func TestBARSizingAndMove(t *testing.T) {
	for _, sizing := range []uint32{0xFFFFFFFF, 0xFFFFFFFC, 0xFFFFFFFE} {
		t.Run(fmt.Sprintf("%#x", sizing), func(t *testing.T) {
			h, c, f := setup(t)
			var moved []uint64
			h.OnBARMove = func(_ Function, bar int, old, new uint64) { moved = append(moved, old, new) }
			c.write32(1, 0x10, sizing)
			if got := c.read32(1, 0x10); got != 0xFFFFFFC1 {
				t.Fatalf("sizing read %#x, want 0xFFFFFFC1 (64-byte I/O BAR)", got)
			}
			if len(moved) != 0 {
				t.Fatalf("sizing reported a move: %x", moved)
			}
			// While sizing, the device still decodes at its address.
			d := make([]byte, 1)
			if !c.pio.Read(IOBase+3, d) || d[0] != 3 {
				t.Fatal("BAR not decoded during sizing")
			}
			c.write32(1, 0x10, IOBase|1)
			if got := c.read32(1, 0x10); got != IOBase|1 {
				t.Fatalf("restored BAR = %#x", got)
			}
			if len(moved) != 0 {
				t.Fatalf("restore reported a move: %v", moved)
			}
			c.write32(1, 0x10, 0xD000)
			if len(moved) != 2 || moved[0] != IOBase || moved[1] != 0xD000 {
				t.Fatalf("moves %v", moved)
			}
			if c.pio.Read(IOBase, d) {
				t.Fatal("old BAR address still decoded")
			}
			c.pio.Write(0xD004, []byte{9})
			if len(f.dev.last) != 2 || f.dev.last[0] != 4 {
				t.Fatalf("device saw %v", f.dev.last)
			}
		})
	}
}

// TestConfigRead: Config.Read, which library callers reach with any
// offset, reads the bytes of configuration space it covers and ones for
// those outside it (below 0, or 256 and past), whatever the length.
func TestConfigRead(t *testing.T) {
	cfg := NewConfig(Header{VendorID: 0x1AF4, DeviceID: 0x1001, SubsystemVendorID: 0x1AF4, SubsystemID: 0xBEEF})
	for _, tc := range []struct {
		off  int
		n    int
		want []byte
	}{
		{0x00, 4, []byte{0xF4, 0x1A, 0x01, 0x10}},
		{0x2E, 2, []byte{0xEF, 0xBE}},
		{0xFC, 4, []byte{0, 0, 0, 0}},
		{0xFE, 4, []byte{0, 0, 0xFF, 0xFF}},
		{0xFF, 2, []byte{0, 0xFF}},
		{0x100, 1, []byte{0xFF}},
		{0x1000, 4, []byte{0xFF, 0xFF, 0xFF, 0xFF}},
		{-1, 2, []byte{0xFF, 0xF4}},
		{-4, 4, []byte{0xFF, 0xFF, 0xFF, 0xFF}},
	} {
		d := make([]byte, tc.n)
		cfg.Read(tc.off, d)
		if !bytes.Equal(d, tc.want) {
			t.Errorf("Read(%#x, %d bytes) = % x, want % x", tc.off, tc.n, d, tc.want)
		}
	}
}

// TestHighRegisterWriteLeavesBARs: a write to register 0x90 (0x10 with
// the register number's top bit set) is not a write to BAR0: the device
// stays where it was, decoded, and no move is reported.
func TestHighRegisterWriteLeavesBARs(t *testing.T) {
	h, c, _ := setup(t)
	var moved []uint64
	h.OnBARMove = func(_ Function, _ int, old, new uint64) { moved = append(moved, old, new) }
	c.write32(1, 0x90, 0xD001)
	if got := c.read32(1, 0x10); got != IOBase|1 {
		t.Errorf("BAR0 after a write to register 0x90 = %#x, want %#x", got, IOBase|1)
	}
	if len(moved) != 0 {
		t.Errorf("a write to register 0x90 moved a BAR: %#x", moved)
	}
	d := make([]byte, 1)
	if !c.pio.Read(IOBase+3, d) || d[0] != 3 {
		t.Errorf("BAR0 no longer decoded at %#x after a write to register 0x90", IOBase)
	}
}

func TestCommandAndReadOnly(t *testing.T) {
	_, c, _ := setup(t)
	c.write32(1, 0x04, 0xFFFFFFFF)
	if got := c.read32(1, 0x04) & 0xFFFF; got != 0x0547 {
		t.Fatalf("command = %#x, want only implemented bits 0x547", got)
	}
	c.write32(1, 0x00, 0)
	c.write32(1, 0x2C, 0)
	if c.read32(1, 0) != 0x10011AF4 || c.read32(1, 0x2C) != 0x00021AF4 {
		t.Fatal("IDs must be read-only")
	}
	c.write32(1, 0x3C, 0x0000FF0B)
	if got := c.read32(1, 0x3C); got != 0x0000010B {
		t.Fatalf("line/pin = %#x: line is writable, pin is not", got)
	}
}

func TestAddRejectsISAIRQ(t *testing.T) {
	h := NewHost(bus.New("port"))
	for _, irq := range []uint8{1, 3, 4, 8, 14} {
		// A fact the caller can match; what to pass is the caller's
		// (vmm chooses the lines, no user does).
		_, err := h.Add(newFn(t), irq)
		if !errors.Is(err, ErrISAIRQ) || !strings.Contains(err.Error(), fmt.Sprintf("IRQ %d ", irq)) || strings.Contains(err.Error(), "use ") {
			t.Errorf("irq %d: err = %v, want ErrISAIRQ naming it, without advice", irq, err)
		}
	}
}

type rc struct{ v []byte }

func (r *rc) Read(_ uint64, d []byte)  { d[0] = 0x42 }
func (r *rc) Write(_ uint64, d []byte) { r.v = append(r.v, d...) }

// TestResetControlPort: mechanism #1 takes only full DWORD accesses to
// 0xCF8 as CONFIG_ADDRESS's (PCI Local Bus spec 3.0, 3.2.2.3.2); byte and
// word accesses to 0xCF8-0xCFB are ordinary I/O that nothing here claims
// but the reset control register, a byte at 0xCF9: other reads float (all
// ones), other writes reach nothing, and the latch keeps its address.
func TestResetControlPort(t *testing.T) {
	for _, tc := range []struct {
		name     string
		port     uint64
		size     int
		rc       bool   // a ResetControl is attached
		wantRead []byte // what a read of the same port and size returns
		wantRC   []byte // what the reset control saw written
	}{
		{"byte at 0xCF9", 0xCF9, 1, true, []byte{0x42}, []byte{0x06}},
		{"byte at 0xCF9 with no reset control", 0xCF9, 1, false, []byte{0xFF}, nil},
		{"word at 0xCF9", 0xCF9, 2, true, []byte{0xFF, 0xFF}, nil},
		{"byte at 0xCF8", 0xCF8, 1, true, []byte{0xFF}, nil},
		{"word at 0xCF8", 0xCF8, 2, true, []byte{0xFF, 0xFF}, nil},
		{"byte at 0xCF8 with no reset control", 0xCF8, 1, false, []byte{0xFF}, nil},
		{"byte at 0xCFA", 0xCFA, 1, true, []byte{0xFF}, nil},
		{"word at 0xCFA", 0xCFA, 2, true, []byte{0xFF, 0xFF}, nil},
		{"byte at 0xCFB", 0xCFB, 1, true, []byte{0xFF}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, c, _ := setup(t)
			r := &rc{}
			if tc.rc {
				h.ResetControl = r
			}
			c.pio.Write(0xCF8, le32(0x80000800))
			c.pio.Write(tc.port, []byte{0x06, 0x00}[:tc.size])
			d := make([]byte, tc.size)
			if !c.pio.Read(tc.port, d) || !bytes.Equal(d, tc.wantRead) {
				t.Errorf("read % x, want % x", d, tc.wantRead)
			}
			if !bytes.Equal(r.v, tc.wantRC) {
				t.Errorf("reset control saw % x written, want % x", r.v, tc.wantRC)
			}
			d4 := make([]byte, 4)
			c.pio.Read(0xCF8, d4)
			if got := binary.LittleEndian.Uint32(d4); got != 0x80000800 {
				t.Errorf("latch %#x after the access, want 0x80000800", got)
			}
		})
	}
}

// TestBARMoveOntoAnotherDevice: a BAR moved over a port range in use is
// left undecoded and not reported as moved.
func TestBARMoveOntoAnotherDevice(t *testing.T) {
	h, c, _ := setup(t)
	var moved []uint64
	h.OnBARMove = func(_ Function, _ int, _, new uint64) { moved = append(moved, new) }
	if err := c.pio.Register("other", 0xE000, 0x40, &regs{}); err != nil {
		t.Fatal(err)
	}
	c.write32(1, 0x10, 0xE000)
	if len(moved) != 1 || moved[0] != NoAddress {
		t.Fatalf("hook saw %x for a BAR that could not be placed, want NoAddress once", moved)
	}
	if c.pio.Read(IOBase, make([]byte, 1)) {
		t.Fatal("the old BAR address is still decoded")
	}
}

// TestNetBSDModeDetect replays NetBSD's pci_mode_detect
// (arch/x86/pci/pci_machdep.c) access by access: save the latch, read the
// host bridge's ID through mechanism #1 for the quirk table, then the
// strong check (enable bit set with a 32-bit write, byte and word writes
// that must not disturb it, a clear that must read back 0), and restore.
func TestNetBSDModeDetect(t *testing.T) {
	_, c, _ := setup(t)
	in32 := func(port uint64) uint32 {
		d := make([]byte, 4)
		c.pio.Read(port, d)
		return binary.LittleEndian.Uint32(d)
	}
	sav := in32(0xCF8)
	c.pio.Write(0xCF8, le32(0x80000000)) // bus 0, device 0, function 0, register 0
	if id := in32(0xCFC); id != 0x00081B36 {
		t.Errorf("00:00.0 ID = %#x, want the host bridge 0x00081b36", id)
	}
	c.pio.Write(0xCF8, le32(0))
	c.pio.Write(0xCF8, le32(0x80000000))
	c.pio.Write(0xCFB, []byte{0})
	c.pio.Write(0xCFA, []byte{0, 0})
	if v := in32(0xCF8); v&0x80FFFFFC != 0x80000000 {
		t.Fatalf("after byte and word writes the latch reads %#x: NetBSD would reject mechanism #1", v)
	}
	c.pio.Write(0xCF8, le32(0))
	if v := in32(0xCF8); v&0x80FFFFFC != 0 {
		t.Fatalf("cleared latch reads %#x: NetBSD would reject mechanism #1", v)
	}
	c.pio.Write(0xCF8, le32(sav))
	// With the enable bit clear, the data port decodes nothing.
	if v := in32(0xCFC); v != 0xFFFFFFFF {
		t.Errorf("data port with the latch disabled = %#x, want all ones", v)
	}
}

// TestBARMoveAwayFromConflict: a BAR the guest moved over another device
// decodes nothing; moving it on must not take that device off the bus, and
// the hook hears that the BAR went undecoded, then where it went.
func TestBARMoveAwayFromConflict(t *testing.T) {
	h, c, _ := setup(t)
	var moves [][2]uint64
	h.OnBARMove = func(_ Function, _ int, old, new uint64) { moves = append(moves, [2]uint64{old, new}) }
	other := &regs{}
	if err := c.pio.Register("other", 0xE000, 0x40, other); err != nil {
		t.Fatal(err)
	}
	c.write32(1, 0x10, 0xE001) // onto "other": refused
	c.write32(1, 0x10, 0xD001) // then somewhere free
	c.pio.Write(0xE004, []byte{0x5A})
	if string(other.last) != "\x04\x5a" {
		t.Fatalf("the device the BAR once overlapped no longer answers (last write %x)", other.last)
	}
	if !c.pio.Read(0xD000, make([]byte, 1)) {
		t.Fatal("the BAR does not decode at its new address")
	}
	want := [][2]uint64{{IOBase, NoAddress}, {0xE000, 0xD000}}
	if fmt.Sprint(moves) != fmt.Sprint(want) {
		t.Fatalf("hook calls %x, want %x", moves, want)
	}
}
