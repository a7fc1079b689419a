package multiboot

import (
	"encoding/binary"
)

// Test image builders: a minimal ELF32 writer and multiboot header encoder.

// mbHeader encodes a multiboot header with a correct checksum and, when
// fields are given, the a.out kludge/video words after it.
func mbHeader(flags uint32, fields ...uint32) []byte {
	w := append([]uint32{HeaderMagic, flags, -(HeaderMagic + flags)}, fields...)
	b := make([]byte, 4*len(w))
	for i, v := range w {
		binary.LittleEndian.PutUint32(b[4*i:], v)
	}
	return b
}

// tSeg is one PT_LOAD segment of a test ELF.
type tSeg struct {
	vaddr, paddr uint32
	data         []byte
	memsz        uint32 // 0 means len(data)
	typ          uint32 // 0 means PT_LOAD
}

// tELF describes a test ELF32 executable. Section headers are emitted only
// when symtab is non-nil: null, .text, .symtab (link 3), .strtab, .shstrtab.
type tELF struct {
	class   byte   // 0 means ELFCLASS32
	machine uint16 // 0 means EM_386
	etype   uint16 // 0 means ET_EXEC
	entry   uint32
	segs    []tSeg
	symtab  []byte
	strtab  []byte
}

// Section indexes of the test ELF's sections.
const (
	tSecText   = 1
	tSecSymtab = 2
	tSecStrtab = 3
	tSecShstr  = 4
	tShnum     = 5
)

// layout returns the file bytes and the section header table offset.
func (e tELF) build() []byte {
	le := binary.LittleEndian
	class := e.class
	if class == 0 {
		class = 1
	}
	machine := e.machine
	if machine == 0 {
		machine = 3
	}
	etype := e.etype
	if etype == 0 {
		etype = 2
	}
	phoff := uint32(52)
	off := alignUp(uint64(phoff)+uint64(32*len(e.segs)), 16)
	segOffs := make([]uint64, len(e.segs))
	for i, s := range e.segs {
		segOffs[i] = off
		off = alignUp(off+uint64(len(s.data)), 16)
	}
	var symOff, strOff, shstrOff, shoff uint64
	shstr := []byte("\x00.text\x00.symtab\x00.strtab\x00.shstrtab\x00")
	if e.symtab != nil {
		symOff = off
		off = alignUp(off+uint64(len(e.symtab)), 4)
		strOff = off
		off += uint64(len(e.strtab))
		shstrOff = off
		off = alignUp(off+uint64(len(shstr)), 4)
		shoff = off
		off += 40 * tShnum
	}
	b := make([]byte, off)
	copy(b, "\x7fELF")
	b[4], b[5], b[6] = class, 1, 1
	le.PutUint16(b[16:], etype)
	le.PutUint16(b[18:], machine)
	le.PutUint32(b[20:], 1)
	le.PutUint32(b[24:], e.entry)
	le.PutUint32(b[28:], phoff)
	le.PutUint32(b[32:], uint32(shoff))
	le.PutUint16(b[40:], 52)
	le.PutUint16(b[42:], 32)
	le.PutUint16(b[44:], uint16(len(e.segs)))
	le.PutUint16(b[46:], 40)
	for i, s := range e.segs {
		p := b[phoff+uint32(32*i):]
		typ := s.typ
		if typ == 0 {
			typ = 1
		}
		memsz := s.memsz
		if memsz == 0 {
			memsz = uint32(len(s.data))
		}
		le.PutUint32(p, typ)
		le.PutUint32(p[4:], uint32(segOffs[i]))
		le.PutUint32(p[8:], s.vaddr)
		le.PutUint32(p[12:], s.paddr)
		le.PutUint32(p[16:], uint32(len(s.data)))
		le.PutUint32(p[20:], memsz)
		le.PutUint32(p[24:], 7)
		le.PutUint32(p[28:], 0x1000)
		copy(b[segOffs[i]:], s.data)
	}
	if e.symtab != nil {
		le.PutUint16(b[48:], tShnum)
		le.PutUint16(b[50:], tSecShstr)
		copy(b[symOff:], e.symtab)
		copy(b[strOff:], e.strtab)
		copy(b[shstrOff:], shstr)
		sh := func(i int, name, typ, flags, addr uint32, off uint64, size int, link, entsize uint32) {
			p := b[shoff+uint64(40*i):]
			le.PutUint32(p, name)
			le.PutUint32(p[4:], typ)
			le.PutUint32(p[8:], flags)
			le.PutUint32(p[12:], addr)
			le.PutUint32(p[16:], uint32(off))
			le.PutUint32(p[20:], uint32(size))
			le.PutUint32(p[24:], link)
			le.PutUint32(p[32:], 4)
			le.PutUint32(p[36:], entsize)
		}
		if len(e.segs) > 0 {
			sh(tSecText, 1, 1, 6, e.segs[0].vaddr, segOffs[0], len(e.segs[0].data), 0, 0)
		}
		sh(tSecSymtab, 7, 2, 0, 0, symOff, len(e.symtab), tSecStrtab, 16)
		sh(tSecStrtab, 15, 3, 0, 0, strOff, len(e.strtab), 0, 0)
		sh(tSecShstr, 23, 3, 0, 0, shstrOff, len(shstr), 0, 0)
	}
	return b
}

// shdrOffset returns the section header table's file offset of an image
// built by tELF.build.
func shdrOffset(b []byte) uint64 { return uint64(binary.LittleEndian.Uint32(b[32:])) }
