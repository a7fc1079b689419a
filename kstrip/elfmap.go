package kstrip

import (
	"bytes"
	"debug/elf"
	"fmt"
)

// maxName bounds the strings read from the kernel, NUL included: NetBSD's
// driver, attachment and interface attribute names are under 20 bytes (a
// driver's name and unit fit dv_xname[16]; wsemuldisplaydev is 16), so a
// longer one means the pointer is wrong, or a hostile kernel whose names
// would cost memory in every entry and every listed row.
const maxName = 64

// maxRegions bounds the loaded segments (or sections) of a kernel: it has
// a handful, and every address lookup walks them all.
const maxRegions = 256

// region is a file-backed range of the kernel's virtual address space.
type region struct {
	vaddr, size uint64 // file-backed bytes only (p_filesz)
	memsz       uint64
	off         uint64
}

// addrMap turns kernel virtual addresses into file offsets.
type addrMap struct {
	regions []region
	size    uint64 // file size
}

// newAddrMap uses the PT_LOAD segments, or the allocated sections of a
// file without program headers. Ranges reaching past the end of the file
// are cut at the end of the file.
func newAddrMap(f *elf.File, size uint64) addrMap {
	m := addrMap{size: size}
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			m.add(p.Vaddr, p.Filesz, p.Memsz, p.Off)
		}
	}
	if len(m.regions) > 0 {
		return m
	}
	for _, s := range f.Sections {
		if s.Flags&elf.SHF_ALLOC != 0 && s.Type != elf.SHT_NOBITS {
			m.add(s.Addr, s.Size, s.Size, s.Offset)
		}
	}
	return m
}

func (m *addrMap) add(vaddr, filesz, memsz, off uint64) {
	if off >= m.size {
		filesz = 0
	} else if filesz > m.size-off {
		filesz = m.size - off
	}
	m.regions = append(m.regions, region{vaddr: vaddr, size: filesz, memsz: memsz, off: off})
}

// offset returns the file offset of va and the file offset where its
// region's file-backed bytes end.
func (m *addrMap) offset(va uint64) (off, end uint64, err error) {
	for _, r := range m.regions {
		if va >= r.vaddr && va-r.vaddr < r.size {
			return r.off + (va - r.vaddr), r.off + r.size, nil
		}
	}
	for _, r := range m.regions {
		if va >= r.vaddr && va-r.vaddr < r.memsz {
			return 0, 0, fmt.Errorf("address %#x is in the zero-filled (bss) part of the segment at %#x, not in the file: %w", va, r.vaddr, ErrNotMapped)
		}
	}
	return 0, 0, fmt.Errorf("address %#x: %w", va, ErrNotMapped)
}

// str reads the NUL-terminated string at va.
func (m *addrMap) str(image []byte, va uint64) (string, error) {
	off, end, err := m.offset(va)
	if err != nil {
		return "", err
	}
	if end-off > maxName {
		end = off + maxName
	}
	b := image[off:end]
	n := bytes.IndexByte(b, 0)
	if n < 0 {
		return "", fmt.Errorf("string at %#x (file offset %#x) has no NUL within %d bytes (names are read up to %d bytes, NUL included; NetBSD's are under 20): %w", va, off, len(b), maxName, ErrBadString)
	}
	return string(b[:n]), nil
}
