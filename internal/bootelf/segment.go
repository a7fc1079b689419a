package bootelf

import (
	"fmt"
	"io"

	"github.com/smolvmm/smolvmm/guestmem"
)

// LowReserved is where kernels may start: below it live the VMM's IVT, BIOS
// data and firmware stubs and the loaders' data.
const LowReserved = 1 * MiB

// Segment is one piece of a kernel image to place in guest memory.
type Segment struct {
	Name              string // for errors: "segment 2" or "a.out image"
	FileOff, FileSize uint64 // where its bytes are in the file, and how many
	Addr, MemSize     uint64 // physical; MemSize >= FileSize, the rest is BSS
	Vaddr             uint64 // the ELF p_vaddr (0 for a.out)
}

// End is the first byte after the segment, BSS included.
func (s Segment) End() uint64 { return s.Addr + s.MemSize }

// String is the segment's name and its half-open address range, BSS
// included, for the logged layout.
func (s Segment) String() string {
	return fmt.Sprintf("%s [%#x, %#x)", s.Name, s.Addr, s.End())
}

// LoadSegments returns the PT_LOAD segments of progs that occupy memory,
// at their p_paddr, checking filesz <= memsz and that their bytes are in
// the file. When needPerm is set, segments without any of PF_R, PF_W, PF_X
// are skipped, as NetBSD's loader skips them (sys/lib/libsa/
// loadfile_elf32.c:721-723).
func LoadSegments(progs []Prog, size uint64, needPerm bool) ([]Segment, error) {
	var segs []Segment
	for _, p := range progs {
		if p.Type != PTLoad || (needPerm && p.Flags&(PFR|PFW|PFX) == 0) {
			continue
		}
		name := fmt.Sprintf("segment %d", p.Index)
		if p.Filesz > p.Memsz {
			return nil, fmt.Errorf("%w: %s: p_filesz %#x > p_memsz %#x", ErrBadELF, name, p.Filesz, p.Memsz)
		}
		if p.Memsz == 0 {
			continue
		}
		off := p.Offset
		// A pure-BSS segment reads nothing: its p_offset is meaningless
		// (tools leave anything there, even past the end of the file).
		if p.Filesz == 0 {
			off = 0
		}
		if err := InFile(off, p.Filesz, size, name); err != nil {
			return nil, err
		}
		if p.Paddr+p.Memsz < p.Paddr {
			return nil, fmt.Errorf("%w: %s: p_paddr %#x + p_memsz %#x wraps around", ErrBadELF, name, p.Paddr, p.Memsz)
		}
		segs = append(segs, Segment{Name: name, FileOff: off, FileSize: p.Filesz,
			Addr: p.Paddr, MemSize: p.Memsz, Vaddr: p.Vaddr})
	}
	return segs, nil
}

// Extent returns the lowest start and highest end of segs.
func Extent(segs []Segment) (start, end uint64) {
	start = ^uint64(0)
	for _, s := range segs {
		start = min(start, s.Addr)
		end = max(end, s.End())
	}
	return start, end
}

// CheckPlacement refuses segments in the low 1 MiB and segments that
// overlap each other. It compares every pair: the segments come from at
// most MaxProgs program headers.
func CheckPlacement(segs []Segment) error {
	for i, s := range segs {
		if s.Addr < LowReserved {
			return fmt.Errorf("%w: %s starts below %#x, where the VMM keeps the interrupt table, BIOS data and the loader's information area; link the kernel at 1 MiB or above",
				ErrLowMemory, s, LowReserved)
		}
		for _, t := range segs[:i] {
			if s.Addr < t.End() && t.Addr < s.End() {
				return fmt.Errorf("%w: %s and %s share physical memory", ErrOverlap, t, s)
			}
		}
	}
	return nil
}

// WriteSegments copies the segments from kernel into mem and zeroes their
// BSS.
func WriteSegments(mem *guestmem.Memory, kernel io.ReaderAt, segs []Segment) error {
	for _, s := range segs {
		dst, err := mem.Slice(s.Addr, s.MemSize)
		if err != nil {
			return fmt.Errorf("placing %s: %w", s, err)
		}
		if err := ReadFull(kernel, dst[:s.FileSize], s.FileOff, s.Name); err != nil {
			return err
		}
		clear(dst[s.FileSize:])
	}
	return nil
}

// Memory map types, as the BIOS E820 call and both boot protocols number
// them.
const (
	MemUsable   = 1
	MemReserved = 2
)

// LowMemTop is the top of conventional memory, 640 KiB.
const LowMemTop = 640 << 10

// MemRange is one memory map entry.
type MemRange struct {
	Base, Length uint64 // its first address and size in bytes
	Type         uint32 // MemUsable or MemReserved
}

// MemoryMap is the short map every protocol gives the guest: conventional
// memory, the legacy hole (the VMM's firmware area), and everything from
// 1 MiB to the top of RAM as usable.
func MemoryMap(memSize uint64) []MemRange {
	return []MemRange{
		{0, LowMemTop, MemUsable},
		{LowMemTop, LowReserved - LowMemTop, MemReserved},
		{LowReserved, memSize - LowReserved, MemUsable},
	}
}
