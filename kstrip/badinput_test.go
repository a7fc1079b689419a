package kstrip

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/internal/bootelf/elftest"
	"github.com/smolvmm/smolvmm/internal/realnetbsd"
	"github.com/smolvmm/smolvmm/kstrip/kstriptest"
)

// symbolValueOffset returns the file offset of the st_value of the
// 32-bit symbol called name.
func symbolValueOffset(t *testing.T, image []byte, name string) int64 {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(image))
	if err != nil {
		t.Fatal(err)
	}
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	symtab := f.SectionByType(elf.SHT_SYMTAB)
	for i, s := range syms {
		if s.Name == name {
			// Symbols skips the null symbol at index 0.
			return int64(symtab.Offset) + int64(i+1)*16 + 4
		}
	}
	t.Fatalf("no symbol %s", name)
	return 0
}

func TestBadInput(t *testing.T) {
	good := buildKernel(t, kstriptest.Options{Bits: 32, Entries: generic})
	k, orig := parseFile(t, good)
	put32 := func(b []byte, off int64, v uint32) { k.ByteOrder().PutUint32(b[off:], v) }
	bssAddr := func() uint32 {
		for _, r := range k.amap.regions {
			if r.memsz > r.size {
				return uint32(r.vaddr + r.size)
			}
		}
		t.Fatal("no bss")
		return 0
	}()
	tests := []struct {
		name  string
		image func() []byte
		errs  []error // all wrapped
		msg   []string
	}{
		{"text file", func() []byte { return []byte("#!/bin/sh\necho not a kernel\n") }, []error{ErrNotELF}, []string{`"#!/b"`, `not "\x7fELF"`}},
		{"empty", func() []byte { return nil }, []error{ErrNotELF}, nil},
		{"truncated identification", func() []byte { return orig[:6] }, []error{ErrTruncated}, []string{"ELF identification (16 bytes at file offset 0x0)", "which has 6 bytes"}},
		{"truncated header", func() []byte { return orig[:30] }, []error{ErrTruncated}, []string{"ELF header (52 bytes at file offset 0x0)", "which has 30 bytes"}},
		// The section headers are at the end: what head -c leaves of a
		// kernel was "not an ELF file: EOF".
		{"truncated section headers", func() []byte { return orig[:len(orig)/2] }, []error{ErrTruncated}, []string{"section headers", "which has " + itoa(int64(len(orig)/2)) + " bytes"}},
		{"section names past the end", func() []byte {
			b := clone(orig)
			shoff := k.ByteOrder().Uint32(b[32:])
			strndx := k.ByteOrder().Uint16(b[50:])
			put32(b, int64(shoff)+int64(strndx)*40+16, uint32(len(b))) // sh_offset
			return b
		}, []error{ErrTruncated}, []string{"section names"}},
		// A symbol table cut short was "no symbol table": said as the
		// section headers are.
		{"symbols past the end", func() []byte {
			b := clone(orig)
			i, _ := sectionOfType(t, b, elf.SHT_SYMTAB)
			put32(b, sectionHeader(b, i)+20, uint32(len(b))) // sh_size
			return b
		}, []error{ErrTruncated}, []string{"symbols in section .symtab", "bytes at file offset"}},
		{"symbol names past the end", func() []byte {
			b := clone(orig)
			_, link := sectionOfType(t, b, elf.SHT_SYMTAB)
			put32(b, sectionHeader(b, link)+16, uint32(len(b)-4)) // sh_offset
			return b
		}, []error{ErrTruncated}, []string{"symbol names in section .strtab", "at file offset " + fmt.Sprintf("%#x", len(orig)-4)}},
		// Section e_shnum is the first past the table: debug/elf refuses
		// it as the names, and the check for truncation must not read it.
		{"e_shstrndx == e_shnum", func() []byte {
			b := clone(orig)
			copy(b[50:], b[48:50])
			return b
		}, []error{ErrMalformed}, []string{"headers cannot be read", "invalid ELF shstrndx"}},
		{"symbol table's sh_link == e_shnum", func() []byte {
			b := clone(orig)
			i, _ := sectionOfType(t, b, elf.SHT_SYMTAB)
			put32(b, sectionHeader(b, i)+24, uint32(k.ByteOrder().Uint16(b[48:]))) // sh_link
			return b
		}, []error{ErrMalformed}, []string{"symbol table", "invalid string table link"}},
		{"unreadable headers", func() []byte {
			b := clone(orig)
			b[elf.EI_VERSION] = 9
			return b
		}, []error{ErrMalformed}, []string{"headers cannot be read"}},
		{"stripped", func() []byte {
			return readFile(t, buildKernel(t, kstriptest.Options{Bits: 32, Entries: generic, Stripped: true}))
		}, []error{ErrNoSymbols}, []string{"stripped", "release kernels", "keep their symbols"}},
		{"no cfdata symbol", func() []byte {
			return readFile(t, buildKernel(t, kstriptest.Options{Bits: 32, Entries: generic, Symbol: "cfdata_other"}))
		}, []error{ErrNoCfdata}, []string{"NetBSD kernel"}},
		{"cfdata outside every segment", func() []byte {
			b := clone(orig)
			put32(b, symbolValueOffset(t, b, "cfdata"), 0x1000)
			return b
		}, []error{ErrNotMapped}, []string{"cfdata", "0x1000"}},
		{"cfdata in bss", func() []byte {
			b := clone(orig)
			put32(b, symbolValueOffset(t, b, "cfdata"), bssAddr)
			return b
		}, []error{ErrNotMapped}, []string{"bss"}},
		{"no terminator", func() []byte {
			return readFile(t, buildKernel(t, kstriptest.Options{Bits: 32, Entries: generic, NoTerminator: true}))
		}, []error{ErrNoTerminator}, []string{itoa(int64(len(generic))) + " entries", "end of its segment"}},
		// The segment holding cfdata ends a byte short of the
		// terminator's end: the bytes after it in the file are zeros,
		// but not the segment's.
		{"terminator a byte past its segment", func() []byte {
			b := clone(orig)
			ph, p := loadOf(t, b, uint64(k.Offset()))
			end := uint64(k.Offset()) + uint64(len(generic)+1)*24 - 1
			put32(b, ph+16, uint32(end-p.Off)) // p_filesz
			return b
		}, []error{ErrNoTerminator}, []string{itoa(int64(len(generic))) + " entries", "before the end of its segment at file offset " + fmt.Sprintf("%#x", uint64(k.Offset())+uint64(len(generic)+1)*24-1)}},
		// The last segment's p_filesz runs past the file and cfdata is
		// put 8 bytes before the file's end: the segment is cut at the
		// file's end, where no entry fits.
		{"p_filesz past the file, cfdata at its end", func() []byte {
			b := clone(orig)
			ph, p := lastLoad(t, b)
			put32(b, ph+16, uint32(uint64(len(b))-p.Off+0x1000)) // p_filesz
			put32(b, ph+20, uint32(max(p.Memsz, uint64(len(b))-p.Off+0x1000)))
			put32(b, symbolValueOffset(t, b, "cfdata"), uint32(p.Vaddr+uint64(len(b))-8-p.Off))
			return b
		}, []error{ErrNoTerminator}, []string{"after 0 entries", "before the end of its segment at file offset " + fmt.Sprintf("%#x", len(orig))}},
		{"name pointer outside the file", func() []byte {
			b := clone(orig)
			put32(b, k.Entries[3].Offset, 0x0badf00d)
			return b
		}, []error{ErrNotMapped}, []string{"cfdata[3]", "cf_name", "0xbadf00d"}},
		{"atname pointer into bss", func() []byte {
			b := clone(orig)
			put32(b, k.Entries[5].Offset+4, bssAddr)
			return b
		}, []error{ErrNotMapped}, []string{"cfdata[5]", "cf_atname", "bss"}},
		{"pspec pointer outside the file", func() []byte {
			b := clone(orig)
			put32(b, k.Entries[7].Offset+20, 0xfffffff0)
			return b
		}, []error{ErrNotMapped}, []string{"cfdata[7]", "cf_pspec"}},
		// struct cfparent is 12 bytes on i386 (cfp_iattr, cfp_parent,
		// cfp_unit): one whose last byte is past the file-backed end of
		// its segment is refused, not read from what follows in the file.
		{"cfparent a byte past its segment", func() []byte {
			b := clone(orig)
			_, p := loadOf(t, b, uint64(k.Offset()))
			put32(b, k.Entries[7].Offset+20, uint32(p.Vaddr+p.Filesz-11))
			return b
		}, []error{ErrNotMapped}, []string{"cfdata[7]", "cf_pspec", "runs past its segment"}},
		// GENERIC_KASLR is linked -r -d (Makefile.amd64:77): ET_REL,
		// with the ident note, locore's start and a cfdata at section
		// offset 0, which read as an address gave "no all-zero
		// terminator after 0 entries".
		{"amd64 KASLR kernel", func() []byte { return relocatable("start") }, []error{ErrKASLR, ErrNotExec},
			[]string{"e_type 1 (ET_REL)", "linked relocatable for KASLR", "GENERIC_KASLR", "prekern"}},
		{"relocatable object", func() []byte { return relocatable("other") }, []error{ErrNotExec},
			[]string{"e_type 1 (ET_REL)", "not a kernel"}},
		{"shared object", func() []byte {
			b := clone(orig)
			k.ByteOrder().PutUint16(b[16:], uint16(elf.ET_DYN))
			return b
		}, []error{ErrNotExec}, []string{"e_type 3 (ET_DYN)", "want 2 (ET_EXEC)"}},
		{"garbage after a null name", func() []byte {
			b := clone(orig)
			put32(b, k.Offset()+int64(len(generic))*24+4, 0xc0100000)
			return b
		}, nil, []string{"cfdata[" + itoa(int64(len(generic))) + "]", "null cf_name but other fields set"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := tc.image()
			before := clone(img)
			_, err := Parse(img)
			if err == nil {
				t.Fatal("Parse accepted a bad image")
			}
			for _, want := range tc.errs {
				if !errors.Is(err, want) {
					t.Errorf("err = %v, want %v", err, want)
				}
			}
			for _, m := range tc.msg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q lacks %q", err, m)
				}
			}
			// Facts only: the CLI says which kernel to use.
			if strings.Contains(err.Error(), "use one of those") {
				t.Errorf("error %q gives advice", err)
			}
			if !bytes.Equal(img, before) {
				t.Error("Parse changed its input")
			}
		})
	}
}

