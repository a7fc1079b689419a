package netbsdboot

import (
	"fmt"
	"io"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/internal/bootelf"
)

// piece is a range of the kernel file copied into guest memory.
type piece struct {
	addr, off, n uint64
	what         string
}

// symArea is the symbol area /boot puts right after the kernel
// (sys/lib/libsa/loadfile_elf32.c:670-807 and loadsym at 506-666): a copy
// of the ELF header, the section header table with each sh_offset made
// relative to that copy, and the sections it copies.
type symArea struct {
	start   uint64 // the ELF header copy: BTINFO_SYMTAB's ssym
	hdr     []byte
	shdrs   []byte // at start + len(hdr)
	pieces  []piece
	end     uint64   // first byte after the last section (maxp)
	symtab  bool     // an SHT_SYMTAB was copied
	notices []string // why a symbol table was not
}

// ctfName is the one SHT_PROGBITS section /boot copies
// (loadfile_elf32.c:578-588; strncmp over 10 bytes: an exact match).
const ctfName = ".SUNW_ctf"

// planSymbols lays out the symbol area at kernelEnd. ELFROUND is 4 for
// ELF32 and 8 for ELF64 (loadfile_elf32.c:59).
func planSymbols(r io.ReaderAt, size uint64, h bootelf.Header, secs []bootelf.Section, raw []byte, kernelEnd uint64) (*symArea, error) {
	round := uint64(4)
	if h.Class == bootelf.Class64 {
		round = 8
	}
	a := &symArea{}
	// maxp = roundup(end of the segments, ELFROUND); the header copy goes
	// there (loadfile_elf32.c:773-782).
	maxp := bootelf.AlignUp(kernelEnd, round)
	a.start = maxp
	a.hdr = headerCopy(h, len(raw) > 0)
	maxp += uint64(len(a.hdr))
	// The section headers follow it (loadfile_elf32.c:532-533).
	a.shdrs = append([]byte(nil), raw...)
	maxp += bootelf.AlignUp(uint64(len(raw)), round)

	copySec := func(s bootelf.Section, what string) error {
		if err := bootelf.InFile(s.Offset, s.Size, size, what); err != nil {
			return err
		}
		a.pieces = append(a.pieces, piece{addr: maxp, off: s.Offset, n: s.Size, what: what})
		h.PutShOffset(a.shdrs, s.Index, maxp-a.start)
		maxp += bootelf.AlignUp(s.Size, round)
		return nil
	}

	shstrndx := int(h.Shstrndx)
	var shstr []byte
	if len(secs) > 0 && shstrndx != 0 {
		if shstrndx >= len(secs) {
			return nil, fmt.Errorf("%w: e_shstrndx %d, but there are %d sections", ErrBadELF, shstrndx, len(secs))
		}
		// The section names come first, for CTF (loadfile_elf32.c:540-562).
		s := secs[shstrndx]
		if err := copySec(s, fmt.Sprintf("section name table (section %d)", shstrndx)); err != nil {
			return nil, err
		}
		shstr = make([]byte, s.Size)
		if err := bootelf.ReadFull(r, shstr, s.Offset, "section name table"); err != nil {
			return nil, err
		}
	}
	// The string tables symbol tables link to, found once: a scan of
	// every section per string table, as /boot does, is quadratic in a
	// count the file sets.
	linked := make([]bool, len(secs))
	for _, t := range secs[min(1, len(secs)):] {
		if t.Type == bootelf.SHTSymtab && uint64(t.Link) < uint64(len(secs)) {
			linked[t.Link] = true
		}
	}
	// Then, in section order, the symbol tables, the string tables they
	// link to and CTF; every other section gets sh_offset 0 so that the
	// kernel skips it (loadfile_elf32.c:564-643).
	for i := 1; i < len(secs); i++ {
		if i == shstrndx {
			continue
		}
		s := secs[i]
		keep := false
		switch s.Type {
		case bootelf.SHTProgbits:
			keep = shstr != nil && bootelf.SectionName(shstr, s) == ctfName
		case bootelf.SHTStrtab:
			keep = linked[i]
		case bootelf.SHTSymtab:
			// The kernel reads sh_link as its strings' section
			// unchecked (kern_ksyms.c:487-490): a symbol table
			// linked elsewhere gets sh_offset 0, which the kernel
			// skips, and a notice.
			if n := bootelf.SymtabLinkNotice(i, s.Link, len(secs), func(j int) uint32 { return secs[j].Type }); n != "" {
				a.notices = append(a.notices, n)
				break
			}
			keep = true
			a.symtab = true
		}
		if !keep {
			h.PutShOffset(a.shdrs, i, 0)
			continue
		}
		if err := copySec(s, fmt.Sprintf("section %d (type %d)", i, s.Type)); err != nil {
			return nil, err
		}
	}
	a.end = maxp
	return a, nil
}

// headerCopy is the ELF header as /boot stores it in front of the symbols:
// no program headers, section headers right after it
// (loadfile_elf32.c:793-800). Without a section table to copy (e_shoff
// or e_shnum 0) it says there are no sections, e_shnum 0 and e_shstrndx
// SHN_UNDEF: the kernel reads e_shnum headers from e_shoff and the names
// at e_shstrndx unchecked (kern_ksyms.c:479-501), and would read past the
// symbol area; with 0 it finds no symbol table and says so. /boot instead
// copies e_shnum headers from file offset e_shoff, even 0.
func headerCopy(h bootelf.Header, shdrs bool) []byte {
	b := append([]byte(nil), h.Raw...)
	o := h.Order()
	if h.Class == bootelf.Class64 {
		o.PutUint64(b[32:], 0)              // e_phoff
		o.PutUint64(b[40:], uint64(len(b))) // e_shoff
		o.PutUint16(b[54:], 0)              // e_phentsize
		o.PutUint16(b[56:], 0)              // e_phnum
		if !shdrs {
			o.PutUint16(b[60:], 0) // e_shnum
			o.PutUint16(b[62:], 0) // e_shstrndx
		}
	} else {
		o.PutUint32(b[28:], 0)
		o.PutUint32(b[32:], uint32(len(b)))
		o.PutUint16(b[42:], 0)
		o.PutUint16(b[44:], 0)
		if !shdrs {
			o.PutUint16(b[48:], 0)
			o.PutUint16(b[50:], 0)
		}
	}
	return b
}

// write copies the area into mem.
func (a *symArea) write(mem *guestmem.Memory, r io.ReaderAt) error {
	dst, err := mem.Slice(a.start, a.end-a.start)
	if err != nil {
		return fmt.Errorf("placing the symbol area: %w", err)
	}
	clear(dst)
	copy(dst, a.hdr)
	copy(dst[len(a.hdr):], a.shdrs)
	for _, p := range a.pieces {
		if err := bootelf.ReadFull(r, dst[p.addr-a.start:p.addr-a.start+p.n], p.off, p.what); err != nil {
			return err
		}
	}
	return nil
}
