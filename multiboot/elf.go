package multiboot

import (
	"encoding/binary"
	"fmt"
	"io"
)

// ELF32 constants used here.
const (
	elfClass32   = 1
	elfClass64   = 2
	elfDataLSB   = 1
	elfTypeExec  = 2
	elfMach386   = 3
	elfPTLoad    = 1
	elfEhdrSize  = 52
	elfPhdrSize  = 32
	elfShdrSize  = 40
	elfSHTSymtab = 2
	elfSHTStrtab = 3
)

// elfHeader holds the ELF32 header fields the loader uses.
type elfHeader struct {
	entry, phoff, shoff        uint32
	phentsize, phnum           uint16
	shentsize, shnum, shstrndx uint16
}

// parseELF reads an ELF32 i386 executable's header and program headers and
// returns its loadable segments with a physical entry point. Symbols are
// looked for separately (findSymbols).
func parseELF(r io.ReaderAt, size uint64) (*image, elfHeader, error) {
	var eh elfHeader
	b := make([]byte, elfEhdrSize)
	if size < 4 {
		return nil, eh, fmt.Errorf("%w: the file is %d bytes", ErrNotELF, size)
	}
	if err := readFull(r, b[:4], 0, "ELF magic"); err != nil {
		return nil, eh, err
	}
	if string(b[:4]) != "\x7fELF" {
		return nil, eh, fmt.Errorf("%w: file starts with % x, not 7f 45 4c 46, and the multiboot header lacks flag 16 (a.out kludge)", ErrNotELF, b[:4])
	}
	if err := inFile(0, elfEhdrSize, size, "ELF header"); err != nil {
		return nil, eh, err
	}
	if err := readFull(r, b, 0, "ELF header"); err != nil {
		return nil, eh, err
	}
	le := binary.LittleEndian
	switch {
	case b[4] == elfClass64:
		return nil, eh, fmt.Errorf("%w: ELF64 (EI_CLASS 2); a multiboot v1 kernel must be ELF32 i386", ErrUnsupportedELF)
	case b[4] != elfClass32:
		return nil, eh, fmt.Errorf("%w: EI_CLASS %d, want 1 (ELF32)", ErrUnsupportedELF, b[4])
	case b[5] != elfDataLSB:
		return nil, eh, fmt.Errorf("%w: EI_DATA %d, want 1 (little-endian)", ErrUnsupportedELF, b[5])
	}
	if t := le.Uint16(b[16:]); t != elfTypeExec {
		return nil, eh, fmt.Errorf("%w: e_type %d, want 2 (ET_EXEC): link the kernel into an executable", ErrUnsupportedELF, t)
	}
	if m := le.Uint16(b[18:]); m != elfMach386 {
		return nil, eh, fmt.Errorf("%w: e_machine %d, want 3 (EM_386)", ErrUnsupportedELF, m)
	}
	eh = elfHeader{
		entry: le.Uint32(b[24:]), phoff: le.Uint32(b[28:]), shoff: le.Uint32(b[32:]),
		phentsize: le.Uint16(b[42:]), phnum: le.Uint16(b[44:]),
		shentsize: le.Uint16(b[46:]), shnum: le.Uint16(b[48:]), shstrndx: le.Uint16(b[50:]),
	}
	if eh.phnum == 0 {
		return nil, eh, fmt.Errorf("%w: no program headers (e_phnum 0)", ErrBadELF)
	}
	if eh.phentsize < elfPhdrSize {
		return nil, eh, fmt.Errorf("%w: e_phentsize %d, want at least %d", ErrBadELF, eh.phentsize, elfPhdrSize)
	}
	phLen := uint64(eh.phnum) * uint64(eh.phentsize)
	if err := inFile(uint64(eh.phoff), phLen, size, "program header table"); err != nil {
		return nil, eh, err
	}
	ph := make([]byte, phLen)
	if err := readFull(r, ph, uint64(eh.phoff), "program header table"); err != nil {
		return nil, eh, err
	}

	im := &image{format: "elf"}
	entryFound := false
	for i := range int(eh.phnum) {
		p := ph[i*int(eh.phentsize):]
		if le.Uint32(p) != elfPTLoad {
			continue
		}
		off, vaddr, paddr := le.Uint32(p[4:]), le.Uint32(p[8:]), le.Uint32(p[12:])
		filesz, memsz := le.Uint32(p[16:]), le.Uint32(p[20:])
		name := fmt.Sprintf("segment %d", i)
		if filesz > memsz {
			return nil, eh, fmt.Errorf("%w: %s: p_filesz %#x > p_memsz %#x", ErrBadELF, name, filesz, memsz)
		}
		if memsz == 0 {
			continue
		}
		// A pure-BSS segment reads nothing: its p_offset is meaningless
		// (tools leave anything there, even past the end of the file).
		if filesz == 0 {
			off = 0
		}
		if err := inFile(uint64(off), uint64(filesz), size, name); err != nil {
			return nil, eh, err
		}
		// The first segment whose virtual range holds e_entry converts it,
		// as GRUB does: kernels link at 0xc0000000+ and load low.
		if !entryFound && eh.entry >= vaddr && uint64(eh.entry) < uint64(vaddr)+uint64(memsz) {
			im.entry = eh.entry - vaddr + paddr
			entryFound = true
		}
		im.segs = append(im.segs, segment{
			name: name, fileOff: uint64(off), fileSize: uint64(filesz),
			addr: uint64(paddr), memSize: uint64(memsz),
		})
	}
	if len(im.segs) == 0 {
		return nil, eh, fmt.Errorf("%w: no PT_LOAD segment with a non-zero p_memsz among %d program headers", ErrBadELF, eh.phnum)
	}
	if !entryFound {
		return nil, eh, fmt.Errorf("%w: entry point e_entry %#x lies in no PT_LOAD segment's virtual range", ErrBadELF, eh.entry)
	}
	return im, eh, nil
}
