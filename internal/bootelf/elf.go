package bootelf

import (
	"encoding/binary"
	"fmt"
	"io"
)

// ELF constants used by the loaders.
const (
	Class32   = 1
	Class64   = 2
	DataLSB   = 1
	DataMSB   = 2
	TypeExec  = 2
	Mach386   = 3
	MachAMD64 = 62

	PTLoad = 1
	PTNote = 4

	PFX = 1
	PFW = 2
	PFR = 4

	SHTProgbits = 1
	SHTSymtab   = 2
	SHTStrtab   = 3
	SHTNote     = 7

	SHFAlloc = 2
)

// Header is an ELF file header of either class, in the file's byte order.
type Header struct {
	Class byte // Class32 or Class64
	Data  byte // DataLSB or DataMSB
	// Type, Machine, Entry, Phoff, Shoff, Phentsize, Phnum, Shentsize,
	// Shnum and Shstrndx are the e_ fields of those names (a 32-bit
	// file's addresses and offsets widened).
	Type      uint16
	Machine   uint16
	Entry     uint64
	Phoff     uint64
	Shoff     uint64
	Phentsize uint16
	Phnum     uint16
	Shentsize uint16
	Shnum     uint16
	Shstrndx  uint16
	// Raw is the header as it is in the file (52 or 64 bytes).
	Raw []byte
}

// Size is the header's size for its class: 52 or 64 bytes.
func (h Header) Size() int { return ehdrSize(h.Class) }

// PhdrSize is a program header's size for the class: 32 or 56 bytes.
func (h Header) PhdrSize() int {
	if h.Class == Class64 {
		return 56
	}
	return 32
}

// ShdrSize is a section header's size for the class: 40 or 64 bytes.
func (h Header) ShdrSize() int {
	if h.Class == Class64 {
		return 64
	}
	return 40
}

