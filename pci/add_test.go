package pci

import (
	"fmt"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/bus"
)

// barFn is a function with I/O BARs of the given sizes, served by devs
// (a nil entry is a BAR declared without a device).
type barFn struct {
	cfg  *Config
	devs [6]bus.Device
}

func (f *barFn) PCIConfig() *Config         { return f.cfg }
func (f *barFn) BARDevice(i int) bus.Device { return f.devs[i] }

func newBarFn(t *testing.T, sizes ...uint32) *barFn {
	t.Helper()
	f := &barFn{cfg: NewConfig(Header{VendorID: 0x1234, DeviceID: 1})}
	for i, s := range sizes {
		if err := f.cfg.AddIOBAR(i, s); err != nil {
			t.Fatal(err)
		}
		f.devs[i] = &regs{}
	}
	return f
}

// hostState is everything a refused Add must leave as it was.
type hostState struct {
	ranges  []bus.Range
	space   [256]byte
	funcs   [Slots]Function
	next    int
	nextIO  uint64
	decoded [Slots][6]struct {
		base uint64
		on   bool
	}
}

func snapHost(h *Host, pio *bus.Bus, f Function) hostState {
	s := hostState{ranges: pio.Overlapping(0, 0x10000)}
	f.PCIConfig().Read(0, s.space[:])
	h.mu.Lock()
	defer h.mu.Unlock()
	s.funcs, s.next, s.nextIO, s.decoded = h.funcs, h.next, h.nextIO, h.decoded
	return s
}

func (a hostState) diff(b hostState) []string {
	var d []string
	if added, removed := rangeDiff(a.ranges, b.ranges); added != nil || removed != nil {
		d = append(d, fmt.Sprintf("port bus gained %v, lost %v", added, removed))
	}
	for off := 0; off < len(a.space); off += 4 {
		if string(a.space[off:off+4]) != string(b.space[off:off+4]) {
			d = append(d, fmt.Sprintf("config word %#x is % x, was % x", off, b.space[off:off+4], a.space[off:off+4]))
		}
	}
	if a.funcs != b.funcs || a.next != b.next {
		d = append(d, fmt.Sprintf("slot table changed (next slot %d, was %d)", b.next, a.next))
	}
	if a.nextIO != b.nextIO {
		d = append(d, fmt.Sprintf("next I/O address %#x, was %#x", b.nextIO, a.nextIO))
	}
	if a.decoded != b.decoded {
		d = append(d, "decoded BARs changed")
	}
	return d
}

// TestAddRefusedChangesNothing: an Add refused at a later BAR leaves the
// port bus, the function's configuration space and the Host as they were,
// so that the same function, its fault fixed, can be added again and gets
// one range per BAR.
func TestAddRefusedChangesNothing(t *testing.T) {
	tests := []struct {
		name string
		// prepare builds the faulty situation and returns the function
		// to add and the fix to apply before the retry.
		prepare func(t *testing.T, h *Host, pio *bus.Bus) (f *barFn, fix func())
		wantErr string
	}{
		{
			name: "BAR without a device",
			prepare: func(t *testing.T, h *Host, pio *bus.Bus) (*barFn, func()) {
				f := newBarFn(t, 32, 32, 32)
				f.devs[2] = nil
				return f, func() { f.devs[2] = &regs{} }
			},
			wantErr: "BAR2 declared without a device",
		},
		{
			name: "out of I/O space",
			prepare: func(t *testing.T, h *Host, pio *bus.Bus) (*barFn, func()) {
				// Ten functions of six 256-byte BARs leave 1 KiB:
				// BAR0-3 fit, BAR4 does not.
				for range 10 {
					if _, err := h.Add(newBarFn(t, 256, 256, 256, 256, 256, 256), 10); err != nil {
						t.Fatal(err)
					}
				}
				f := newBarFn(t, 256, 256, 256, 256, 4)
				return f, func() {
					// The function gives up BAR4 (NewConfig has no
					// way to take a BAR back).
					f.cfg.barSize[4], f.cfg.barIO[4] = 0, false
					f.cfg.space[RegBAR0+4*4] = 0
				}
			},
			wantErr: "out of I/O space for BAR4",
		},
		{
			name: "BAR over a registered device",
			prepare: func(t *testing.T, h *Host, pio *bus.Bus) (*barFn, func()) {
				// BAR0 would go at IOBase, BAR1 at IOBase+32.
				if err := pio.Register("other", IOBase+40, 8, &regs{}); err != nil {
					t.Fatal(err)
				}
				f := newBarFn(t, 32, 32, 32)
				return f, func() { pio.Unregister(IOBase + 40) }
			},
			wantErr: "overlaps other",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pio := bus.New("port")
			h := NewHost(pio)
			f, fix := tt.prepare(t, h, pio)
			before := snapHost(h, pio, f)
			_, err := h.Add(f, 10)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Add: %v, want an error saying %q", err, tt.wantErr)
			}
			if d := before.diff(snapHost(h, pio, f)); d != nil {
				t.Errorf("the refused Add (%v) changed:\n%s", err, strings.Join(d, "\n"))
			}

			fix()
			others := len(pio.Overlapping(0, 0x10000))
			s, err := h.Add(f, 10)
			if err != nil {
				t.Fatalf("Add after the fix: %v", err)
			}
			for b := range 6 {
				addr, size := f.cfg.BAR(b)
				if size == 0 {
					continue
				}
				if addr != s.BARs[b] {
					t.Errorf("BAR%d holds %#x, Add gave %#x", b, addr, s.BARs[b])
				}
				r := pio.Overlapping(addr, uint64(size))
				want := fmt.Sprintf("[{pci 00:%02x.0 BAR%d %d %d}]", s.Device, b, addr, size)
				if fmt.Sprint(r) != want {
					t.Errorf("BAR%d at %#x: port bus has %v, want %s", b, addr, r, want)
				}
			}
			if got, want := len(pio.Overlapping(0, 0x10000)), others+countBARs(f); got != want {
				t.Errorf("port bus has %d ranges after the retry, want %d: %v", got, want, pio.Overlapping(0, 0x10000))
			}
			if f.cfg.Command()&CommandIO == 0 {
				t.Error("the retried Add left I/O decode off")
			}
		})
	}
}

func countBARs(f Function) int {
	n := 0
	for b := range 6 {
		if _, size := f.PCIConfig().BAR(b); size != 0 {
			n++
		}
	}
	return n
}

// rangeDiff returns the ranges in b and not in a, and those in a and not
// in b.
func rangeDiff(a, b []bus.Range) (added, removed []bus.Range) {
	in := func(r bus.Range, rs []bus.Range) bool {
		for _, x := range rs {
			if x == r {
				return true
			}
		}
		return false
	}
	for _, r := range b {
		if !in(r, a) {
			added = append(added, r)
		}
	}
	for _, r := range a {
		if !in(r, b) {
			removed = append(removed, r)
		}
	}
	return added, removed
}