// loadOf returns the file offset of the program header of the little-
// endian ELF32 image's PT_LOAD whose file bytes hold offset off, and the
// header.
func loadOf(t *testing.T, image []byte, off uint64) (int64, *elf.Prog) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(image))
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range f.Progs {
		if p.Type == elf.PT_LOAD && off >= p.Off && off-p.Off < p.Filesz {
			return progHeader(image, i), p
		}
	}
	t.Fatalf("no PT_LOAD holds file offset %#x", off)
	return 0, nil
}

// lastLoad returns the program header of the little-endian ELF32
// image's PT_LOAD that comes last in the file, and its file offset.
func lastLoad(t *testing.T, image []byte) (int64, *elf.Prog) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(image))
	if err != nil {
		t.Fatal(err)
	}
	last := -1
	for i, p := range f.Progs {
		if p.Type == elf.PT_LOAD && (last < 0 || p.Off > f.Progs[last].Off) {
			last = i
		}
	}
	if last < 0 {
		t.Fatal("no PT_LOAD")
	}
	return progHeader(image, last), f.Progs[last]
}

// progHeader is the file offset of program header i of the
// little-endian ELF32 image.
func progHeader(image []byte, i int) int64 {
	return int64(binary.LittleEndian.Uint32(image[28:])) + int64(i)*int64(binary.LittleEndian.Uint16(image[42:]))
}

