// Package bus routes guest port-I/O and MMIO accesses to devices.
//
// A Bus maps non-overlapping address ranges to Devices. The vCPU loop decodes
// a KVM exit into an address, a direction and a data buffer and hands it to
// the bus; it knows no device by name. Reads nobody claims return all ones
// (as on a real ISA/PCI bus) and writes nobody claims are dropped; both are
// counted so that a verbose log can show what the guest poked at.
package bus

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Device is anything that answers accesses to a range on a bus. offset is
// relative to the start of the range the device was registered at; len(data)
// is the access width (1, 2 or 4 for port I/O, up to 8 for MMIO). Read fills
// data in little-endian order; Write consumes it.
type Device interface {
	// Read answers a read of len(data) bytes at offset.
	Read(offset uint64, data []byte)
	// Write takes a write of data at offset.
	Write(offset uint64, data []byte)
}

// IRQ is an interrupt line a device drives. Devices never call KVM
// themselves: the machine hands them an IRQ backed by KVM_IRQ_LINE.
type IRQ interface {
	// Set drives the line high or low. PCI devices hold it high while an
	// interrupt is pending; the UART does the same on its edge-triggered
	// ISA line, which gives the 8259 one rising edge per new event.
	Set(level bool)
}

// Float fills data as a read nobody answers: all ones, the value of a
// floating ISA or PCI bus.
func Float(data []byte) {
	for i := range data {
		data[i] = 0xFF
	}
}

// NoIRQ is an IRQ connected to nothing, for tests and detached devices.
type NoIRQ struct{}

// Set does nothing.
func (NoIRQ) Set(bool) {}

type mapping struct {
	base, size uint64
	name       string
	dev        Device
	// clipped: an access that starts in the range and runs past its end
	// is the device's, cut to the range (RegisterClipped).
	clipped bool
}

// Bus is a set of address ranges, each served by one Device. It is safe for
// concurrent use.
type Bus struct {
	name string

	mu      sync.RWMutex
	ranges  []mapping // sorted by base
	unRead  map[uint64]uint64
	unWrite map[uint64]uint64
	// untracked counts unclaimed accesses past MaxTracked addresses.
	untracked uint64

	// Unclaimed, when set, is called after each access no device claimed,
	// with first true the first time for that address and direction (so a
	// caller can log a polling guest once). Set it before the bus is used.
	Unclaimed func(addr uint64, data []byte, write, first bool)
}

// New returns an empty bus; name ("pio", "mmio") appears in errors.
func New(name string) *Bus {
	return &Bus{name: name, unRead: map[uint64]uint64{}, unWrite: map[uint64]uint64{}}
}

// Register maps [base, base+size) to dev. It refuses empty, overflowing or
// overlapping ranges. An access that runs past the range's end is not
// dev's.
func (b *Bus) Register(name string, base, size uint64, dev Device) error {
	return b.register(mapping{base: base, size: size, name: name, dev: dev})
}

// RegisterClipped is Register for a device that also takes an access
// which starts in its range and runs past its end, as QEMU's memory core
// hands a region the part of a wider access that falls in it (guests
// written for QEMU's ISA devices may count on it): dev gets the bytes
// inside the range; a write's bytes past it are dropped, a read's float.
func (b *Bus) RegisterClipped(name string, base, size uint64, dev Device) error {
	return b.register(mapping{base: base, size: size, name: name, dev: dev, clipped: true})
}

