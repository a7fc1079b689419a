package multiboot

import (
	"errors"
	"fmt"
	"io"

	"github.com/smolvmm/smolvmm/internal/bootelf"
)

// ELF constants used here.
const (
	elfShdrSize  = 40
	elfSHTSymtab = bootelf.SHTSymtab
	elfSHTStrtab = bootelf.SHTStrtab
)

// elfHeader holds the ELF32 header fields the symbol loader uses.
type elfHeader struct {
	shoff                      uint32
	shentsize, shnum, shstrndx uint16
}

// parseELF reads an ELF32 i386 executable's header and program headers and
// returns its loadable segments with a physical entry point. Symbols are
// looked for separately (findSymbols).
func parseELF(r io.ReaderAt, size uint64) (*image, elfHeader, error) {
	var eh elfHeader
	h, err := bootelf.ReadHeader(r, size)
	if err != nil {
		if errors.Is(err, ErrNotELF) {
			return nil, eh, fmt.Errorf("%w, and the multiboot header lacks flag 16 (a.out kludge)", err)
		}
		return nil, eh, err
	}
	switch {
	case h.Class == bootelf.Class64:
		return nil, eh, fmt.Errorf("%w: an ELF64 file for %s; a multiboot v1 kernel must be ELF32 i386", ErrUnsupportedELF, bootelf.MachineName(h.Machine))
	case h.Data != bootelf.DataLSB:
		return nil, eh, fmt.Errorf("%w: EI_DATA %d, want 1 (little-endian)", ErrUnsupportedELF, h.Data)
	case h.Type != bootelf.TypeExec:
		return nil, eh, fmt.Errorf("%w: e_type %d, want 2 (ET_EXEC): link the kernel into an executable", ErrUnsupportedELF, h.Type)
	case h.Machine != bootelf.Mach386:
		return nil, eh, fmt.Errorf("%w: an ELF32 file for %s, want Intel 80386 (EM_386)", ErrUnsupportedELF, bootelf.MachineName(h.Machine))
	}
	eh = elfHeader{shoff: uint32(h.Shoff), shentsize: h.Shentsize, shnum: h.Shnum, shstrndx: h.Shstrndx}
	progs, err := h.Progs(r, size)
	if err != nil {
		return nil, eh, err
	}
	segs, err := bootelf.LoadSegments(progs, size, false)
	if err != nil {
		return nil, eh, err
	}
	if len(segs) == 0 {
		return nil, eh, fmt.Errorf("%w: no PT_LOAD segment with a non-zero p_memsz among %d program headers", ErrBadELF, h.Phnum)
	}
	im := &image{format: "elf", segs: segs}
	// The first segment whose virtual range holds e_entry converts it, as
	// GRUB does: kernels link at 0xc0000000+ and load low.
	for _, s := range segs {
		if h.Entry >= s.Vaddr && h.Entry < s.Vaddr+s.MemSize {
			im.entry = uint32(h.Entry - s.Vaddr + s.Addr)
			return im, eh, nil
		}
	}
	return nil, eh, fmt.Errorf("%w: entry point e_entry %#x lies in no PT_LOAD segment's virtual range", ErrBadELF, h.Entry)
}
