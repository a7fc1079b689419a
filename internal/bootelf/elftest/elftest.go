// Package elftest writes small ELF32 and ELF64 files for loader tests:
// program headers, any sections (a null section first and .shstrtab last
// are added), symbol tables and NetBSD ident notes.
package elftest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
)

// Seg is a program header and the bytes it loads.
type Seg struct {
	Type         uint32 // 0 means PT_LOAD
	Flags        uint32 // 0 means PF_R|PF_W|PF_X
	Vaddr, Paddr uint64 // p_vaddr and p_paddr
	Data         []byte // the bytes it loads (p_filesz of them)
	Memsz        uint64 // 0 means len(Data)
}

// Sec is a section. Its data is written to the file unless Type is
// SHT_NOBITS (8).
type Sec struct {
	Name    string // its name, put in .shstrtab
	Type    uint32 // sh_type
	Flags   uint64 // sh_flags
	Addr    uint64 // sh_addr
	Data    []byte // its contents (sh_size of them)
	Link    uint32 // sh_link
	Info    uint32 // sh_info
	Entsize uint64 // sh_entsize
}

// File describes an ELF file.
type File struct {
	Class     byte   // 1 (ELF32, the default) or 2 (ELF64)
	BigEndian bool   // big-endian (ELFDATA2MSB) rather than little
	Type      uint16 // 0 means ET_EXEC
	Machine   uint16 // 0 means EM_386 for ELF32, EM_X86_64 for ELF64
	Entry     uint64 // e_entry
	Segs      []Seg  // the program headers, in order
	// Secs are sections 1..n; .shstrtab is added as section n+1. Without
	// sections the file has no section header table.
	Secs []Sec
}

func (f File) class64() bool { return f.Class == 2 }

