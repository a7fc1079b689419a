package multiboot

import (
	"encoding/binary"
	"fmt"

	"github.com/smolvmm/smolvmm/internal/bootelf"
)

// Info structure flags (what the loader provides). The loader never sets
// boot_device (0x2) or drives (0x80): NetBSD mishandles both without a BIOS.
const (
	InfoMemory     = 1 << 0 // mem_lower, mem_upper
	InfoCmdline    = 1 << 2 // cmdline
	InfoMods       = 1 << 3 // mods_count, mods_addr
	InfoELFShdr    = 1 << 5 // ELF section headers: num, size, addr, shndx
	InfoMmap       = 1 << 6 // mmap_length, mmap_addr
	InfoLoaderName = 1 << 9 // boot_loader_name; only ever with InfoCmdline
)

// Byte offsets of the information structure's fields.
const (
	InfoOffFlags      = 0
	InfoOffMemLower   = 4
	InfoOffMemUpper   = 8
	InfoOffCmdline    = 16
	InfoOffModsCount  = 20
	InfoOffModsAddr   = 24
	InfoOffShdrNum    = 28
	InfoOffShdrSize   = 32
	InfoOffShdrAddr   = 36
	InfoOffShdrShndx  = 40
	InfoOffMmapLength = 44
	InfoOffMmapAddr   = 48
	InfoOffLoaderName = 64
)

// InfoSize is how many bytes the loader reserves and zeroes for the
// information structure: the v1 structure is 116 bytes with framebuffer
// fields and NetBSD copies about 120.
const InfoSize = 128

// The loader's low-memory window. Below LowAreaStart are the VMM's IVT and
// BIOS data and the six pages NetBSD i386 reserves, 0-5 (page 1 takes its
// real-mode BIOS-call trampoline; i386/machdep.c). amd64 reserves eight
// (amd64/machdep.c init_x86_64, lowmem_rsvd): pages 6 and 7 hold the
// temporary PML3 and PML4 for starting another CPU, so the window's
// first two pages lie in them. That is harmless: the kernel copies what the
// loader put there at entry, long before it starts a CPU. From LowAreaEnd
// the EBDA and firmware areas begin.
const (
	LowAreaStart = 0x6000
	LowAreaEnd   = 0x9F000
)

// LoaderName is the boot_loader_name the guest sees.
const LoaderName = "smolvmm"

// Memory map entry layout: a size field (20, the bytes that follow it),
// base and length (64-bit) and type.
const (
	mmapEntrySize  = 24
	mmapSizeField  = 20
	mmapUsable     = 1
	mmapReserved   = 2
	lowMemTop      = 640 * kib
	modEntrySize   = 16
	maxCmdlineSize = 254 // NetBSD strncpy()s 255 bytes: keep room for the NUL
)

// memoryMap is the short map the guest gets (the same for every protocol):
// conventional memory, the legacy hole, and everything from 1 MiB to the
// top as usable.
func memoryMap(memSize uint64) []bootelf.MemRange { return bootelf.MemoryMap(memSize) }

func encodeMmap(es []bootelf.MemRange) []byte {
	b := make([]byte, len(es)*mmapEntrySize)
	for i, e := range es {
		p := b[i*mmapEntrySize:]
		binary.LittleEndian.PutUint32(p, mmapSizeField)
		binary.LittleEndian.PutUint64(p[4:], e.Base)
		binary.LittleEndian.PutUint64(p[12:], e.Length)
		binary.LittleEndian.PutUint32(p[20:], e.Type)
	}
	return b
}

// lowArea hands out space in [LowAreaStart, LowAreaEnd) in order.
type lowArea struct {
	next  uint64
	items []lowItem
}

// lowItem is one piece of loader data and where it goes.
type lowItem struct {
	addr uint64
	data []byte
}

// add reserves room for data (aligned to align) and returns its address.
func (a *lowArea) add(data []byte, align uint64, what string) (uint32, error) {
	if a.next == 0 {
		a.next = LowAreaStart
	}
	addr := alignUp(a.next, align)
	end := addr + uint64(len(data))
	if end > LowAreaEnd {
		return 0, fmt.Errorf("%w: %s (%d bytes) would end at %#x, past %#x (the loader's window starts at %#x)",
			ErrLowAreaFull, what, len(data), end, LowAreaEnd, LowAreaStart)
	}
	a.items = append(a.items, lowItem{addr, data})
	a.next = end
	return uint32(addr), nil
}

// end is the first byte after everything added.
func (a *lowArea) end() uint64 { return max(a.next, LowAreaStart) }

// cstring returns s with a terminating NUL, refusing embedded NULs.
func cstring(s, what string) ([]byte, error) {
	for i := range len(s) {
		if s[i] == 0 {
			return nil, fmt.Errorf("%w: %s has a NUL byte at index %d", ErrCmdline, what, i)
		}
	}
	return append([]byte(s), 0), nil
}