// relocatable is an amd64 ET_REL file with NetBSD's ident note, cfdata
// at offset 0 of its .data and a symbol called name, as GENERIC_KASLR has
// start.
func relocatable(name string) []byte {
	sym, str := elftest.Symtab(2, false, []elftest.Sym{{Name: name, Value: 0x20, Shndx: 1}, {Name: "cfdata", Shndx: 2, Size: 96}})
	sym[2*24+4] = 1<<4 | 1 // cfdata: STB_GLOBAL, STT_OBJECT
	return elftest.File{Class: 2, Type: 1, Secs: []elftest.Sec{
		{Name: ".text", Type: 1, Flags: 6, Data: make([]byte, 0x100)},
		{Name: ".data", Type: 1, Flags: 3, Data: bytes.Repeat([]byte{1}, 96)},
		{Name: ".note.netbsd.ident", Type: 7, Data: elftest.NetBSDNote(false, 901000000)},
		{Name: ".symtab", Type: 2, Data: sym, Link: 5, Info: 1},
		{Name: ".strtab", Type: 3, Data: str},
	}}.Build()
}

// TestLongName: a name is read up to maxName (64) bytes: one of 63 and
// its NUL is read whole, one of 64 is refused as having no NUL, an error
// that names the field and the bound. So it is
// when the NUL is the last file-backed byte of its segment: the text
// segment's, here, made 256 or 257 bytes long and holding the name that
// cfdata[1] is pointed at.
func TestLongName(t *testing.T) {
	entries := func(name string) []kstriptest.Entry {
		return []kstriptest.Entry{
			{Name: "mainbus", Attach: "mainbus", State: 2},
			{Name: name, Attach: "long", State: 2, Parent: par("mainbus", "mainbus", -1)},
		}
	}
	short := readFile(t, buildKernel(t, kstriptest.Options{Bits: 32, NoDrivers: true, Entries: entries("short")}))
	for _, tc := range []struct {
		name   string
		n      int  // the name's length
		segEnd bool // its NUL ends the text segment, not in .rodata
		ok     bool
	}{
		{"63 bytes", maxName - 1, false, true},
		{"64 bytes", maxName, false, false},
		{"63 bytes, the NUL ending its segment", maxName - 1, true, true},
		{"64 bytes, the NUL ending its segment", maxName, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.Repeat("x", tc.n)
			var img []byte
			if tc.segEnd {
				img = nameAtTextEnd(t, short, name)
			} else {
				img = readFile(t, buildKernel(t, kstriptest.Options{Bits: 32, NoDrivers: true, Entries: entries(name)}))
			}
			k, err := Parse(img)
			if tc.ok {
				if err != nil || len(k.Entries) != 2 || k.Entries[1].Name != name {
					t.Errorf("Parse: %v; want cfdata[1] named by all %d bytes", err, tc.n)
				}
				return
			}
			want := fmt.Sprintf("no NUL within %d bytes (names are read up to %d bytes", maxName, maxName)
			if !errors.Is(err, ErrBadString) || !strings.Contains(fmt.Sprint(err), "cfdata[1] (file offset") || !strings.Contains(fmt.Sprint(err), "cf_name") || !strings.Contains(fmt.Sprint(err), want) {
				t.Errorf("Parse: %v; want ErrBadString for cfdata[1]'s cf_name, %s", err, want)
			}
		})
	}
}

