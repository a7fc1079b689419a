package multiboot

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/smolvmm/smolvmm/internal/bootelf"
)

// symbols is an ELF symbol table and its string table, to be loaded after
// the kernel image and described by the section header array (flag 0x20).
type symbols struct {
	shdrs          []byte // the file's section header table, patched in place
	num, shndx     uint32
	symIdx, strIdx int
	symOff, symLen uint64 // in the file
	strOff, strLen uint64
	symAddr        uint64 // physical load addresses, set by placement
	strAddr        uint64
}

// shdr reads field f (a byte offset) of section header i.
func (s *symbols) shdr(i, f int) uint32 {
	return binary.LittleEndian.Uint32(s.shdrs[i*elfShdrSize+f:])
}

// Section header field offsets.
const (
	shType   = 4
	shAddr   = 12
	shOffset = 16
	shSize   = 20
	shLink   = 24
)

// findSymbols reads the section header table and picks the first
// SHT_SYMTAB whose sh_link names an SHT_STRTAB. It returns nil (and a note
// saying why when it is not simply absent) when the kernel gets no symbols.
func findSymbols(r io.ReaderAt, size uint64, eh elfHeader) (*symbols, string, error) {
	if eh.shnum == 0 || eh.shoff == 0 {
		return nil, "", nil
	}
	if eh.shentsize != elfShdrSize {
		return nil, "", fmt.Errorf("%w: e_shentsize %d, want %d", ErrBadELF, eh.shentsize, elfShdrSize)
	}
	n := uint64(eh.shnum) * elfShdrSize
	if err := inFile(uint64(eh.shoff), n, size, "section header table"); err != nil {
		return nil, "", err
	}
	s := &symbols{shdrs: make([]byte, n), num: uint32(eh.shnum), shndx: uint32(eh.shstrndx), symIdx: -1}
	if err := readFull(r, s.shdrs, uint64(eh.shoff), "section header table"); err != nil {
		return nil, "", err
	}
	for i := range int(s.num) {
		if s.shdr(i, shType) != elfSHTSymtab {
			continue
		}
		link := s.shdr(i, shLink)
		if notice := bootelf.SymtabLinkNotice(i, link, int(s.num), func(j int) uint32 { return s.shdr(j, shType) }); notice != "" {
			return nil, notice, nil
		}
		s.symIdx, s.strIdx = i, int(link)
		break
	}
	if s.symIdx < 0 {
		return nil, "", nil
	}
	if j := netbsdPick(s); j != s.symIdx {
		return nil, fmt.Sprintf("no symbols: NetBSD's loose section test would pick section %d before the symbol table (section %d) and copy garbage", j, s.symIdx), nil
	}
	s.symOff, s.symLen = uint64(s.shdr(s.symIdx, shOffset)), uint64(s.shdr(s.symIdx, shSize))
	s.strOff, s.strLen = uint64(s.shdr(s.strIdx, shOffset)), uint64(s.shdr(s.strIdx, shSize))
	if err := inFile(s.symOff, s.symLen, size, fmt.Sprintf("symbol table (section %d)", s.symIdx)); err != nil {
		return nil, "", err
	}
	if err := inFile(s.strOff, s.strLen, size, fmt.Sprintf("string table (section %d)", s.strIdx)); err != nil {
		return nil, "", err
	}
	return s, "", nil
}

// netbsdPick returns the section NetBSD's copy_syms would take as the symbol
// table: the first whose sh_type has bit 1 set and whose non-zero sh_link
// names a section with sh_type bit 0 or 1 set (it tests with &, not ==). A
// link past the array counts as a match: the kernel would read past it.
func netbsdPick(s *symbols) int {
	for i := range int(s.num) {
		link := s.shdr(i, shLink)
		if s.shdr(i, shType)&elfSHTSymtab == 0 || link == 0 {
			continue
		}
		if link >= s.num || s.shdr(int(link), shType)&elfSHTStrtab != 0 {
			return i
		}
	}
	return -1
}

// place puts the symbol table at the first 4-byte boundary at or after
// kernelEnd and the string table right after it, patches their sh_addr in
// the copied headers, and returns the end of the string table.
func (s *symbols) place(kernelEnd uint64) uint64 {
	s.symAddr = alignUp(kernelEnd, 4)
	s.strAddr = alignUp(s.symAddr+s.symLen, 4)
	binary.LittleEndian.PutUint32(s.shdrs[s.symIdx*elfShdrSize+shAddr:], uint32(s.symAddr))
	binary.LittleEndian.PutUint32(s.shdrs[s.strIdx*elfShdrSize+shAddr:], uint32(s.strAddr))
	return s.strAddr + s.strLen
}

func alignUp(v, a uint64) uint64 { return (v + a - 1) &^ (a - 1) }