func (f File) order() binary.ByteOrder {
	if f.BigEndian {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// putWord puts v in p as a word of f's class and order, and returns the
// rest of p.
func (f File) putWord(p []byte, v uint64) []byte {
	if f.class64() {
		f.order().PutUint64(p, v)
		return p[8:]
	}
	f.order().PutUint32(p, uint32(v))
	return p[4:]
}

func align(v, a int) int { return (v + a - 1) &^ (a - 1) }

// Build returns the file's bytes and the file offset of each section's
// data (index 0 and the .shstrtab included).
func (f File) Build() []byte { b, _ := f.BuildOffsets(); return b }

// BuildOffsets is Build, also returning each section's file offset.
func (f File) BuildOffsets() ([]byte, []uint64) {
	o := f.order()
	ehsize, phsize, shsize := 52, 32, 40
	if f.class64() {
		ehsize, phsize, shsize = 64, 56, 64
	}
	machine := f.Machine
	if machine == 0 {
		machine = 3
		if f.class64() {
			machine = 62
		}
	}
	etype := f.Type
	if etype == 0 {
		etype = 2
	}
	secs := append([]Sec{{}}, f.Secs...)
	shstr := []byte{0}
	names := make([]uint32, len(secs)+1)
	for i, s := range secs[1:] {
		names[i+1] = uint32(len(shstr))
		shstr = append(append(shstr, s.Name...), 0)
	}
	names[len(secs)] = uint32(len(shstr))
	shstr = append(shstr, ".shstrtab\x00"...)
	if len(f.Secs) > 0 {
		secs = append(secs, Sec{Name: ".shstrtab", Type: 3, Data: shstr})
	} else {
		secs = nil
	}

	off := ehsize + phsize*len(f.Segs)
	segOff := make([]int, len(f.Segs))
	for i, s := range f.Segs {
		off = align(off, 16)
		segOff[i] = off
		off += len(s.Data)
	}
	secOff := make([]uint64, len(secs))
	for i, s := range secs {
		if i == 0 || s.Type == 8 {
			continue
		}
		off = align(off, 8)
		secOff[i] = uint64(off)
		off += len(s.Data)
	}
	shoff := 0
	if len(secs) > 0 {
		off = align(off, 8)
		shoff = off
		off += shsize * len(secs)
	}
	b := make([]byte, off)
	copy(b, "\x7fELF")
	b[4], b[5], b[6] = 1, 1, 1
	if f.class64() {
		b[4] = 2
	}
	if f.BigEndian {
		b[5] = 2
	}
	o.PutUint16(b[16:], etype)
	o.PutUint16(b[18:], machine)
	o.PutUint32(b[20:], 1)
	put := f.putWord
	p := put(b[24:], f.Entry)
	p = put(p, uint64(ehsize))
	p = put(p, uint64(shoff))
	o.PutUint32(p, 0) // e_flags
	o.PutUint16(p[4:], uint16(ehsize))
	o.PutUint16(p[6:], uint16(phsize))
	o.PutUint16(p[8:], uint16(len(f.Segs)))
	o.PutUint16(p[10:], uint16(shsize))
	if len(secs) > 0 {
		o.PutUint16(p[12:], uint16(len(secs)))
		o.PutUint16(p[14:], uint16(len(secs)-1))
	}
	for i, s := range f.Segs {
		ph := b[ehsize+phsize*i:]
		typ, flags, memsz := s.Type, s.Flags, s.Memsz
		if typ == 0 {
			typ = 1
		}
		if flags == 0 {
			flags = 7
		}
		if memsz == 0 {
			memsz = uint64(len(s.Data))
		}
		o.PutUint32(ph, typ)
		if f.class64() {
			o.PutUint32(ph[4:], flags)
			o.PutUint64(ph[8:], uint64(segOff[i]))
			o.PutUint64(ph[16:], s.Vaddr)
			o.PutUint64(ph[24:], s.Paddr)
			o.PutUint64(ph[32:], uint64(len(s.Data)))
			o.PutUint64(ph[40:], memsz)
			o.PutUint64(ph[48:], 0x1000)
		} else {
			o.PutUint32(ph[4:], uint32(segOff[i]))
			o.PutUint32(ph[8:], uint32(s.Vaddr))
			o.PutUint32(ph[12:], uint32(s.Paddr))
			o.PutUint32(ph[16:], uint32(len(s.Data)))
			o.PutUint32(ph[20:], uint32(memsz))
			o.PutUint32(ph[24:], flags)
			o.PutUint32(ph[28:], 0x1000)
		}
		copy(b[segOff[i]:], s.Data)
	}
	for i, s := range secs {
		if i == 0 {
			continue
		}
		if s.Type != 8 {
			copy(b[secOff[i]:], s.Data)
		}
		sh := b[shoff+shsize*i:]
		o.PutUint32(sh, names[i])
		o.PutUint32(sh[4:], s.Type)
		q := put(sh[8:], s.Flags)
		q = put(q, s.Addr)
		q = put(q, secOff[i])
		q = put(q, uint64(len(s.Data)))
		o.PutUint32(q, s.Link)
		o.PutUint32(q[4:], s.Info)
		q = put(q[8:], 4)
		put(q, s.Entsize)
	}
	return b, secOff
}

// Sym is a symbol for Symtab.
type Sym struct {
	Name  string // its name, put in the string table
	Value uint64 // st_value
	Size  uint64 // st_size
	Shndx uint16 // st_shndx: the section it is in
}

// Symtab encodes syms (after the null symbol) as a symbol table of the
// class and its string table.
func Symtab(class byte, bigEndian bool, syms []Sym) (symtab, strtab []byte) {
	f := File{Class: class, BigEndian: bigEndian}
	o := f.order()
	size := 16
	if f.class64() {
		size = 24
	}
	strtab = []byte{0}
	symtab = make([]byte, size*(len(syms)+1))
	for i, s := range syms {
		e := symtab[size*(i+1):]
		o.PutUint32(e, uint32(len(strtab)))
		strtab = append(append(strtab, s.Name...), 0)
		const info = 1<<4 | 2 // STB_GLOBAL, STT_FUNC
		if f.class64() {
			e[4] = info
			o.PutUint16(e[6:], s.Shndx)
			o.PutUint64(e[8:], s.Value)
			o.PutUint64(e[16:], s.Size)
		} else {
			o.PutUint32(e[4:], uint32(s.Value))
			o.PutUint32(e[8:], uint32(s.Size))
			e[12] = info
			o.PutUint16(e[14:], s.Shndx)
		}
	}
	return symtab, strtab
}

// Note encodes one ELF note with 4-byte padding.
func Note(bigEndian bool, name string, typ uint32, desc []byte) []byte {
	o := File{BigEndian: bigEndian}.order()
	n := append([]byte(name), 0)
	b := make([]byte, 12, 12+align(len(n), 4)+align(len(desc), 4))
	o.PutUint32(b, uint32(len(n)))
	o.PutUint32(b[4:], uint32(len(desc)))
	o.PutUint32(b[8:], typ)
	b = append(b, n...)
	b = append(b, make([]byte, align(len(n), 4)-len(n))...)
	b = append(b, desc...)
	return append(b, make([]byte, align(len(desc), 4)-len(desc))...)
}

// NetBSDMultibootKernel is an i386 NetBSD 9.1 kernel (its ident note)
// that carries a multiboot header too, as one built with options
// MULTIBOOT does: linked at 0xc0100000, loaded at 1 MiB, where it halts.
func NetBSDMultibootKernel() []byte {
	magic, flags := uint32(0x1BADB002), uint32(2) // multiboot v1; a memory map wanted
	hdr := binary.LittleEndian.AppendUint32(nil, magic)
	hdr = binary.LittleEndian.AppendUint32(hdr, flags)
	hdr = binary.LittleEndian.AppendUint32(hdr, -(magic + flags))
	return File{Class: 1, Machine: 3, Entry: 0xc010000c,
		Segs: []Seg{{Vaddr: 0xc0100000, Paddr: 0x100000, Data: append(hdr, 0xf4), Memsz: 0x1000}},
		Secs: []Sec{{Name: ".note.netbsd.ident", Type: 7, Data: NetBSDNote(false, 901000000)}},
	}.Build()
}

// NetBSDNote is NetBSD's ident note for __NetBSD_Version__ version.
func NetBSDNote(bigEndian bool, version uint32) []byte {
	d := make([]byte, 4)
	File{BigEndian: bigEndian}.order().PutUint32(d, version)
	return Note(bigEndian, "NetBSD", 1, d)
}

// Kmod is an n-byte NetBSD kernel module for a kernel of the class (1:
// i386, 2: amd64), or one of the fewest bytes a module takes (230 for
// ELF32, 346 for ELF64) when n is fewer: what NetBSD's kobj_load checks
// (sys/kern/subr_kobj.c:183-422, 9.1), an ET_REL header for the kernel's
// machine, EV_CURRENT, little-endian, then its section header table
// (null, .symtab of the null symbol, .strtab, .text), the symbol table,
// its one-byte string table and .text, filler bytes to the file's end, so
// that the module cut short by any byte loses part of a section the
// loader reads.
func Kmod(class byte, n int) []byte {
	f := File{Class: class}
	ehsize, shsize, symsize, word := 52, 40, 16, uint64(4)
	mach := uint16(3) // EM_386
	if f.class64() {
		ehsize, shsize, symsize, word = 64, 64, 24, 8
		mach = 62 // EM_X86_64
	}
	symOff := ehsize + 4*shsize
	strOff := symOff + symsize
	textOff := strOff + 1
	n = max(n, textOff+1)
	b := make([]byte, n)
	for i := textOff; i < n; i++ {
		b[i] = 3 + byte(i*7)
	}
	copy(b, "\x7fELF")
	b[4], b[5], b[6] = class, 1, 1
	o := binary.LittleEndian
	put := f.putWord
	o.PutUint16(b[16:], 1) // ET_REL
	o.PutUint16(b[18:], mach)
	o.PutUint32(b[20:], 1)                           // e_version
	p := put(put(put(b[24:], 0), 0), uint64(ehsize)) // e_entry, e_phoff, e_shoff
	o.PutUint32(p, 0)                                // e_flags
	o.PutUint16(p[4:], uint16(ehsize))
	o.PutUint16(p[10:], uint16(shsize))
	o.PutUint16(p[12:], 4) // e_shnum; e_shstrndx 0: no section names
	for i, s := range []struct {
		typ             uint32
		flags, off, len uint64
		link, info      uint32
		align, entsize  uint64
	}{
		1: {typ: 2, off: uint64(symOff), len: uint64(symsize), link: 2, info: 1, align: word, entsize: uint64(symsize)},
		2: {typ: 3, off: uint64(strOff), len: 1, align: 1},
		3: {typ: 1, flags: 6, off: uint64(textOff), len: uint64(n - textOff), align: 1}, // SHF_ALLOC|SHF_EXECINSTR
	} {
		sh := b[ehsize+i*shsize:]
		o.PutUint32(sh[4:], s.typ)
		q := put(put(put(put(sh[8:], s.flags), 0), s.off), s.len)
		o.PutUint32(q, s.link)
		o.PutUint32(q[4:], s.info)
		put(put(q[8:], s.align), s.entsize)
	}
	return b
}

// Gzip is data gzip-compressed, as a kernel given gzipped is.
func Gzip(data []byte) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(data); err != nil {
		panic(err)
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// TarSet is a tar archive holding one file, ./etc/motd, as a NetBSD set
// does: 2048 bytes, "./et" first and "ustar" at offset 257.
func TarSet() []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Name: "./etc/motd", Mode: 0o644, Size: 5, Format: tar.FormatUSTAR}); err != nil {
		panic(err)
	}
	if _, err := tw.Write([]byte("hello")); err != nil {
		panic(err)
	}
	if err := tw.Close(); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// Ext2Image is the start of an ext2 image, size bytes: a boot block of
// zeroes, then the superblock with its magic 0xef53 (little-endian) at
// byte 56, offset 1080 in the file.
func Ext2Image(size int) []byte {
	b := make([]byte, size)
	b[1024+56], b[1024+57] = 0x53, 0xef
	return b
}