// nameAtTextEnd returns the little-endian ELF32 image with its first
// program header (the text segment) cut to name and a NUL, which replace
// its bytes, and cfdata[1]'s cf_name pointing at them.
func nameAtTextEnd(t *testing.T, image []byte, name string) []byte {
	t.Helper()
	k, err := Parse(clone(image))
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.NewFile(bytes.NewReader(image))
	if err != nil {
		t.Fatal(err)
	}
	text, n := f.Progs[0], uint64(len(name)+1)
	if text.Type != elf.PT_LOAD || f.Progs[1].Off < text.Off+n {
		t.Fatalf("the text segment %+v has no room for %d bytes before %+v", text.ProgHeader, n, f.Progs[1].ProgHeader)
	}
	b := clone(image)
	le := binary.LittleEndian
	phdr := le.Uint32(b[28:])            // e_phoff
	le.PutUint32(b[phdr+16:], uint32(n)) // p_filesz
	le.PutUint32(b[phdr+20:], uint32(n)) // p_memsz
	copy(b[text.Off:], name+"\x00")
	le.PutUint32(b[k.Entries[1].Offset:], uint32(text.Vaddr)) // cf_name
	return b
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// sectionOfType returns the index of the first section of type typ in
// the little-endian ELF32 image, and its sh_link.
func sectionOfType(t *testing.T, image []byte, typ elf.SectionType) (index, link int) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(image))
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range f.Sections {
		if s.Type == typ {
			return i, int(s.Link)
		}
	}
	t.Fatalf("no section of type %v", typ)
	return 0, 0
}

// sectionHeader returns the file offset of section i's header in the
// little-endian ELF32 image.
func sectionHeader(image []byte, i int) int64 {
	return int64(binary.LittleEndian.Uint32(image[32:])) + int64(i)*40
}

// TestRealKernelCutInSymbols: the real kernel, whose section headers come
// before its symbols, cut inside its symbol table or their names, is a
// truncated file, not a stripped one.
func TestRealKernelCutInSymbols(t *testing.T) {
	kernel, _ := realnetbsd.Files(t)
	f, err := ReadFile(kernel)
	if err != nil {
		t.Fatal(err)
	}
	ef, err := elf.NewFile(bytes.NewReader(f.Data))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{".symtab", ".strtab"} {
		s := ef.Section(name)
		if s == nil {
			t.Fatalf("no %s", name)
		}
		cut := f.Data[:s.Offset+s.Size/2]
		_, err := Parse(cut)
		want := fmt.Sprintf("section %s (%d bytes at file offset %#x)", name, s.Size, s.Offset)
		if !errors.Is(err, ErrTruncated) || !strings.Contains(fmt.Sprint(err), want) {
			t.Errorf("cut inside %s: %v; want ErrTruncated naming %q", name, err, want)
		}
	}
}

