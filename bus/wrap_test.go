package bus

import (
	"fmt"
	"testing"
)

// recorder notes the last access a device got.
type recorder struct {
	off uint64
	n   int
	hit bool
}

func (r *recorder) Read(off uint64, d []byte)  { r.off, r.n, r.hit = off, len(d), true }
func (r *recorder) Write(off uint64, d []byte) { r.off, r.n, r.hit = off, len(d), true }

// TestAccessNearTopOfAddressSpace: an access whose end wraps past 2^64
// runs past a range at the top of the address space and is not the
// device's (a clipped device gets the bytes inside its range), as for any
// other range.
func TestAccessNearTopOfAddressSpace(t *testing.T) {
	const base, size = 0xFFFFFFFFFFFFFFF0, 0xF // the range ends at 2^64-1
	tests := []struct {
		name    string
		clipped bool
		addr    uint64
		n       int
		want    bool // claimed
		wantN   int  // bytes the device gets
	}{
		{"inside", false, base + 4, 8, true, 8},
		{"to the range's end", false, base + 7, 8, true, 8},
		{"a byte past the end", false, base + 8, 8, false, 0},
		{"wrapping past 2^64", false, 0xFFFFFFFFFFFFFFFC, 8, false, 0},
		{"last byte of the space", false, 0xFFFFFFFFFFFFFFFF, 1, false, 0},
		{"clipped, wrapping past 2^64", true, 0xFFFFFFFFFFFFFFFC, 8, true, 3},
	}
	for _, tt := range tests {
		for _, write := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/write=%v", tt.name, write), func(t *testing.T) {
				b := New("mmio")
				d := &recorder{}
				reg := b.Register
				if tt.clipped {
					reg = b.RegisterClipped
				}
				if err := reg("top", base, size, d); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, tt.n)
				var claimed bool
				if write {
					claimed = b.Write(tt.addr, buf)
				} else {
					claimed = b.Read(tt.addr, buf)
				}
				if claimed != tt.want || d.hit != tt.want || d.n != tt.wantN {
					t.Errorf("%d bytes at %#x: claimed %v, device got %d bytes at offset %#x (hit %v); want claimed %v, %d bytes",
						tt.n, tt.addr, claimed, d.n, d.off, d.hit, tt.want, tt.wantN)
				}
				if tt.want && d.off != tt.addr-base {
					t.Errorf("device got offset %#x, want %#x", d.off, tt.addr-base)
				}
			})
		}
	}
}

// TestOverlappingWrappingQuery: a query range whose end wraps past 2^64
// still overlaps what lies above its base, and nothing below it.
func TestOverlappingWrappingQuery(t *testing.T) {
	b := New("mmio")
	for _, r := range []Range{{"low", 0x1000, 0x10}, {"high", 0xFFFFFFFFFFFF0000, 0x10}} {
		if err := b.Register(r.Name, r.Base, r.Size, &recorder{}); err != nil {
			t.Fatal(err)
		}
	}
	got := b.Overlapping(0xFFFFFFFFFFFF0008, 0x20000)
	if len(got) != 1 || got[0].Name != "high" {
		t.Errorf("Overlapping(0xffffffffffff0008, 0x20000) = %v, want the high range alone", got)
	}
}
