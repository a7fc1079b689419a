package bus

import (
	"bytes"
	"strings"
	"testing"
)

type mem struct{ b [16]byte }

func (m *mem) Read(off uint64, d []byte)  { copy(d, m.b[off:]) }
func (m *mem) Write(off uint64, d []byte) { copy(m.b[off:], d) }

func TestRegisterOverlap(t *testing.T) {
	tests := []struct {
		name       string
		base, size uint64
		wantErr    string
	}{
		{"disjoint below", 0x100, 0x10, ""},
		{"disjoint above", 0x220, 0x10, ""},
		{"adjacent", 0x210, 0x10, ""},
		{"overlap start", 0x1F8, 0x10, "overlaps a"},
		{"overlap end", 0x20F, 0x2, "overlaps a"},
		{"inside", 0x204, 0x4, "overlaps a"},
		{"covering", 0x1F0, 0x40, "overlaps a"},
		{"empty", 0x300, 0, "bad range"},
		{"wraps", ^uint64(0) - 1, 4, "bad range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New("port")
			if err := b.Register("a", 0x200, 0x10, &mem{}); err != nil {
				t.Fatal(err)
			}
			// Overlapping names what Register collides with.
			over := b.Overlapping(tt.base, tt.size)
			if wantOver := strings.Contains(tt.wantErr, "overlaps"); wantOver && (len(over) != 1 || over[0] != Range{"a", 0x200, 0x10}) || !wantOver && len(over) != 0 {
				t.Fatalf("Overlapping = %+v, want a exactly when Register refuses an overlap", over)
			}
			err := b.Register("b", tt.base, tt.size, &mem{})
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestDispatchAndUnhandled(t *testing.T) {
	b := New("port")
	m := &mem{}
	if err := b.Register("m", 0x3F8, 8, m); err != nil {
		t.Fatal(err)
	}
	if !b.Write(0x3F9, []byte{0xAB, 0xCD}) {
		t.Fatal("write not claimed")
	}
	if m.b[1] != 0xAB || m.b[2] != 0xCD {
		t.Fatalf("device saw %x", m.b[:4])
	}
	got := make([]byte, 2)
	if !b.Read(0x3F9, got) || !bytes.Equal(got, []byte{0xAB, 0xCD}) {
		t.Fatalf("read %x", got)
	}
	// An access straddling the end of a range is not the device's.
	if b.Read(0x3FF, make([]byte, 2)) {
		t.Fatal("straddling read claimed")
	}
	d := []byte{0, 0, 0, 0}
	if b.Read(0x80, d) || !bytes.Equal(d, []byte{0xFF, 0xFF, 0xFF, 0xFF}) {
		t.Fatalf("unclaimed read = %x, want all ones", d)
	}
	b.Write(0x80, []byte{1})
	u := b.Unhandled()
	if u.Total != 3 || u.Reads[0x80] != 1 || u.Writes[0x80] != 1 || u.Reads[0x3FF] != 1 {
		t.Fatalf("unhandled = %+v", u)
	}
	if !b.Unregister(0x3F8) || b.Unregister(0x3F8) {
		t.Fatal("unregister")
	}
	if b.Write(0x3F9, []byte{1}) {
		t.Fatal("unregistered range still claimed")
	}
}

func TestUnclaimedHook(t *testing.T) {
	b := New("mmio")
	type call struct {
		addr         uint64
		write, first bool
	}
	var calls []call
	b.Unclaimed = func(addr uint64, _ []byte, write, first bool) { calls = append(calls, call{addr, write, first}) }
	b.Read(0x10, make([]byte, 4))
	b.Read(0x10, make([]byte, 4))
	b.Write(0x10, []byte{1})
	b.Read(0x20, make([]byte, 1))
	want := []call{{0x10, false, true}, {0x10, false, false}, {0x10, true, true}, {0x20, false, true}}
	if len(calls) != len(want) {
		t.Fatalf("calls %v, want %v", calls, want)
	}
	for i := range want {
		if calls[i] != want[i] {
			t.Fatalf("call %d = %+v, want %+v", i, calls[i], want[i])
		}
	}
	if u := b.Unhandled(); u.Total != 4 {
		t.Fatalf("total %d, want 4", u.Total)
	}
}

// TestUnhandledBounded sweeps more distinct unclaimed addresses than the bus
// tracks, as a hostile guest probing MMIO could: the per-address maps stay
// bounded, every access is still counted, and the hook hears "first" only
// for tracked addresses (so the log cannot grow without bound either).
func TestUnhandledBounded(t *testing.T) {
	b := New("mmio")
	firsts := 0
	b.Unclaimed = func(_ uint64, _ []byte, _, first bool) {
		if first {
			firsts++
		}
	}
	const n = 3 * MaxTracked
	buf := make([]byte, 4)
	for i := range uint64(n) {
		b.Read(0x1000_0000+4*i, buf)
		b.Write(0x2000_0000+4*i, buf)
	}
	b.Read(0x1000_0000, buf) // tracked: counted under its address
	u := b.Unhandled()
	if len(u.Reads) > MaxTracked || len(u.Writes) > MaxTracked {
		t.Errorf("tracked %d read and %d write addresses, limit %d", len(u.Reads), len(u.Writes), MaxTracked)
	}
	if u.Total != 2*n+1 {
		t.Errorf("Total = %d, want %d", u.Total, 2*n+1)
	}
	if u.Reads[0x1000_0000] != 2 {
		t.Errorf("first address counted %d times, want 2", u.Reads[0x1000_0000])
	}
	if firsts != 2*MaxTracked {
		t.Errorf("hook heard first=true %d times, want %d", firsts, 2*MaxTracked)
	}
}

// TestUnhandledBusiest: busiest first by total; 0x80 and 0x3F0 tie at 5
// accesses and go by address.
func TestUnhandledBusiest(t *testing.T) {
	u := Unhandled{
		Reads:  map[uint64]uint64{0x61: 2, 0x80: 1, 0x3F0: 5},
		Writes: map[uint64]uint64{0x80: 4, 0x70: 1},
	}
	got := strings.Join(u.Busiest(3), "; ")
	if want := "0x80: 1 read, 4 writes; 0x3f0: 5 reads; 0x61: 2 reads"; got != want {
		t.Errorf("Busiest(3) = %q, want %q", got, want)
	}
	if got := len(u.Busiest(10)); got != 4 {
		t.Errorf("Busiest(10) lists %d addresses, want all 4", got)
	}
	if got := (Unhandled{}).Busiest(8); len(got) != 0 {
		t.Errorf("Busiest of nothing = %v", got)
	}
}

// TestRegisterClipped: a clipped range takes an access that starts in it
// and runs past its end, cut to the range, as QEMU gives isa-debug-exit an
// outl at its last port; one that starts before it is not its, and a plain
// range next to it keeps its own accesses.
func TestRegisterClipped(t *testing.T) {
	tests := []struct {
		name    string
		addr    uint64
		data    []byte
		claimed bool
		dev     []byte // the clipped device's 4 bytes after the write
		read    []byte // what a read of len(data) at addr then gives
	}{
		{"inside", 0x501, []byte{1, 2, 3, 4}, true, []byte{1, 2, 3, 4}, []byte{1, 2, 3, 4}},
		{"past the end", 0x502, []byte{1, 2, 3, 4}, true, []byte{0, 1, 2, 3}, []byte{1, 2, 3, 0xFF}},
		{"last port, outl", 0x504, []byte{9, 8, 7, 6}, true, []byte{0, 0, 0, 9}, []byte{9, 0xFF, 0xFF, 0xFF}},
		{"starting before", 0x500, []byte{1, 2}, false, []byte{0, 0, 0, 0}, []byte{0xFF, 0xFF}},
		{"the plain range after it", 0x505, []byte{5, 6}, true, []byte{0, 0, 0, 0}, []byte{5, 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New("port")
			clipped, plain := &mem{}, &mem{}
			if err := b.RegisterClipped("clipped", 0x501, 4, clipped); err != nil {
				t.Fatal(err)
			}
			if err := b.Register("plain", 0x505, 4, plain); err != nil {
				t.Fatal(err)
			}
			if got := b.Write(tt.addr, tt.data); got != tt.claimed {
				t.Fatalf("write claimed %v, want %v", got, tt.claimed)
			}
			if !bytes.Equal(clipped.b[:4], tt.dev) {
				t.Errorf("clipped device holds %x, want %x", clipped.b[:4], tt.dev)
			}
			got := make([]byte, len(tt.data))
			if b.Read(tt.addr, got) != tt.claimed || !bytes.Equal(got, tt.read) {
				t.Errorf("read %x, want %x", got, tt.read)
			}
		})
	}
	if err := New("port").RegisterClipped("empty", 0x501, 0, &mem{}); err == nil {
		t.Error("an empty clipped range was registered")
	}
}