// Order is the file's byte order.
func (h Header) Order() binary.ByteOrder {
	if h.Data == DataMSB {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

func ehdrSize(class byte) int {
	if class == Class64 {
		return 64
	}
	return 52
}

// ReadHeader reads the ELF header of the file r (size bytes). It accepts
// both classes and byte orders: what may boot is the caller's decision.
func ReadHeader(r io.ReaderAt, size uint64) (Header, error) {
	var h Header
	ident := make([]byte, 16)
	if size < 4 {
		return h, fmt.Errorf("%w: the file is %d bytes", ErrNotELF, size)
	}
	if err := ReadFull(r, ident[:4], 0, "ELF magic"); err != nil {
		return h, err
	}
	if string(ident[:4]) != "\x7fELF" {
		// Quoted as kstrip quotes them: text reads as text ("hell"), a
		// binary format's magic as escapes ("\x1f\x8b\b\x00").
		return h, fmt.Errorf("%w: the file starts with %q, not %q%s", ErrNotELF, ident[:4], "\x7fELF", Identify(r, size).Is())
	}
	if err := InFile(0, 16, size, "ELF identification"); err != nil {
		return h, err
	}
	if err := ReadFull(r, ident, 0, "ELF identification"); err != nil {
		return h, err
	}
	h.Class, h.Data = ident[4], ident[5]
	if h.Class != Class32 && h.Class != Class64 {
		return h, fmt.Errorf("%w: EI_CLASS %d, want 1 (ELF32) or 2 (ELF64)", ErrUnsupportedELF, h.Class)
	}
	if h.Data != DataLSB && h.Data != DataMSB {
		return h, fmt.Errorf("%w: EI_DATA %d, want 1 (little-endian) or 2 (big-endian)", ErrUnsupportedELF, h.Data)
	}
	n := ehdrSize(h.Class)
	if err := InFile(0, uint64(n), size, "ELF header"); err != nil {
		return h, err
	}
	b := make([]byte, n)
	if err := ReadFull(r, b, 0, "ELF header"); err != nil {
		return h, err
	}
	h.Raw = b
	o := h.Order()
	h.Type, h.Machine = o.Uint16(b[16:]), o.Uint16(b[18:])
	if h.Class == Class64 {
		h.Entry, h.Phoff, h.Shoff = o.Uint64(b[24:]), o.Uint64(b[32:]), o.Uint64(b[40:])
		b = b[54:]
	} else {
		h.Entry, h.Phoff, h.Shoff = uint64(o.Uint32(b[24:])), uint64(o.Uint32(b[28:])), uint64(o.Uint32(b[32:]))
		b = b[42:]
	}
	h.Phentsize, h.Phnum = o.Uint16(b), o.Uint16(b[2:])
	h.Shentsize, h.Shnum, h.Shstrndx = o.Uint16(b[4:]), o.Uint16(b[6:]), o.Uint16(b[8:])
	return h, nil
}

// Content is what a file that is not ELF holds, as its magic numbers
// tell: the kinds of file given in place of a kernel by mistake.
type Content int

// The kinds Identify names.
const (
	ContentUnknown Content = iota // none of the kinds below
	ContentGzip                   // gzip data: 1f 8b
	ContentXZ                     // xz data: fd "7zXZ" 00 (its first 4 bytes suffice)
	ContentBzip2                  // bzip2 data: "BZh" and a block size, 1-9
	ContentZstd                   // zstd data: 28 b5 2f fd
	ContentExt2                   // an ext2 (or ext3, ext4) file system image: 0xef53 at offset 1080
	ContentTar                    // a tar archive: "ustar" at offset 257
)

// String names c as a message says it ("xz-compressed data", "a tar
// archive"), "" for ContentUnknown.
func (c Content) String() string {
	switch c {
	case ContentGzip:
		return "gzip data"
	case ContentXZ:
		return "xz-compressed data"
	case ContentBzip2:
		return "bzip2-compressed data"
	case ContentZstd:
		return "zstd-compressed data"
	case ContentExt2:
		return "an ext2 file system image"
	case ContentTar:
		return "a tar archive"
	}
	return ""
}

// Compressed reports whether c is compressed data.
func (c Content) Compressed() bool {
	return c == ContentGzip || c == ContentXZ || c == ContentBzip2 || c == ContentZstd
}

// Is is the clause a message that quoted the data's first bytes adds to
// name c: ": it is xz-compressed data", with where the magic lies when
// not at the start; "" for ContentUnknown.
func (c Content) Is() string {
	switch c {
	case ContentUnknown:
		return ""
	case ContentExt2:
		return ": it is " + c.String() + " (magic 0xef53 at offset 1080)"
	case ContentTar:
		return ": it is " + c.String() + " (\"ustar\" at offset 257)"
	}
	return ": it is " + c.String()
}

// identifyLen is how much of a file Identify reads: through the ext2
// superblock's magic, the farthest it looks.
const identifyLen = 1082

// Identify names what the file r (size bytes) holds when its magic
// numbers are those of a compressed file, a file system image or a tar
// archive, and is ContentUnknown otherwise (for an ELF file too).
// A file it cannot read is ContentUnknown: it only adds to a refusal.
func Identify(r io.ReaderAt, size uint64) Content {
	b := make([]byte, min(size, identifyLen))
	n, _ := r.ReadAt(b, 0)
	return IdentifyBytes(b[:n])
}

// IdentifyBytes is Identify of the file whose first bytes are head (all
// of them, or at least its first 1082).
func IdentifyBytes(head []byte) Content {
	has := func(off int, magic string) bool {
		return len(head) >= off+len(magic) && string(head[off:off+len(magic)]) == magic
	}
	switch {
	case has(0, "\x7fELF"):
		return ContentUnknown
	case has(0, "\x1f\x8b"):
		return ContentGzip
	case has(0, "\xfd7zX"): // the first 4 of its 6, all a kernel's magic check reads
		return ContentXZ
	case has(0, "BZh") && len(head) > 3 && head[3] >= '1' && head[3] <= '9':
		return ContentBzip2
	case has(0, "\x28\xb5\x2f\xfd"):
		return ContentZstd
	case has(257, "ustar"):
		return ContentTar
	case has(1080, "\x53\xef"):
		return ContentExt2
	}
	return ContentUnknown
}

// Prog is one program header.
type Prog struct {
	Index int // its place in the program header table, from 0
	// Type, Flags, Offset, Vaddr, Paddr, Filesz, Memsz and Align are
	// the p_ fields of those names (a 32-bit file's widened).
	Type, Flags                                uint32
	Offset, Vaddr, Paddr, Filesz, Memsz, Align uint64
}

// MaxProgs is how many program headers Progs reads: NetBSD's exec refuses
// more (ELF_MAXPHNUM, sys/sys/exec_elf.h:1291, sys/kern/exec_elf.c:894),
// kernels have a handful, and each costs the loaders work (the overlap
// check compares every pair of segments).
const MaxProgs = 128

// Progs reads the program header table. It fails when there is none or
// more than MaxProgs.
func (h Header) Progs(r io.ReaderAt, size uint64) ([]Prog, error) {
	if h.Phnum == 0 {
		return nil, fmt.Errorf("%w: no program headers (e_phnum 0)", ErrBadELF)
	}
	if h.Phnum > MaxProgs {
		return nil, fmt.Errorf("%w: e_phnum %d: a kernel has at most %d program headers (NetBSD's ELF_MAXPHNUM)", ErrBadELF, h.Phnum, MaxProgs)
	}
	want := h.PhdrSize()
	if int(h.Phentsize) < want {
		return nil, fmt.Errorf("%w: e_phentsize %d, want at least %d", ErrBadELF, h.Phentsize, want)
	}
	n := uint64(h.Phnum) * uint64(h.Phentsize)
	if err := InFile(h.Phoff, n, size, "program header table"); err != nil {
		return nil, err
	}
	raw := make([]byte, n)
	if err := ReadFull(r, raw, h.Phoff, "program header table"); err != nil {
		return nil, err
	}
	o := h.Order()
	ps := make([]Prog, h.Phnum)
	for i := range ps {
		p := raw[i*int(h.Phentsize):]
		if h.Class == Class64 {
			ps[i] = Prog{Index: i, Type: o.Uint32(p), Flags: o.Uint32(p[4:]), Offset: o.Uint64(p[8:]),
				Vaddr: o.Uint64(p[16:]), Paddr: o.Uint64(p[24:]), Filesz: o.Uint64(p[32:]), Memsz: o.Uint64(p[40:]), Align: o.Uint64(p[48:])}
		} else {
			ps[i] = Prog{Index: i, Type: o.Uint32(p), Offset: uint64(o.Uint32(p[4:])),
				Vaddr: uint64(o.Uint32(p[8:])), Paddr: uint64(o.Uint32(p[12:])), Filesz: uint64(o.Uint32(p[16:])),
				Memsz: uint64(o.Uint32(p[20:])), Flags: o.Uint32(p[24:]), Align: uint64(o.Uint32(p[28:]))}
		}
	}
	return ps, nil
}

// Section is one section header.
type Section struct {
	Index int // its place in the section header table, from 0
	// Name (an offset in the section name table), Type, Flags, Addr,
	// Offset, Size, Link, Info, Addralign and Entsize are the sh_ fields
	// of those names (a 32-bit file's widened).
	Name, Type         uint32
	Flags, Addr        uint64
	Offset, Size       uint64
	Link, Info         uint32
	Addralign, Entsize uint64
}

// Sections reads the section header table and returns the decoded headers
// and the table as it is in the file. A file without one gives nil, nil.
func (h Header) Sections(r io.ReaderAt, size uint64) ([]Section, []byte, error) {
	if h.Shnum == 0 || h.Shoff == 0 {
		return nil, nil, nil
	}
	want := h.ShdrSize()
	if int(h.Shentsize) != want {
		return nil, nil, fmt.Errorf("%w: e_shentsize %d, want %d", ErrBadELF, h.Shentsize, want)
	}
	n := uint64(h.Shnum) * uint64(want)
	if err := InFile(h.Shoff, n, size, "section header table"); err != nil {
		return nil, nil, err
	}
	raw := make([]byte, n)
	if err := ReadFull(r, raw, h.Shoff, "section header table"); err != nil {
		return nil, nil, err
	}
	o := h.Order()
	ss := make([]Section, h.Shnum)
	for i := range ss {
		p := raw[i*want:]
		if h.Class == Class64 {
			ss[i] = Section{Index: i, Name: o.Uint32(p), Type: o.Uint32(p[4:]), Flags: o.Uint64(p[8:]),
				Addr: o.Uint64(p[16:]), Offset: o.Uint64(p[24:]), Size: o.Uint64(p[32:]),
				Link: o.Uint32(p[40:]), Info: o.Uint32(p[44:]), Addralign: o.Uint64(p[48:]), Entsize: o.Uint64(p[56:])}
		} else {
			ss[i] = Section{Index: i, Name: o.Uint32(p), Type: o.Uint32(p[4:]), Flags: uint64(o.Uint32(p[8:])),
				Addr: uint64(o.Uint32(p[12:])), Offset: uint64(o.Uint32(p[16:])), Size: uint64(o.Uint32(p[20:])),
				Link: o.Uint32(p[24:]), Info: o.Uint32(p[28:]), Addralign: uint64(o.Uint32(p[32:])), Entsize: uint64(o.Uint32(p[36:]))}
		}
	}
	return ss, raw, nil
}

// PutShOffset sets section i's sh_offset to off in raw, a section header
// table of this header's class and byte order.
func (h Header) PutShOffset(raw []byte, i int, off uint64) {
	o := h.Order()
	if h.Class == Class64 {
		o.PutUint64(raw[i*64+24:], off)
		return
	}
	o.PutUint32(raw[i*40+16:], uint32(off))
}

// SectionName returns section s's name from the section name table
// strtab ("" when out of range).
func SectionName(strtab []byte, s Section) string {
	if uint64(s.Name) >= uint64(len(strtab)) {
		return ""
	}
	b := strtab[s.Name:]
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// ReadFull reads exactly len(p) bytes at off, treating a short read as a
// truncated file.
func ReadFull(r io.ReaderAt, p []byte, off uint64, what string) error {
	if off > 1<<62 {
		return fmt.Errorf("%w: %s at file offset %#x: past any file", ErrTruncated, what, off)
	}
	n, err := r.ReadAt(p, int64(off))
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%w: %s: read %d of %d bytes at file offset %#x", ErrTruncated, what, n, len(p), off)
	}
	return fmt.Errorf("reading %s at file offset %#x: %w", what, off, err)
}

// InFile checks that [off, off+n) lies within a file of size bytes.
func InFile(off, n, size uint64, what string) error {
	if off > size || n > size-off {
		return fmt.Errorf("%w: %s at file offset %#x+%#x runs past the end of the %#x-byte file",
			ErrTruncated, what, off, n, size)
	}
	return nil
}

// AlignUp rounds v up to a multiple of a (a power of two).
func AlignUp(v, a uint64) uint64 { return (v + a - 1) &^ (a - 1) }

// SymtabLinkNotice checks that symbol table section i links (sh_link) to a
// string table among num sections, typeOf giving a section's sh_type. It
// returns "" when it does, and otherwise the notice that the kernel gets
// no symbols: the kernel takes sh_link as the index of the symbols'
// strings unchecked (NetBSD 9.1 sys/kern/kern_ksyms.c:487-490).
func SymtabLinkNotice(i int, link uint32, num int, typeOf func(int) uint32) string {
	if link == 0 || uint64(link) >= uint64(num) || typeOf(int(link)) != SHTStrtab {
		return fmt.Sprintf("no symbols: section %d (SHT_SYMTAB) links to section %d, not a string table", i, link)
	}
	return ""
}