// manyLoads is a little-endian ELF32 header followed by n empty PT_LOAD
// program headers and nothing else.
func manyLoads(n int) []byte {
	b := make([]byte, 52+32*n)
	copy(b, "\x7fELF\x01\x01\x01")
	le := binary.LittleEndian
	le.PutUint16(b[16:], uint16(elf.ET_EXEC))
	le.PutUint16(b[18:], uint16(elf.EM_386))
	le.PutUint32(b[20:], 1)
	le.PutUint32(b[28:], 52) // e_phoff
	le.PutUint16(b[40:], 52) // e_ehsize
	le.PutUint16(b[42:], 32) // e_phentsize
	le.PutUint16(b[44:], uint16(n))
	for i := 0; i < n; i++ {
		p := b[52+32*i:]
		le.PutUint32(p[0:], uint32(elf.PT_LOAD))
		le.PutUint32(p[8:], 0xc0100000+uint32(i)*0x1000)
	}
	return b
}

// TestTooManySegments: every address lookup walks the loaded segments,
// so a file with thousands of them would make the walk of a large table
// take hours; a kernel has a handful, so such a file is refused, as a
// malformed ELF file (it was "not an ELF file", which it is).
func TestTooManySegments(t *testing.T) {
	_, err := Parse(manyLoads(maxRegions + 1))
	if !errors.Is(err, ErrMalformed) || errors.Is(err, ErrNotELF) || !strings.Contains(err.Error(), "loadable") {
		t.Errorf("err = %v, want ErrMalformed naming the loadable segments", err)
	}
	if _, err := Parse(manyLoads(4)); errors.Is(err, ErrNotELF) {
		t.Errorf("4 segments refused: %v", err)
	}
}

// TestDriverTableBound: drivers can share one cd_attrs array, so a small
// file can claim millions of (driver, attribute) pairs; past a bound far
// above any real kernel's the table is ignored as damaged.
func TestDriverTableBound(t *testing.T) {
	var attrs []string
	for i := 0; i < maxAttrs-1; i++ {
		attrs = append(attrs, fmt.Sprintf("a%d", i))
	}
	tests := []struct {
		drivers int
		known   bool
	}{
		{maxProvided / len(attrs), true},
		{maxProvided/len(attrs) + 1, false},
	}
	for _, tc := range tests {
		var entries []kstriptest.Entry
		provides := map[string][]string{}
		for i := 0; i < tc.drivers; i++ {
			name := fmt.Sprintf("d%c%c", 'a'+i/26, 'a'+i%26)
			entries = append(entries, kstriptest.Entry{Name: name, Attach: name, State: 2})
			provides[name] = attrs
		}
		k, _ := parseFile(t, buildKernel(t, kstriptest.Options{Bits: 32, Entries: entries, Provides: provides}))
		if got, known := k.Providers("a0"); known != tc.known || (known && len(got) != tc.drivers) {
			t.Errorf("%d drivers x %d attributes: providers of a0 %d, known %v, want %v", tc.drivers, len(attrs), len(got), known, tc.known)
		}
	}
}

// TestEntryCap: a table stopped at the entry cap was said to have no
// terminator "before the end of its segment", which it had not reached;
// the error now names the cap. A table cut by its segment still says so.
func TestEntryCap(t *testing.T) {
	k, _ := parseFile(t, buildKernel(t, kstriptest.Options{Bits: 32, Entries: generic}))
	noTerm := readFile(t, buildKernel(t, kstriptest.Options{Bits: 32, Entries: generic, NoTerminator: true}))
	tests := []struct {
		name      string
		image     []byte
		cap       int
		want, not string
	}{
		{"past the cap", k.Bytes(), 10, "after 10 entries, the most a table may have", "end of its segment"},
		{"at the segment's end", noTerm, maxEntries, "before the end of its segment", "the most a table may have"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func(n int) { maxEntries = n }(maxEntries)
			maxEntries = tt.cap
			_, err := Parse(tt.image)
			if !errors.Is(err, ErrNoTerminator) || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), tt.not) {
				t.Errorf("err = %v, want ErrNoTerminator saying %q", err, tt.want)
			}
		})
	}
}
