package netbsdboot

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/bootplan"
	"github.com/smolvmm/smolvmm/internal/bootelf"
	"github.com/smolvmm/smolvmm/internal/bootelf/elftest"
)

// manyStrtabs is an ELF32 with 65535 sections, all string tables but
// section 1, a symbol table linked to the last one: 65535 string tables
// once took planSymbols 38 s, a scan of every section per string table.
func manyStrtabs() (bootelf.Header, []bootelf.Section, []byte, []byte) {
	const n = 0xffff
	h := bootelf.Header{Class: bootelf.Class32, Data: bootelf.DataLSB, Raw: make([]byte, 52), Shnum: n}
	secs := make([]bootelf.Section, n)
	for i := range secs {
		secs[i] = bootelf.Section{Index: i, Type: bootelf.SHTStrtab, Offset: 0x10, Size: 8}
	}
	secs[0] = bootelf.Section{}
	secs[1] = bootelf.Section{Index: 1, Type: bootelf.SHTSymtab, Offset: 0x20, Size: 16, Link: n - 1}
	return h, secs, make([]byte, n*40), make([]byte, 0x40)
}

// TestPlanSymbolsManyStrtabs: among 65535 string tables the copy takes
// exactly the one the symbol table links to (its speed is
// BenchmarkPlanSymbolsManyStrtabs's).
func TestPlanSymbolsManyStrtabs(t *testing.T) {
	h, secs, raw, file := manyStrtabs()
	a, err := planSymbols(bytes.NewReader(file), uint64(len(file)), h, secs, raw, 0x200000)
	if err != nil {
		t.Fatal(err)
	}
	if !a.symtab || len(a.pieces) != 2 || a.pieces[0].what != "section 1 (type 2)" || a.pieces[1].what != "section 65534 (type 3)" {
		t.Errorf("pieces %+v, symtab %v; want section 1 and section 65534", a.pieces, a.symtab)
	}
}

// BenchmarkPlanSymbolsManyStrtabs: which string tables a symbol table links
// to is looked up once per table (milliseconds here), not by a scan of
// every section per string table (38 s).
func BenchmarkPlanSymbolsManyStrtabs(b *testing.B) {
	h, secs, raw, file := manyStrtabs()
	for b.Loop() {
		if _, err := planSymbols(bytes.NewReader(file), uint64(len(file)), h, secs, raw, 0x200000); err != nil {
			b.Fatal(err)
		}
	}
}

// TestHeaderCopyNoSections: when no section header table is copied (e_shoff
// 0, or e_shnum 0), the ELF header copy in front of the symbols says there
// are no sections (e_shnum 0, e_shstrndx SHN_UNDEF): the kernel's ksyms
// reads e_shnum section headers from the copy's e_shoff, and the section
// names at e_shstrndx, unchecked (NetBSD 9.1 sys/kern/kern_ksyms.c:479-501),
// so the file's counts sent it past the symbol area's end. With both 0 it
// finds no symbol table and says so.
func TestHeaderCopyNoSections(t *testing.T) {
	for _, tc := range []struct {
		name  string
		class byte
		patch func(b []byte)
	}{
		{"ELF32, e_shoff 0", 1, func(b []byte) { binary.LittleEndian.PutUint32(b[32:], 0) }},
		{"ELF64, e_shoff 0", 2, func(b []byte) { binary.LittleEndian.PutUint64(b[40:], 0) }},
		{"ELF32, e_shnum 0", 1, func(b []byte) { binary.LittleEndian.PutUint16(b[48:], 0) }},
		{"ELF64, e_shnum 0", 2, func(b []byte) { binary.LittleEndian.PutUint16(b[60:], 0) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := stdKernel(tc.class)
			// The ident note in a PT_NOTE, the section table unread.
			k.Segs = append(k.Segs, elftest.Seg{Type: 4, Data: elftest.NetBSDNote(false, 901000000)})
			b := k.Build()
			h, err := bootelf.ReadHeader(bytes.NewReader(b), uint64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			tc.patch(b)
			mem := newMem()
			p, err := Load(mem, bytes.NewReader(b), int64(len(b)), Options{Append: "console=com"})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			i := slices.IndexFunc(p.Regions, func(r bootplan.Region) bool { return strings.HasPrefix(r.What, "symbols:") })
			if i < 0 {
				t.Fatalf("no symbol area in %+v", p.Regions)
			}
			r := p.Regions[i]
			copyHdr := mem.Bytes()[r.Addr : r.Addr+uint64(h.Size())]
			shnum, shstrndx := 48, 50
			if tc.class == 2 {
				shnum, shstrndx = 60, 62
			}
			le := binary.LittleEndian
			if n, s := le.Uint16(copyHdr[shnum:]), le.Uint16(copyHdr[shstrndx:]); n != 0 || s != 0 {
				t.Errorf("header copy at %#x: e_shnum %d, e_shstrndx %d; want 0, 0", r.Addr, n, s)
			}
			if r.Len != uint64(h.Size()) {
				t.Errorf("symbol area of %d bytes, want the header copy alone (%d)", r.Len, h.Size())
			}
		})
	}
}