func (b *Bus) register(r mapping) error {
	name, base, size := r.name, r.base, r.size
	if size == 0 || base+size < base {
		return fmt.Errorf("%s bus: %s: bad range base %#x size %#x", b.name, name, base, size)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.ranges {
		if base < m.base+m.size && m.base < base+size {
			return fmt.Errorf("%s bus: %s at [%#x, %#x) overlaps %s at [%#x, %#x)",
				b.name, name, base, base+size, m.name, m.base, m.base+m.size)
		}
	}
	b.ranges = append(b.ranges, r)
	sort.Slice(b.ranges, func(i, j int) bool { return b.ranges[i].base < b.ranges[j].base })
	return nil
}

// Range is a registered address range, as Overlapping reports it.
type Range struct {
	Name       string // the name it was registered with
	Base, Size uint64 // its first address and length in bytes
}

// Overlapping returns the registered ranges that overlap [base,
// base+size), in address order: what a Register of that range would
// collide with (PCI restores check a whole BAR layout before moving any).
func (b *Bus) Overlapping(base, size uint64) []Range {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var out []Range
	for _, m := range b.ranges {
		// m.base < base+size, said without base+size, which wraps for
		// a query running past 2^64 (a registered range's end does not:
		// register refuses it).
		if base < m.base+m.size && (m.base < base || m.base-base < size) {
			out = append(out, Range{Name: m.name, Base: m.base, Size: m.size})
		}
	}
	return out
}

// Unregister removes the range that starts at base and reports whether one
// was there. PCI BAR moves use it.
func (b *Bus) Unregister(base uint64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, m := range b.ranges {
		if m.base == base {
			b.ranges = append(b.ranges[:i], b.ranges[i+1:]...)
			return true
		}
	}
	return false
}

// find returns the mapping that takes an access of n bytes at addr, and
// how many of them it takes (n, or fewer for a clipped range).
func (b *Bus) find(addr uint64, n int) (mapping, int, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	i := sort.Search(len(b.ranges), func(i int) bool { return b.ranges[i].base+b.ranges[i].size > addr })
	if i < len(b.ranges) {
		m := b.ranges[i]
		end := m.base + m.size
		switch {
		case addr < m.base:
		case uint64(n) <= end-addr:
			// Not addr+n <= end: that wraps past 2^64 for an access
			// near the top of the address space. The search gives
			// addr < end.
			return m, n, true
		case m.clipped:
			return m, int(end - addr), true
		}
	}
	return mapping{}, 0, false
}

// Read serves a guest read of len(data) bytes at addr and reports whether a
// device claimed it. Unclaimed reads fill data with 0xFF.
func (b *Bus) Read(addr uint64, data []byte) bool {
	if m, n, ok := b.find(addr, len(data)); ok {
		m.dev.Read(addr-m.base, data[:n])
		Float(data[n:])
		return true
	}
	Float(data)
	b.unclaimed(b.unRead, addr, data, false)
	return false
}

// Write serves a guest write at addr and reports whether a device claimed
// it. Unclaimed writes are dropped.
func (b *Bus) Write(addr uint64, data []byte) bool {
	if m, n, ok := b.find(addr, len(data)); ok {
		m.dev.Write(addr-m.base, data[:n])
		return true
	}
	b.unclaimed(b.unWrite, addr, data, true)
	return false
}

// MaxTracked is how many distinct unclaimed addresses a bus counts one by
// one in each direction. Accesses to further addresses only add to the
// total, so a guest sweeping the address space cannot grow the maps (or the
// once-per-address log) without bound.
const MaxTracked = 4096

// unclaimed counts an access no device took and reports it to Unclaimed.
func (b *Bus) unclaimed(counts map[uint64]uint64, addr uint64, data []byte, write bool) {
	b.mu.Lock()
	first := false
	if _, ok := counts[addr]; ok || len(counts) < MaxTracked {
		counts[addr]++
		first = counts[addr] == 1
	} else {
		b.untracked++
	}
	b.mu.Unlock()
	if b.Unclaimed != nil {
		b.Unclaimed(addr, data, write, first)
	}
}

// Unhandled is a count of accesses no device claimed, by address (for at
// most MaxTracked addresses each way). Total counts every access.
type Unhandled struct {
	Reads, Writes map[uint64]uint64 // accesses by address
	Total         uint64
}

// Busiest returns up to n of the addresses with the most unclaimed
// accesses, as "0x80: 3 writes" or "0x61: 2 reads, 1 write", busiest
// first (ties by address).
func (u Unhandled) Busiest(n int) []string {
	total := map[uint64]uint64{}
	for a, c := range u.Reads {
		total[a] += c
	}
	for a, c := range u.Writes {
		total[a] += c
	}
	addrs := make([]uint64, 0, len(total))
	for a := range total {
		addrs = append(addrs, a)
	}
	sort.Slice(addrs, func(i, j int) bool {
		if total[addrs[i]] != total[addrs[j]] {
			return total[addrs[i]] > total[addrs[j]]
		}
		return addrs[i] < addrs[j]
	})
	out := make([]string, 0, min(n, len(addrs)))
	for _, a := range addrs[:min(n, len(addrs))] {
		var parts []string
		if r := u.Reads[a]; r > 0 {
			parts = append(parts, plural(r, "read"))
		}
		if w := u.Writes[a]; w > 0 {
			parts = append(parts, plural(w, "write"))
		}
		out = append(out, fmt.Sprintf("%#x: %s", a, strings.Join(parts, ", ")))
	}
	return out
}

func plural(n uint64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// Unhandled returns a copy of the counts of unclaimed accesses.
func (b *Bus) Unhandled() Unhandled {
	b.mu.RLock()
	defer b.mu.RUnlock()
	u := Unhandled{Reads: map[uint64]uint64{}, Writes: map[uint64]uint64{}, Total: b.untracked}
	for k, v := range b.unRead {
		u.Reads[k] = v
		u.Total += v
	}
	for k, v := range b.unWrite {
		u.Writes[k] = v
		u.Total += v
	}
	return u
}
