package netbsdboot

import (
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/bootplan"
	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/internal/bootelf/elftest"
	"golang.org/x/sys/unix"
)

const (
	testMem = 16 << 20
	fill    = 0xAA
)

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// rndSeed is an entropy seed as rndctl -S saves it: an entropy count,
// data and the SHA-1 of both.
func rndSeed(entropy uint32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, entropy)
	b = append(b, pattern(512, byte(entropy))...)
	sum := sha1.Sum(b)
	return append(b, sum[:]...)
}

// stdKernel is a small NetBSD kernel of the class (1: i386 ELF32, 2: amd64
// ELF64): text and data+BSS segments, the ident note, a CTF section, a
// comment, a symbol table with its strings (start, md_root_setconf,
// module_init_md), and a string table nothing
// links to.
func stdKernel(class byte) elftest.File {
	base, vbase := uint64(0x100000), uint64(0xc0100000)
	if class == 2 {
		base, vbase = 0x200000, 0xffffffff80200000
	}
	sym, str := elftest.Symtab(class, false, []elftest.Sym{
		{Name: "start", Value: vbase, Shndx: 1},
		{Name: "md_root_setconf", Value: vbase + 0x40, Shndx: 1},
		// Present, as in a MODULAR kernel, without its code: the
		// loader cannot tell what it calls, and says nothing of it.
		{Name: "module_init_md", Value: vbase + 0x80, Shndx: 1},
	})
	return elftest.File{
		Class: class,
		Entry: vbase + 0x20,
		Segs: []elftest.Seg{
			{Flags: 5, Vaddr: vbase, Paddr: base, Data: pattern(0x200, 1)},
			{Flags: 6, Vaddr: vbase + 0x1000, Paddr: base + 0x1000, Data: pattern(0x80, 2), Memsz: 0x3000},
		},
		Secs: []elftest.Sec{
			{Name: ".text", Type: 1, Flags: 6, Addr: vbase, Data: pattern(0x200, 1)},
			{Name: ".note.netbsd.ident", Type: 7, Data: elftest.NetBSDNote(false, 901000000)},
			{Name: ".SUNW_ctf", Type: 1, Data: []byte("ctfdata!")},
			{Name: ".comment", Type: 1, Data: []byte("hello")},
			{Name: ".symtab", Type: 2, Data: sym, Link: 6, Info: 1, Entsize: uint64(len(sym) / 4)},
			{Name: ".strtab", Type: 3, Data: str},
			{Name: ".orphan", Type: 3, Data: []byte("\x00zz\x00")},
		},
	}
}

// xenPVNotes are the types of the Xen notes amd64's XENPV locore.S emits
// (9.1 amd64/locore.S:300-315), in its order: ENTRY (1) among them, no
// PHYS32_ENTRY.
var xenPVNotes = []uint32{6, 7, 5, 3, 4, xenNoteEntry, 2, 12, 10, 9, 13, 8, 14, 11}

// xenKernel is the class's stdKernel with Xen notes of the types given,
// as the linker leaves them: in a .note.Xen section (SHT_NOTE, as the
// assembler types a .note section), and no __xen_guest section, which
// ELFNOTE's .pushsection leaves empty. With inSegment they are in a
// PT_NOTE segment instead, as a kernel whose note section is allocated
// may have them, with no section of their own.
func xenKernel(class byte, inSegment bool, types ...uint32) []byte {
	var notes []byte
	for _, t := range types {
		desc := make([]byte, 8) // a .quad, as ENTRY's start
		switch t {
		case 6, 7, 5, 9, 8, 11:
			desc = []byte("NetBSD\x00")
		case xenNotePhys32Entry:
			desc = []byte{0x20, 0, 0x20, 0} // a .long: a physical address
		}
		notes = append(notes, elftest.Note(false, "Xen", t, desc)...)
	}
	k := stdKernel(class)
	if inSegment {
		k.Segs = append(k.Segs, elftest.Seg{Type: 4, Flags: 4, Data: notes})
	} else {
		k.Secs = append(k.Secs, elftest.Sec{Name: ".note.Xen", Type: 7, Data: notes})
	}
	return k.Build()
}

// gz returns data gzipped, with one member per part when parts are given
// (cut points), as a file made by concatenating .gz files.
func gz(data []byte, parts ...int) []byte {
	var out bytes.Buffer
	cuts := append(append([]int{0}, parts...), len(data))
	for i := 1; i < len(cuts); i++ {
		zw := gzip.NewWriter(&out)
		zw.Write(data[cuts[i-1]:cuts[i]])
		zw.Close()
	}
	return out.Bytes()
}

func newMem() *guestmem.Memory {
	return guestmem.New(bytes.Repeat([]byte{fill}, testMem))
}

// sparseMem returns zeroed guest memory of n bytes mapped on demand, as
// the machine maps it: for sizes no test should allocate. The test is
// skipped, with the reason, where such a mapping is refused.
func sparseMem(t *testing.T, n int) *guestmem.Memory {
	t.Helper()
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		t.Skipf("mapping %d bytes of guest memory: %v", n, err)
	}
	t.Cleanup(func() { _ = unix.Munmap(b) })
	return guestmem.New(b)
}

// symLayout is where the symbol area's parts go, relative to its start:
// computed by hand from loadfile_elf32.c for stdKernel.
type symLayout struct{ shstr, ctf, symtab, strtab, end uint64 }

func TestLoadLayout(t *testing.T) {
	le := binary.LittleEndian
	for _, tc := range []struct {
		class         byte
		kstart, entry uint32
		ehsize, shsz  int
		want          symLayout
	}{
		// ELF32: header 52, 9 section headers of 40 = 360; section names
		// 79 bytes -> 80; ctf 8; symtab 4x16; strtab 38 -> 40.
		{1, 0x100000, 0x100020, 52, 40, symLayout{412, 492, 500, 564, 604}},
		// ELF64: header 64, 9 x 64 = 576; names 80; ctf 8; symtab 4x24;
		// strtab 38 -> 40 (ELFROUND 8).
		{2, 0x200000, 0x200020, 64, 64, symLayout{640, 720, 728, 824, 864}},
	} {
		t.Run(fmt.Sprintf("ELF%d", 32*int(tc.class)), func(t *testing.T) {
			k := stdKernel(tc.class)
			file, secOff := k.BuildOffsets()
			mem := newMem()
			kmod := elftest.Kmod(tc.class, 104)
			fsimg := pattern(5000, 4)
			p, err := Load(mem, bytes.NewReader(file), int64(len(file)), Options{
				KernelName: "netbsd.gz",
				Append:     "-s -1q console=com console_speed=115200 root=ld0a foo=bar",
				Modules:    []Module{{Name: "miniroot.kmod", Data: kmod}, {Name: "/fs.img", Data: fsimg, Type: ModuleFS}},
			})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			b := mem.Bytes()
			kend := uint64(tc.kstart) + 0x4000
			ssym := kend
			symEnd := ssym + tc.want.end // BTINFO_SYMTAB's esym
			mod0 := (symEnd + 4095) &^ 4095
			mod1 := (mod0 + uint64(len(kmod)) + 4095) &^ 4095
			endpa := mod1 + uint64(len(fsimg))

			if p.Protocol != bootplan.NetBSD || p.EIP != tc.entry || p.ESP != 0x6FE4 || p.EAX != 0 || p.EBX != 0 ||
				p.KernelStart != tc.kstart || p.KernelEnd != uint32(kend) || p.End != uint32(endpa) || !p.Symbols ||
				p.Format != fmt.Sprintf("elf%d", 32*int(tc.class)) {
				t.Errorf("plan %+v", p)
			}
			if len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], `"foo=bar"`) {
				t.Errorf("warnings %q, want one about foo=bar", p.Warnings)
			}

			// Segments and BSS.
			expect(t, b, uint64(tc.kstart), pattern(0x200, 1), "text")
			expect(t, b, uint64(tc.kstart)+0x200, bytes.Repeat([]byte{fill}, 0xe00), "gap between segments")
			expect(t, b, uint64(tc.kstart)+0x1000, pattern(0x80, 2), "data")
			expect(t, b, uint64(tc.kstart)+0x1080, make([]byte, 0x2f80), "BSS")

			// The symbol area.
			hdr := append([]byte(nil), file[:tc.ehsize]...)
			if tc.class == 2 {
				le.PutUint64(hdr[32:], 0)
				le.PutUint64(hdr[40:], 64)
				le.PutUint16(hdr[54:], 0)
				le.PutUint16(hdr[56:], 0)
			} else {
				le.PutUint32(hdr[28:], 0)
				le.PutUint32(hdr[32:], 52)
				le.PutUint16(hdr[42:], 0)
				le.PutUint16(hdr[44:], 0)
			}
			expect(t, b, ssym, hdr, "ELF header copy")
			shoff := le.Uint32(file[32:])
			if tc.class == 2 {
				shoff = uint32(le.Uint64(file[40:]))
			}
			shtab := append([]byte(nil), file[shoff:shoff+uint32(9*tc.shsz)]...)
			newOff := map[int]uint64{8: tc.want.shstr, 3: tc.want.ctf, 5: tc.want.symtab, 6: tc.want.strtab}
			for i := 1; i < 9; i++ {
				field := shtab[i*tc.shsz+16:]
				if tc.class == 2 {
					le.PutUint64(shtab[i*tc.shsz+24:], newOff[i])
				} else {
					le.PutUint32(field, uint32(newOff[i]))
				}
			}
			expect(t, b, ssym+uint64(tc.ehsize), shtab, "section headers")
			for i, rel := range newOff {
				sec := k.Secs
				var data []byte
				if i == 8 {
					data = file[secOff[8]:shoff] // .shstrtab runs to the header table, with padding
					data = data[:bytes.Index(data, []byte(".shstrtab\x00"))+10]
				} else {
					data = sec[i-1].Data
				}
				expect(t, b, ssym+rel, data, fmt.Sprintf("section %d", i))
			}
			f, err := elf.NewFile(bytes.NewReader(b[ssym:symEnd]))
			if err != nil {
				t.Fatalf("the symbol area does not parse: %v", err)
			}
			syms, err := f.Symbols()
			if err != nil || len(syms) != 3 || syms[0].Name != "start" || syms[1].Name != "md_root_setconf" {
				t.Errorf("symbols from the area: %v, %v", syms, err)
			}
			expect(t, b, symEnd, bytes.Repeat([]byte{fill}, int(mod0-symEnd)), "between symbols and the first module")

			// Modules.
			expect(t, b, mod0, kmod, "module 0")
			expect(t, b, mod1, fsimg, "module 1")

			// The stack: esym is the end of everything loaded, the
			// last module's end (docs/NETBSD-BOOT-NOTES.md, the /boot
			// handoff).
			words := []uint32{0, RBSingle | RBMD1 | ABQuiet, 0, 0x7000, uint32(endpa), (testMem - 1<<20) / 1024, 640}
			for i, w := range words {
				if got := le.Uint32(b[0x6FE4+4*i:]); got != w {
					t.Errorf("stack word %d = %#x, want %#x", i, got, w)
				}
			}
			expect(t, b, 0x6000, make([]byte, 0xFE4), "stack page below the arguments")

			// The bootinfo table and every record, byte for byte.
			type rec struct {
				typ  uint32
				body []byte
			}
			str := func(s string, n int) []byte { x := make([]byte, n); copy(x, s); return x }
			u32 := func(vs ...uint32) []byte {
				x := make([]byte, 4*len(vs))
				for i, v := range vs {
					le.PutUint32(x[4*i:], v)
				}
				return x
			}
			mm := u32(3)
			for _, e := range [][3]uint64{{0, 0xA0000, 1}, {0xA0000, 0x60000, 2}, {0x100000, testMem - 0x100000, 1}} {
				mm = le.AppendUint64(mm, e[0])
				mm = le.AppendUint64(mm, e[1])
				mm = le.AppendUint32(mm, uint32(e[2]))
			}
			ml := u32(2, uint32(endpa))
			ml = append(append(ml, str("miniroot.kmod", 80)...), u32(1, uint32(len(kmod)), uint32(mod0))...)
			ml = append(append(ml, str("/fs.img", 80)...), u32(4, uint32(len(fsimg)), uint32(mod1))...)
			want := []rec{
				{6, append(str("com", 16), u32(0x3f8, 115200)...)},
				{0, str("netbsd.gz", 80)},
				{1, str("ld0a", 16)},
				{9, mm},
				{11, ml},
				{8, u32(1, uint32(ssym), uint32(symEnd))},
				{12, make([]byte, 48)},
			}
			if n := le.Uint32(b[0x7000:]); n != uint32(len(want)) {
				t.Fatalf("bootinfo nentries %d, want %d", n, len(want))
			}
			next := uint32(0x7000 + 4 + 4*len(want))
			for i, r := range want {
				at := le.Uint32(b[0x7004+4*i:])
				if at != next {
					t.Errorf("record %d at %#x, want %#x", i, at, next)
				}
				expect(t, b, uint64(at), append(u32(uint32(8+len(r.body)), r.typ), r.body...), fmt.Sprintf("record %d (type %d)", i, r.typ))
				next = at + uint32(8+len(r.body)+3)&^3
			}

			// The regions cover what was written, in order.
			var whats []string
			for i, r := range p.Regions {
				whats = append(whats, r.What)
				if i > 0 && r.Addr < p.Regions[i-1].Addr+p.Regions[i-1].Len {
					t.Errorf("region %v overlaps %v", r, p.Regions[i-1])
				}
			}
			if len(p.Regions) != 7 || p.Regions[5].Addr != mod0 || p.Regions[6].Len != uint64(len(fsimg)) || p.Regions[4].Addr != ssym {
				t.Errorf("regions %v", p.Regions)
			}
			// Low area, the kernel's two segments, its symbols, then the
			// modules by the names and kinds given above.
			wantWhats := []string{"stack: ", "bootinfo ", "segment 0", "segment 1", "symbols: ", "module miniroot.kmod (kmod)", "module /fs.img (fs)"}
			for i, w := range wantWhats {
				if i >= len(whats) || !strings.HasPrefix(whats[i], w) {
					t.Errorf("regions in order %q, want them to start %q", whats, wantWhats)
					break
				}
			}
		})
	}
}

// TestLoadEsym: the esym stack argument is the physical end of everything
// loaded (docs/NETBSD-BOOT-NOTES.md, the /boot handoff): the last
// module's end when there are
// modules, else the symbol area's. BTINFO_SYMTAB's esym stays the symbol
// area's end, where the kernel takes its symbols from, and endpa the last
// module's end. Addresses by hand: stdKernel's i386 symbols are
// [0x104000, 0x10425c), its amd64 ones [0x204000, 0x204360).
func TestLoadEsym(t *testing.T) {
	// A kernel without a symbol table: the ELF header copy (52), three
	// section headers (3 x 40) and the section names (30 -> 32) follow
	// its end, 0x102000.
	noSymtab := elftest.File{Entry: 0xc0100000, Segs: []elftest.Seg{
		{Flags: 5, Vaddr: 0xc0100000, Paddr: 0x100000, Data: pattern(0x2000, 9)},
	}, Secs: []elftest.Sec{
		{Name: ".note.netbsd.ident", Type: 7, Data: elftest.NetBSDNote(false, 901000000)},
	}}.Build()
	// No section header table, the note in a PT_NOTE: the ELF header
	// copy alone, as /boot copies it (loadfile_elf32.c:779-781).
	noSections := elftest.File{Entry: 0xc0100000, Segs: []elftest.Seg{
		{Flags: 5, Vaddr: 0xc0100000, Paddr: 0x100000, Data: pattern(0x2000, 9)},
		{Type: 4, Data: elftest.NetBSDNote(false, 901000000)},
	}}.Build()
	le := binary.LittleEndian
	kmod := elftest.Kmod(1, 300)
	fsimg := pattern(5000, 4)
	for _, tc := range []struct {
		name                 string
		kernel               []byte
		mods                 []Module
		esym, symEsym, endpa uint32
	}{
		{"i386, no modules", stdKernel(1).Build(), nil, 0x10425c, 0x10425c, 0x10425c},
		{"amd64, no modules", stdKernel(2).Build(), nil, 0x204360, 0x204360, 0x204360},
		{"no symbol table", noSymtab, nil, 0x1020cc, 0x1020cc, 0x1020cc},
		{"no sections", noSections, nil, 0x102034, 0x102034, 0x102034},
		{"one module", stdKernel(1).Build(), []Module{{Name: "miniroot.kmod", Data: kmod}},
			0x10512c, 0x10425c, 0x10512c},
		{"two modules", stdKernel(1).Build(), []Module{{Name: "miniroot.kmod", Data: kmod}, {Name: "/fs.img", Data: fsimg, Type: ModuleFS}},
			0x106000 + 5000, 0x10425c, 0x106000 + 5000},
		{"amd64, one module", stdKernel(2).Build(), []Module{{Name: "miniroot.kmod", Data: elftest.Kmod(2, 400)}},
			0x205190, 0x204360, 0x205190},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := newMem()
			p, err := Load(mem, bytes.NewReader(tc.kernel), int64(len(tc.kernel)), Options{Append: "console=com", Modules: tc.mods})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			b := mem.Bytes()
			esym := le.Uint32(b[Stack+16:])
			recs := records(t, b, le.Uint32(b[Stack+12:]))
			st, ml := recs[BtinfoSymtab], recs[BtinfoModuleList]
			if len(st) != 12 || len(ml) < 8 {
				t.Fatalf("BTINFO_SYMTAB % x, BTINFO_MODULELIST % x", st, ml)
			}
			if esym != tc.esym || le.Uint32(st[8:]) != tc.symEsym || le.Uint32(ml[4:]) != tc.endpa || p.End != tc.endpa {
				t.Errorf("stack esym %#x, BTINFO_SYMTAB esym %#x, endpa %#x, plan end %#x; want %#x, %#x, %#x, %#x",
					esym, le.Uint32(st[8:]), le.Uint32(ml[4:]), p.End, tc.esym, tc.symEsym, tc.endpa, tc.endpa)
			}
		})
	}
}

func expect(t *testing.T, mem []byte, addr uint64, want []byte, what string) {
	t.Helper()
	got := mem[addr : addr+uint64(len(want))]
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(want) && got[i] == want[i] {
			i++
		}
		t.Errorf("%s at %#x: byte %d (%#x) is %#02x, want %#02x", what, addr, i, addr+uint64(i), got[i], want[i])
	}
}

func TestParseAppend(t *testing.T) {
	for _, tc := range []struct {
		in       string
		howto    uint32
		console  string
		addr     uint32
		speed    uint32
		root     string
		warnings int
	}{
		// Without console= the display, which smolvmm lacks: one
		// warning says so.
		{"", 0, "pc", 0, 9600, "", 1},
		{"console=pc", 0, "pc", 0, 9600, "", 0},
		{"console=com root=ld0a", 0, "com", 0x3f8, 9600, "ld0a", 0},
		{"-s", RBSingle, "pc", 0, 9600, "", 1},
		{"-s -a -v -q -x -d -c -z -1 -2", RBSingle | RBAskName | ABVerbose | ABQuiet | ABDebug | RBKDB | RBUserconf | ABSilent | RBMD1 | RBMD2, "pc", 0, 9600, "", 1},
		{"-bm34", RBHalt | RBMiniroot | RBMD3 | RBMD4, "pc", 0, 9600, "", 1},
		{"console=com console_addr=0x3f8 console_speed=115200", 0, "com", 0x3f8, 115200, "", 0},
		// Numbers as the multiboot entry reads them: 1016 is 0x3f8.
		{"console_addr=1016 console=com", 0, "com", 0x3f8, 9600, "", 0},
		{"console=com console_addr=0x3F8 console_speed=000019200", 0, "com", 0x3f8, 19200, "", 0},
		{"netbsd root=wd0a init=/bin/sh -", 0, "pc", 0, 9600, "wd0a", 4},
		// The first of each key counts, as on the multiboot path.
		{"console=com root=ld0a console=pc root=wd1e console_speed=19200 console_speed=38400", 0, "com", 0x3f8, 19200, "ld0a", 3},
		// Wedges and interfaces, which findroot passes on to setroot as
		// rootspec, go into the record as written.
		{"console=com root=dk0", 0, "com", 0x3f8, 9600, "dk0", 0},
		{"console=com root=NAME=netbsdroot", 0, "com", 0x3f8, 9600, "NAME=netbsdroot", 0},
		{"console=com root=wedge:root", 0, "com", 0x3f8, 9600, "wedge:root", 0},
		{"console=com root=vioif0", 0, "com", 0x3f8, 9600, "vioif0", 0},
	} {
		a, err := ParseAppend(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if a.Howto != tc.howto || a.Console != tc.console || a.ConsoleAddr != tc.addr || a.ConsoleSpeed != tc.speed ||
			a.Root != tc.root || len(a.Warnings) != tc.warnings {
			t.Errorf("%q: %+v", tc.in, a)
		}
	}
	for _, bad := range []string{"-k", "-sk", "console=ttyS0", "console_addr=0x10000", "console_addr=x", "console_speed=0",
		// The machine's only UART is at 0x3f8; numbers are 0x-hex or
		// decimal as the multiboot entry reads them (01770 is 1770, not
		// octal 0x3f8; 0x3_f8 is 0x3); a speed the 16550 cannot take.
		"console=com console_addr=0x2f8", "console=com console_addr=01770", "console=com console_addr=0x3_f8",
		"console=com console_addr=0b1111111000", "console=com console_speed=230400", "console=com console_speed=0x2580",
		"console_speed=fast", "root=", "root=" + strings.Repeat("x", 16),
		// findroot reads the byte after the driver name as the unit and
		// the next as the partition: any other shape boots wrong.
		"root=ld0", "root=ld10a", "root=ld0z", "root=0a", "console=com root=ld0a root=ld0",
		// dk10 would be found as dk1; NAME= names no wedge.
		"root=dk10", "root=NAME="} {
		if _, err := ParseAppend(bad); !errors.Is(err, ErrAppend) {
			t.Errorf("%q: error %v, want ErrAppend", bad, err)
		} else if i := strings.Index(bad, "root="); i >= 0 && (!strings.Contains(err.Error(), "root=") ||
			!strings.Contains(err.Error(), "a disk partition such as ld0a, a wedge")) {
			t.Errorf("%q: error %q does not name the value and the shape expected", bad, err)
		}
	}
}

func TestLoadRefuses(t *testing.T) {
	kernel := func(f func(*elftest.File)) []byte {
		k := stdKernel(1)
		f(&k)
		return k.Build()
	}
	note := func(k *elftest.File, big bool) { k.Secs[1].Data = elftest.NetBSDNote(big, 901000000) }
	// kaslr is an ET_REL file of the class and machine with the ident
	// note and a symbol table defining name.
	kaslr := func(class byte, machine uint16, name string) []byte {
		sym, str := elftest.Symtab(class, false, []elftest.Sym{{Name: name, Value: 0x20, Shndx: 1}})
		return elftest.File{Class: class, Type: 1, Machine: machine, Secs: []elftest.Sec{
			{Name: ".text", Type: 1, Flags: 6, Data: pattern(0x100, 1)},
			{Name: ".note.netbsd.ident", Type: 7, Data: elftest.NetBSDNote(false, 901000000)},
			{Name: ".symtab", Type: 2, Data: sym, Link: 4, Info: 1},
			{Name: ".strtab", Type: 3, Data: str},
		}}.Build()
	}
	// xenI386 is i386's XEN3PAE_DOMU as the linker leaves it: a
	// __xen_guest string (9.1 i386/locore.S:262-275), no Xen notes.
	xenI386 := func() []byte {
		k := stdKernel(1)
		k.Secs = append(k.Secs, elftest.Sec{Name: "__xen_guest", Type: 1, Data: []byte("GUEST_OS=netbsd,GUEST_VER=3.0,XEN_VER=xen-3.0,LOADER=generic\x00")})
		return k.Build()
	}
	kmod := elftest.Kmod(1, 64)
	many := make([]Module, 42)
	for i := range many {
		many[i] = Module{Name: fmt.Sprint("m", i), Data: kmod}
	}
	std := stdKernel(1).Build()
	// stdKernel's ELF32 image with e_shstrndx (at 50) set to n; it has
	// 9 sections, the names the last.
	shstrndx := func(n uint16) []byte {
		b := bytes.Clone(std)
		binary.LittleEndian.PutUint16(b[50:], n)
		return b
	}
	gzKmod := gz(elftest.Kmod(1, 3011))
	corrupt := bytes.Clone(gzKmod)
	corrupt[len(corrupt)/2] ^= 0xff // inside the deflate data
	for _, tc := range []struct {
		name  string
		image []byte
		opts  Options
		is    []error
		msg   []string
	}{
		{"not ELF", []byte("#!/bin/sh\necho hello\n"), Options{}, []error{ErrNotNetBSD, ErrNotELF}, []string{`the file starts with "#!/b", not "\x7fELF"`}},
		{"empty", nil, Options{}, []error{ErrNotNetBSD, ErrNotELF}, nil},
		{"ELF without the note", kernel(func(k *elftest.File) { k.Secs[1].Type = 1 }), Options{}, []error{ErrNotNetBSD}, []string{"ident note", "Intel 80386"}},
		{"FreeBSD note", kernel(func(k *elftest.File) { k.Secs[1].Data = elftest.Note(false, "FreeBSD", 1, []byte{1, 2, 3, 4}) }), Options{}, []error{ErrNotNetBSD}, nil},
		{"sh3", kernel(func(k *elftest.File) { k.Machine = 42 }), Options{}, []error{ErrMachine}, []string{"SuperH (sh3)", "NetBSD 9.1 kernel"}},
		{"arm", kernel(func(k *elftest.File) { k.Machine = 40 }), Options{}, []error{ErrMachine}, []string{"ARM (arm)"}},
		{"powerpc, big-endian", kernel(func(k *elftest.File) { k.Machine, k.BigEndian = 20, true; note(k, true) }), Options{}, []error{ErrMachine}, []string{"PowerPC (powerpc)"}},
		{"sparc64", kernel(func(k *elftest.File) { k.Class, k.Machine, k.BigEndian = 2, 43, true; note(k, true) }), Options{}, []error{ErrMachine}, []string{"SPARC v9 (sparc64)", "ELF64"}},
		{"mips", kernel(func(k *elftest.File) { k.Machine = 8 }), Options{}, []error{ErrMachine}, []string{"MIPS (mips)"}},
		// i386's machine number in a big-endian file: no x86 kernel is
		// one, whatever its e_machine says.
		{"i386, big-endian", kernel(func(k *elftest.File) { k.BigEndian = true; note(k, true) }), Options{}, []error{ErrMachine}, []string{"Intel 80386 (i386)", "NetBSD 9.1 kernel"}},
		{"amd64, big-endian", func() []byte {
			k := stdKernel(2)
			k.BigEndian = true
			note(&k, true)
			return k.Build()
		}(), Options{}, []error{ErrMachine}, []string{"x86-64", "ELF64"}},
		{"unknown machine", kernel(func(k *elftest.File) { k.Machine = 4242 }), Options{}, []error{ErrMachine}, []string{"e_machine 4242"}},
		{"amd64 code in ELF32", kernel(func(k *elftest.File) { k.Machine = 62 }), Options{}, []error{ErrMachine}, []string{"x86-64"}},
		{"module object", kernel(func(k *elftest.File) { k.Type = 1 }), Options{}, []error{ErrUnsupportedELF}, []string{"e_type 1"}},
		// A module without the ident note, as g4u's miniroot.kmod: it
		// was "an ELF32 file ... without NetBSD's ident note", never
		// named a module.
		{"module without the ident note", elftest.Kmod(1, 3011), Options{}, []error{ErrNotNetBSD, ErrUnsupportedELF},
			[]string{"an ELF32 relocatable object (e_type 1, ET_REL) for Intel 80386 (i386), e_machine 3 without NetBSD's ident note, as a kernel module is: not a kernel"}},
		{"amd64 module without the ident note", elftest.Kmod(2, 3011), Options{}, []error{ErrNotNetBSD, ErrUnsupportedELF},
			[]string{"an ELF64 relocatable object (e_type 1, ET_REL) for AMD x86-64 (amd64), e_machine 62 without NetBSD's ident note"}},
		// GENERIC_KASLR is linked relocatable (Makefile.amd64 -r -d),
		// with the ident note and locore's start: only the prekern
		// loads it.
		{"amd64 KASLR kernel", kaslr(2, 62, "start"), Options{}, []error{ErrUnsupportedELF, ErrKASLR},
			[]string{"a NetBSD 9.1 amd64 kernel linked relocatable (e_type 1, ET_REL) for KASLR", "only NetBSD's prekern loads it"}},
		// A Xen PV kernel starts in a domain Xen builds, not on a PC.
		{"i386 Xen PV kernel", xenI386(), Options{}, []error{ErrUnsupportedELF, ErrXenPV},
			[]string{"a NetBSD 9.1 i386 kernel for Xen PV", "__xen_guest"}},
		// amd64's XEN3_DOMU and XEN3_DOM0 have their notes in
		// .note.Xen and no __xen_guest section.
		{"amd64 Xen PV kernel", xenKernel(2, false, xenPVNotes...), Options{}, []error{ErrUnsupportedELF, ErrXenPV},
			[]string{"a NetBSD 9.1 amd64 kernel for Xen PV", "XEN_ELFNOTE_ENTRY, and no PVH one"}},
		{"amd64 Xen PV kernel, notes in a PT_NOTE segment", xenKernel(2, true, xenPVNotes...), Options{}, []error{ErrUnsupportedELF, ErrXenPV},
			[]string{"a NetBSD 9.1 amd64 kernel for Xen PV", "XEN_ELFNOTE_ENTRY"}},
		{"i386 kernel with Xen PV notes", xenKernel(1, false, xenPVNotes...), Options{}, []error{ErrUnsupportedELF, ErrXenPV},
			[]string{"a NetBSD 9.1 i386 kernel for Xen PV", "XEN_ELFNOTE_ENTRY"}},
		{"amd64 object without start", kaslr(2, 62, "other"), Options{}, []error{ErrUnsupportedELF}, []string{"e_type 1", "not a kernel"}},
		{"i386 object with start", kaslr(1, 3, "start"), Options{}, []error{ErrUnsupportedELF}, []string{"e_type 1", "not a kernel"}},
		{"entry outside", kernel(func(k *elftest.File) { k.Entry = 0xc0900000 }), Options{}, []error{ErrBadELF}, []string{"0xc0900000"}},
		// A segment's end is past it: [0xc0100000, 0xc0100200) and
		// [0xc0101000, 0xc0104000) (TestLoadAcceptsEdges loads their
		// first and last bytes).
		{"entry at the text segment's end", kernel(func(k *elftest.File) { k.Entry = 0xc0100200 }), Options{}, []error{ErrBadELF}, []string{"0x100200 lies in no loaded segment"}},
		{"entry a byte before the data segment", kernel(func(k *elftest.File) { k.Entry = 0xc0100fff }), Options{}, []error{ErrBadELF}, []string{"0x100fff lies in no loaded segment"}},
		{"entry at the BSS's end", kernel(func(k *elftest.File) { k.Entry = 0xc0104000 }), Options{}, []error{ErrBadELF}, []string{"0x104000 lies in no loaded segment"}},
		{"entry a byte before the kernel", kernel(func(k *elftest.File) { k.Entry = 0xc00fffff }), Options{}, []error{ErrBadELF}, []string{"0xfffff lies in no loaded segment"}},
		// Section 9 of 9 would be read past the table.
		{"e_shstrndx == e_shnum", shstrndx(9), Options{}, []error{ErrBadELF}, []string{"e_shstrndx 9, but there are 9 sections"}},
		{"e_shstrndx == e_shnum + 1", shstrndx(10), Options{}, []error{ErrBadELF}, []string{"e_shstrndx 10, but there are 9 sections"}},
		{"segment in low memory", kernel(func(k *elftest.File) { k.Segs[1].Vaddr = 0xc0009000 }), Options{}, []error{ErrLowMemory}, nil},
		{"no loadable segment with permissions", kernel(func(k *elftest.File) { k.Segs[0].Flags, k.Segs[1].Flags = 8, 8 }), Options{}, []error{ErrBadELF}, []string{"PF_R"}},
		{"truncated", std[:len(std)-20], Options{}, []error{ErrTruncated}, nil},
		// 65535 of them once took a minute to check for overlaps.
		{"129 program headers", kernel(func(k *elftest.File) {
			for i := range 127 {
				k.Segs = append(k.Segs, elftest.Seg{Vaddr: 0xc0200000 + uint64(16*i), Paddr: 0x200000 + uint64(16*i), Data: make([]byte, 16)})
			}
		}), Options{}, []error{ErrBadELF}, []string{"e_phnum 129", "at most 128"}},
		{"kernel beyond memory", kernel(func(k *elftest.File) { k.Segs[1].Vaddr = 0xc0fff000 }), Options{}, []error{ErrTooLarge}, []string{"the kernel [0x100000, 0x1002000)"}},
		{"module beyond memory", std, Options{Modules: []Module{{Name: "big", Data: make([]byte, testMem), Type: ModuleFS}}}, []error{ErrTooLarge}, []string{"module 0 (big"}},
		{"no room for page tables", std, Options{Headroom: testMem}, []error{ErrTooLarge}, []string{"bootstrap page tables"}},
		// 41 load (TestLoadAcceptsEdges).
		{"too many modules", std, Options{Modules: many}, []error{ErrTooManyModules}, []string{"42 modules", "4096 bytes", "room for 41"}},
		{"too many modules, a root device record too", std, Options{Append: "console=com root=ld0a", Modules: many}, []error{ErrTooManyModules}, []string{"42 modules", "4096 bytes", "room for 41"}},
		{"module path of 80 bytes", std, Options{Modules: []Module{{Name: strings.Repeat("p", 80), Data: kmod}}}, []error{ErrModule}, []string{"80 bytes", "1 to 79"}},
		{"module not ELF, no type", std, Options{Modules: []Module{{Name: "disk.img", Data: []byte("data")}}}, []error{ErrModule}, []string{"disk.img", "fs"}},
		{"module type unknown", std, Options{Modules: []Module{{Name: "x", Data: kmod, Type: 9}}}, []error{ErrModule}, nil},
		// /boot reads modules through libsa's gzip reader: what the
		// kernel gets is the decompressed bytes, which must be there.
		{"empty module typed fs", std, Options{Modules: []Module{{Name: "mr.img", Data: nil, Type: ModuleFS}}}, []error{ErrModule}, []string{"module 0 (mr.img) is empty"}},
		{"empty module, no type", std, Options{Modules: []Module{{Name: "e.kmod", Data: []byte{}}}}, []error{ErrModule}, []string{"e.kmod", "empty"}},
		{"gzip of nothing", std, Options{Modules: []Module{{Name: "e.gz", Data: gz(nil), Type: ModuleFS}}}, []error{ErrModule}, []string{"e.gz", "empty once decompressed"}},
		{"corrupt gzip data typed fs", std, Options{Modules: []Module{{Name: "mr.kmod.gz", Data: corrupt, Type: ModuleFS}}}, []error{ErrModule}, []string{"module 0 (mr.kmod.gz)", "corrupt"}},
		{"truncated gzip, no type", std, Options{Modules: []Module{{Name: "mr.kmod.gz", Data: gzKmod[:len(gzKmod)-10]}}}, []error{ErrModule}, []string{"mr.kmod.gz", "corrupt"}},
		{"bad gzip header", std, Options{Modules: []Module{{Name: "h.gz", Data: []byte{0x1f, 0x8b, 7, 0, 0, 0}, Type: ModuleRnd}}}, []error{ErrModule}, []string{"h.gz", "header"}},
		{"gzip expanding past memory", std, Options{Modules: []Module{{Name: "bomb.gz", Data: gz(make([]byte, testMem+1)), Type: ModuleFS}}}, []error{ErrModule, ErrTooLarge},
			[]string{"bomb.gz", "MiB of guest memory left"}},
		{"gzip expanding past what the module before left", std, Options{Modules: []Module{
			{Name: "half", Data: make([]byte, testMem/2), Type: ModuleFS},
			{Name: "half.gz", Data: gz(make([]byte, testMem/2)), Type: ModuleFS}}}, []error{ErrModule, ErrTooLarge},
			[]string{"module 1 (half.gz)", "MiB of guest memory left"}},
		{"gzipped module not ELF, no type", std, Options{Modules: []Module{{Name: "disk.img.gz", Data: gz([]byte("data"))}}}, []error{ErrModule}, []string{"disk.img.gz", "not an ELF"}},
		// kobj_load refuses all but ET_REL for the kernel's own machine,
		// and the kernel boots on without the module.
		{"i386 kmod for an amd64 kernel", stdKernel(2).Build(), Options{Modules: []Module{{Name: "miniroot.kmod", Data: elftest.Kmod(1, 100)}}}, []error{ErrModule},
			[]string{"module 0 (miniroot.kmod), a kmod, does not suit an amd64 kernel (ELF64, e_machine 62): it is a kernel module for Intel 80386 (i386), e_machine 3 (ELF32)"}},
		{"amd64 kmod for an i386 kernel", std, Options{Modules: []Module{{Name: "x.kmod", Data: elftest.Kmod(2, 100)}}}, []error{ErrModule},
			[]string{"does not suit an i386 kernel (ELF32, e_machine 3): it is a kernel module for AMD x86-64 (amd64), e_machine 62 (ELF64)"}},
		{"ELF64 i386 kmod", stdKernel(2).Build(), Options{Modules: []Module{{Name: "x.kmod", Data: func() []byte { b := elftest.Kmod(2, 100); b[18] = 3; return b }()}}}, []error{ErrModule},
			[]string{"Intel 80386 (i386), e_machine 3 (ELF64)"}},
		{"executable as a kmod", std, Options{Modules: []Module{{Name: "init", Data: func() []byte { b := elftest.Kmod(1, 100); b[16] = 2; return b }()}}}, []error{ErrModule},
			[]string{"module 0 (init), a kmod", "it is an executable (ET_EXEC), not a kernel module", "only relocatable objects (ET_REL)"}},
		{"gzipped shared object as a kmod", std, Options{Modules: []Module{{Name: "libc.so.gz", Data: gz(func() []byte { b := elftest.Kmod(1, 100); b[16] = 3; return b }())}}}, []error{ErrModule},
			[]string{"module 0 (libc.so.gz)", "a shared object (ET_DYN)"}},
		{"big-endian kmod", std, Options{Modules: []Module{{Name: "x.kmod", Data: func() []byte { b := elftest.Kmod(1, 100); b[5] = 2; return b }()}}}, []error{ErrModule},
			[]string{"not little-endian (EI_DATA 2, want 1)"}},
		{"kmod of an old ELF version", std, Options{Modules: []Module{{Name: "x.kmod", Data: func() []byte { b := elftest.Kmod(1, 100); b[20] = 0; return b }()}}}, []error{ErrModule},
			[]string{"ELF version is 1 (EI_VERSION) and 0 (e_version)"}},
		{"kmod shorter than an ELF header", stdKernel(2).Build(), Options{Modules: []Module{{Name: "x.kmod", Data: elftest.Kmod(2, 0)[:60]}}}, []error{ErrModule},
			[]string{"it is 60 bytes, shorter than the kernel's 64-byte ELF header"}},
		{"kmod typed so, not ELF", std, Options{Modules: []Module{{Name: "x.kmod", Data: []byte("not an ELF file"), Type: ModuleELF}}}, []error{ErrModule},
			[]string{"module 0 (x.kmod), a kmod, does not suit an i386 kernel (ELF32, e_machine 3): it is not an ELF file"}},
		// rnd_seed ignores a seed of another size or digest.
		{"rndseed too short", std, Options{Modules: []Module{{Name: "seed", Data: rndSeed(512)[:535], Type: ModuleRnd}}}, []error{ErrModule},
			[]string{"module 0 (seed), an rndseed, is 535 bytes, but NetBSD takes only a 536-byte seed", "/var/db/entropy-file", "bad seed length"}},
		{"rndseed too long", std, Options{Modules: []Module{{Name: "seed", Data: append(rndSeed(512), 0), Type: ModuleRnd}}}, []error{ErrModule},
			[]string{"is 537 bytes"}},
		{"random bytes as an rndseed", std, Options{Modules: []Module{{Name: "urandom", Data: pattern(536, 9), Type: ModuleRnd}}}, []error{ErrModule},
			[]string{"module 0 (urandom), an rndseed, ends in a digest (at offset 516) that is not the SHA-1 of its entropy count and data", "bad seed checksum"}},
		{"rndseed with another entropy count", std, Options{Modules: []Module{{Name: "seed", Data: func() []byte { b := rndSeed(512); b[0]++; return b }(), Type: ModuleRnd}}}, []error{ErrModule},
			[]string{"bad seed checksum"}},
		{"unknown boot flag", std, Options{Append: "-k"}, []error{ErrAppend}, []string{"-k"}},
		{"root device without a partition", std, Options{Append: "console=com root=ld0"}, []error{ErrAppend}, []string{`root="ld0"`, "such as ld0a"}},
		{"console on a port with no UART", std, Options{Append: "console=com console_addr=0x2f8 root=ld0a"}, []error{ErrAppend},
			[]string{`console_addr="0x2f8" is port 0x2f8`, "only serial port is at 0x3f8"}},
		{"console_addr read as decimal", std, Options{Append: "console=com console_addr=01770 root=ld0a"}, []error{ErrAppend},
			[]string{`console_addr="01770" is port 0x6ea`}},
		{"console speed the 16550 cannot make", std, Options{Append: "console=com console_speed=230400 root=ld0a"}, []error{ErrAppend},
			[]string{`console_speed="230400"`, "within 3%"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := newMem()
			_, err := Load(mem, bytes.NewReader(tc.image), int64(len(tc.image)), tc.opts)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, want := range tc.is {
				if !errors.Is(err, want) {
					t.Errorf("error %q is not %v", err, want)
				}
			}
			for _, m := range tc.msg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
			for i, c := range mem.Bytes() {
				if c != fill {
					t.Fatalf("a refused kernel changed guest memory at %#x", i)
				}
			}
		})
	}
}

// TestLoadAcceptsEdges: the last values the checks TestLoadRefuses pins
// let through load: an entry point on a segment's first or last byte,
// and as many modules as the bootinfo records hold.
func TestLoadAcceptsEdges(t *testing.T) {
	kernel := func(entry uint64) []byte {
		k := stdKernel(1)
		k.Entry = entry
		return k.Build()
	}
	std := stdKernel(1).Build()
	mods := func(n int) []Module {
		m := make([]Module, n)
		for i := range m {
			m[i] = Module{Name: fmt.Sprint("m", i), Data: elftest.Kmod(1, 64)}
		}
		return m
	}
	for _, tc := range []struct {
		name  string
		image []byte
		opts  Options
		eip   uint32
		mods  int // BTINFO_MODULELIST's count
	}{
		{"entry at the text segment's first byte", kernel(0xc0100000), Options{}, 0x100000, 0},
		{"entry at the text segment's last byte", kernel(0xc01001ff), Options{}, 0x1001ff, 0},
		{"entry at the data segment's first byte", kernel(0xc0101000), Options{}, 0x101000, 0},
		{"entry at the BSS's last byte", kernel(0xc0103fff), Options{}, 0x103fff, 0},
		// 4084 bytes of records with the root device's, 4060 without:
		// a 42nd module's 92 would pass 4096.
		{"41 modules", std, Options{Modules: mods(41)}, 0x100020, 41},
		{"41 modules and a root device", std, Options{Append: "console=com root=ld0a", Modules: mods(41)}, 0x100020, 41},
		// Xen notes alone do not make a PV kernel: one that can also
		// start as a PVH guest (PHYS32_ENTRY) boots on a PC, as does
		// one whose notes name no PV entry point, and an empty
		// __xen_guest says nothing.
		{"amd64 Xen notes with a PVH entry point", xenKernel(2, false, append(xenPVNotes, xenNotePhys32Entry)...), Options{}, 0x200020, 0},
		{"amd64 Xen notes with a PVH entry point in a PT_NOTE segment", xenKernel(2, true, append(xenPVNotes, xenNotePhys32Entry)...), Options{}, 0x200020, 0},
		{"amd64 Xen notes with only a PVH entry point", xenKernel(2, false, 6, xenNotePhys32Entry), Options{}, 0x200020, 0},
		{"amd64 Xen notes without an entry point", xenKernel(2, false, 6, 7, 5), Options{}, 0x200020, 0},
		{"i386 Xen notes with a PVH entry point", xenKernel(1, false, 6, xenNoteEntry, xenNotePhys32Entry), Options{}, 0x100020, 0},
		{"entry point notes not named Xen", func() []byte {
			k := stdKernel(2)
			k.Secs = append(k.Secs, elftest.Sec{Name: ".note.other", Type: 7, Data: elftest.Note(false, "Other", xenNoteEntry, make([]byte, 8))})
			return k.Build()
		}(), Options{}, 0x200020, 0},
		// The whole layout and locore's tables fill the memory to its
		// last byte (TestLoadMemoryErrors refuses a page more).
		{"layout and headroom fill memory", std, Options{Headroom: testMem - 0x10425c}, 0x100020, 0},
		{"empty __xen_guest", func() []byte {
			k := stdKernel(1)
			k.Secs = append(k.Secs, elftest.Sec{Name: "__xen_guest", Type: 1})
			return k.Build()
		}(), Options{}, 0x100020, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.opts.Append == "" {
				tc.opts.Append = "console=com"
			}
			mem := newMem()
			p, err := Load(mem, bytes.NewReader(tc.image), int64(len(tc.image)), tc.opts)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			ml := records(t, mem.Bytes(), BootinfoAddr)[BtinfoModuleList]
			if p.EIP != tc.eip || len(ml) < 4 || binary.LittleEndian.Uint32(ml) != uint32(tc.mods) {
				t.Errorf("EIP %#x, module list % x; want EIP %#x and %d modules", p.EIP, ml[:min(len(ml), 4)], tc.eip, tc.mods)
			}
		})
	}
}

// TestLoadKernelName: BTINFO_BOOTPATH's 80 bytes hold a name of 79 and its
// NUL; a longer one is cut to 79, with a warning, so that the kernel still
// finds the NUL.
func TestLoadKernelName(t *testing.T) {
	std := stdKernel(1).Build()
	for _, n := range []int{78, 79, 80, 81} {
		t.Run(fmt.Sprint(n, " bytes"), func(t *testing.T) {
			name := strings.Repeat("k", n)
			mem := newMem()
			p, err := Load(mem, bytes.NewReader(std), int64(len(std)), Options{KernelName: name, Append: "console=com"})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			want := make([]byte, bootpathSize)
			copy(want, name[:min(n, bootpathSize-1)])
			if got := records(t, mem.Bytes(), BootinfoAddr)[BtinfoBootpath]; !bytes.Equal(got, want) {
				t.Errorf("BTINFO_BOOTPATH %q, want %q", got, want)
			}
			cut := slices.ContainsFunc(p.Warnings, func(w string) bool { return strings.Contains(w, "cut to 79 bytes in BTINFO_BOOTPATH") })
			if cut != (n >= bootpathSize) {
				t.Errorf("warnings %q: a warning of the cut is %v, want %v", p.Warnings, cut, n >= bootpathSize)
			}
		})
	}
}

// TestLoadGzippedModules: a gzipped module reaches the guest as its
// decompressed bytes, whatever its type, as /boot's libsa reads it: guest
// memory ends byte for byte as when the plain file is given.
func TestLoadGzippedModules(t *testing.T) {
	k := stdKernel(1).Build()
	kmod := elftest.Kmod(1, 9004)
	fsimg := pattern(70000, 4)
	for _, tc := range []struct {
		name        string
		plain, gzip []Module
	}{
		{"kmod, type from the decompressed content",
			[]Module{{Name: "m.kmod", Data: kmod}},
			[]Module{{Name: "m.kmod", Data: gz(kmod)}}},
		{"fs image",
			[]Module{{Name: "fs.img", Data: fsimg, Type: ModuleFS}},
			[]Module{{Name: "fs.img", Data: gz(fsimg), Type: ModuleFS}}},
		{"concatenated gzip members",
			[]Module{{Name: "fs.img", Data: fsimg, Type: ModuleFS}},
			[]Module{{Name: "fs.img", Data: gz(fsimg, 100, 40000), Type: ModuleFS}}},
		// libsa's cread passes what follows the last member, not
		// being gzip data, on as it stands (cread.c:211-216, 339-358):
		// padding is no error.
		{"gzip padded with zeros",
			[]Module{{Name: "fs.img", Data: append(bytes.Clone(fsimg), make([]byte, 512)...), Type: ModuleFS}},
			[]Module{{Name: "fs.img", Data: append(gz(fsimg), make([]byte, 512)...), Type: ModuleFS}}},
		{"gzip then bytes after a lone 0x1f, which cread consumes",
			[]Module{{Name: "m.kmod", Data: append(bytes.Clone(kmod), "tail"...)}},
			[]Module{{Name: "m.kmod", Data: append(gz(kmod), "\x1ftail"...)}}},
		{"gzipped and plain modules mixed",
			[]Module{{Name: "m.kmod", Data: kmod}, {Name: "fs.img", Data: fsimg, Type: ModuleFS}, {Name: "seed", Data: rndSeed(1), Type: ModuleRnd}},
			[]Module{{Name: "m.kmod", Data: gz(kmod)}, {Name: "fs.img", Data: fsimg, Type: ModuleFS}, {Name: "seed", Data: gz(rndSeed(1)), Type: ModuleRnd}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			load := func(mods []Module) (*guestmem.Memory, bootplan.Plan) {
				mem := newMem()
				p, err := Load(mem, bytes.NewReader(k), int64(len(k)), Options{Append: "console=com", Modules: mods})
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				return mem, p
			}
			gzipped := make([][]byte, len(tc.gzip))
			for i, m := range tc.gzip {
				gzipped[i] = bytes.Clone(m.Data)
			}
			want, wantPlan := load(tc.plain)
			got, gotPlan := load(tc.gzip)
			if i := firstDiff(got.Bytes(), want.Bytes()); i >= 0 {
				t.Errorf("guest memory differs from the plain modules' at %#x", i)
			}
			if fmt.Sprint(gotPlan) != fmt.Sprint(wantPlan) {
				t.Errorf("plan\n%+v\nwant\n%+v", gotPlan, wantPlan)
			}
			for i, m := range tc.gzip {
				if !bytes.Equal(m.Data, gzipped[i]) {
					t.Errorf("Load changed the caller's module %d", i)
				}
			}
		})
	}
}

// firstDiff is the first index where a and b differ, or -1.
func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

func TestModuleTypes(t *testing.T) {
	for in, want := range map[string]ModuleType{"": ModuleAuto, "kmod": ModuleELF, "load": ModuleELF, "fs": ModuleFS,
		"splash": ModuleImage, "image": ModuleImage, "rndseed": ModuleRnd, "RND": ModuleRnd} {
		if got, err := ParseModuleType(in); got != want || err != nil {
			t.Errorf("ParseModuleType(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseModuleType("initrd"); !errors.Is(err, ErrModule) {
		t.Errorf("initrd: %v, want ErrModule", err)
	}
}

// A kernel whose ident note is only reachable through PT_NOTE (no section
// headers) is still NetBSD's.
func TestDetectPTNote(t *testing.T) {
	k := elftest.File{Entry: 0xc0100000, Segs: []elftest.Seg{
		{Vaddr: 0xc0100000, Paddr: 0x100000, Data: pattern(0x100, 1)},
		{Type: 4, Data: elftest.NetBSDNote(false, 1000000000)},
	}}
	b := k.Build()
	id, err := Detect(bytes.NewReader(b), int64(len(b)))
	if err != nil || id.Release() != "10.0" {
		t.Fatalf("Detect = %+v, %v", id, err)
	}
	p, err := Load(newMem(), bytes.NewReader(b), int64(len(b)), Options{Append: "console=com"})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if p.Symbols || len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], "no symbol table") {
		t.Errorf("plan %+v", p)
	}
}

// TestDetectDamaged: a kernel cut short is called that, not "not a
// NetBSD kernel", wherever the end was lost: in the ELF header, the
// section header table, a note section or the program header table its
// PT_NOTE is found through. A program header table that is malformed,
// in a file with no note section, is named, not taken for a missing
// note.
func TestDetectDamaged(t *testing.T) {
	std := stdKernel(1).Build()
	noteSecAfterEnd := bytes.Clone(std)
	// Section 2 is the ident note; sh_offset is at 16 in an ELF32 header.
	shoff := binary.LittleEndian.Uint32(std[32:])
	binary.LittleEndian.PutUint32(noteSecAfterEnd[shoff+2*40+16:], uint32(len(std)+0x100))
	ptNote := elftest.File{Entry: 0xc0100000, Segs: []elftest.Seg{
		{Vaddr: 0xc0100000, Paddr: 0x100000, Data: pattern(0x100, 1)},
		{Type: 4, Data: elftest.NetBSDNote(false, 1000000000)},
	}}.Build()
	phentsize0, phnumHuge := bytes.Clone(ptNote), bytes.Clone(ptNote)
	binary.LittleEndian.PutUint16(phentsize0[42:], 0)
	binary.LittleEndian.PutUint16(phnumHuge[44:], 128)
	for _, tc := range []struct {
		name  string
		image []byte
		is    error
		not   error
		msg   string
	}{
		{"ELF header cut", std[:30], ErrTruncated, ErrNotNetBSD, "ELF header"},
		{"section header table cut", std[:len(std)-20], ErrTruncated, ErrNotNetBSD, "section header table"},
		{"note section past the end", noteSecAfterEnd, ErrTruncated, ErrNotNetBSD, "note section 2"},
		{"PT_NOTE, program header table past the end", phnumHuge, ErrTruncated, ErrNotNetBSD, "program header table"},
		{"PT_NOTE, e_phentsize 0", phentsize0, ErrBadELF, ErrTruncated, "e_phentsize 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, derr := Detect(bytes.NewReader(tc.image), int64(len(tc.image)))
			_, lerr := Load(newMem(), bytes.NewReader(tc.image), int64(len(tc.image)), Options{Append: "console=com"})
			for _, err := range []error{derr, lerr} {
				if !errors.Is(err, tc.is) || errors.Is(err, tc.not) {
					t.Errorf("error %v: want %v, not %v", err, tc.is, tc.not)
				}
				if msg := fmt.Sprint(err); !strings.Contains(msg, tc.msg) || strings.Contains(msg, "without NetBSD's ident note") {
					t.Errorf("error %q, want it to name %q and not a missing note", msg, tc.msg)
				}
			}
		})
	}
}

// TestLoadBootMap: what is loaded must end, page rounded, within what the
// kernel's locore maps at boot (amd64's BOOTMAP_VA_SIZE, past which it
// skips the module list; i386's 1 GiB above KERNBASE), whatever the
// guest's memory: the first module past it is named, or the kernel and
// its symbols.
func TestLoadBootMap(t *testing.T) {
	modAt := func(k []byte) uint64 {
		p, err := Load(newMem(), bytes.NewReader(k), int64(len(k)), Options{Append: "console=com", Modules: []Module{{Name: "m", Data: []byte{1}, Type: ModuleFS}}})
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		i := slices.IndexFunc(p.Regions, func(r bootplan.Region) bool { return strings.HasPrefix(r.What, "module m") })
		return p.Regions[i].Addr
	}
	amd64, i386 := stdKernel(2).Build(), stdKernel(1).Build()
	amdAt, i386At := modAt(amd64), modAt(i386)
	bigBSS := stdKernel(2)
	bigBSS.Segs[1].Memsz = BootMapAMD64
	for _, tc := range []struct {
		name   string
		kernel []byte
		mods   []Module
		mem    uint64
		msg    string // "" when it loads
	}{
		// Memory for it and locore's tables above it, no more.
		{"amd64, a module ending at the limit", amd64, []Module{{Name: "fs.img", Data: make([]byte, BootMapAMD64-amdAt), Type: ModuleFS}}, BootMapAMD64 + amd64TableSize, ""},
		{"amd64, a module one byte past it", amd64, []Module{{Name: "fs.img", Data: make([]byte, BootMapAMD64-amdAt+1), Type: ModuleFS}}, 256 << 20,
			fmt.Sprintf("module 0 (fs.img, %d bytes) at %#x ends at 0x5f63001, past 0x5f63000 (95.4 MiB), the most of memory NetBSD's amd64 locore maps", BootMapAMD64-amdAt+1, amdAt)},
		{"amd64, the second module past it", amd64, []Module{{Name: "a", Data: rndSeed(1), Type: ModuleRnd}, {Name: "b", Data: make([]byte, BootMapAMD64), Type: ModuleFS}}, 256 << 20,
			"module 1 (b, "},
		{"amd64, the kernel's BSS past it", bigBSS.Build(), nil, 256 << 20, "the kernel and its symbols end at"},
		{"i386, a module past 1 GiB less its tables", i386, []Module{{Name: "fs.img", Data: make([]byte, BootMapI386-i386At+1), Type: ModuleFS}}, testMem,
			"past 0x3f9f0000 (1017.9 MiB), the most of memory NetBSD's i386 locore maps"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := guestmem.New(make([]byte, tc.mem))
			_, err := Load(mem, bytes.NewReader(tc.kernel), int64(len(tc.kernel)), Options{Append: "console=com", Modules: tc.mods})
			if tc.msg == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrBootMap) || errors.Is(err, ErrTooLarge) || errors.Is(err, ErrModule) != (tc.mods != nil) || !strings.Contains(fmt.Sprint(err), tc.msg) {
				t.Errorf("error %v, want ErrBootMap (with ErrModule for a module) saying %q", err, tc.msg)
			}
		})
	}
}

// TestLoadSymtabLink: a symbol table whose sh_link names no string table
// is not passed (the kernel would take that section, or one past the
// table, as its strings): its copied sh_offset is 0, which the kernel
// skips, and the notice is the multiboot loader's.
func TestLoadSymtabLink(t *testing.T) {
	for _, tc := range []struct {
		name   string
		link   uint32
		notice string
	}{
		{"string table", 6, ""},
		{"past the table", 77, "no symbols: section 5 (SHT_SYMTAB) links to section 77, not a string table"},
		{"section 0", 0, "no symbols: section 5 (SHT_SYMTAB) links to section 0, not a string table"},
		{"a note", 2, "no symbols: section 5 (SHT_SYMTAB) links to section 2, not a string table"},
		// The 9 sections end with the names, a string table: linked
		// to, they are the symbols' strings. Section 9 is past them.
		{"the last section", 8, ""},
		{"e_shnum", 9, "no symbols: section 5 (SHT_SYMTAB) links to section 9, not a string table"},
		{"e_shnum + 1", 10, "no symbols: section 5 (SHT_SYMTAB) links to section 10, not a string table"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := stdKernel(1)
			f.Secs[4].Link = tc.link
			b := f.Build()
			mem := newMem()
			p, err := Load(mem, bytes.NewReader(b), int64(len(b)), Options{Append: "console=com"})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			i := slices.IndexFunc(p.Regions, func(r bootplan.Region) bool { return strings.HasPrefix(r.What, "symbols:") })
			if i < 0 {
				t.Fatalf("no symbol area among %v", p.Regions)
			}
			// Section 5's sh_offset in the header table after the
			// 52-byte ELF header copy.
			symOff := binary.LittleEndian.Uint32(mem.Bytes()[p.Regions[i].Addr+52+5*40+16:])
			if tc.notice == "" {
				if !p.Symbols || symOff == 0 || slices.ContainsFunc(p.Notices, func(n string) bool { return strings.Contains(n, "symbol") }) {
					t.Errorf("symbols %v, sh_offset %#x, notices %q: want the symbol table passed", p.Symbols, symOff, p.Notices)
				}
				return
			}
			if p.Symbols || symOff != 0 || !slices.Contains(p.Notices, tc.notice) {
				t.Errorf("symbols %v, sh_offset %#x, notices %q; want none passed, sh_offset 0 and %q", p.Symbols, symOff, p.Notices, tc.notice)
			}
		})
	}
}

// TestLoadAtVaddr: a segment whose p_paddr is not p_vaddr & EntryMask is
// loaded where NetBSD's /boot loads it, at p_vaddr & EntryMask, so that
// e_entry & EntryMask is the instruction e_entry names; p_paddr is ignored,
// with a warning that names the segment.
func TestLoadAtVaddr(t *testing.T) {
	text := pattern(0x2000, 9)
	copy(text[0x1000:], "the entry point!") // pattern repeats every 256 bytes
	k := elftest.File{Entry: 0xc0101000, Segs: []elftest.Seg{
		{Flags: 5, Vaddr: 0xc0100000, Paddr: 0x100800, Data: text},
	}, Secs: []elftest.Sec{
		{Name: ".note.netbsd.ident", Type: 7, Data: elftest.NetBSDNote(false, 901000000)},
	}}
	b := k.Build()
	mem := newMem()
	p, err := Load(mem, bytes.NewReader(b), int64(len(b)), Options{Append: "console=com"})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	at := mem.Bytes()[p.EIP : p.EIP+16]
	if p.EIP != 0x101000 || !bytes.Equal(at, text[0x1000:0x1010]) || p.KernelStart != 0x100000 || p.KernelEnd != 0x102000 {
		t.Errorf("EIP %#x, kernel [%#x, %#x), at EIP % x; want 0x101000 in [0x100000, 0x102000) holding e_entry's bytes % x",
			p.EIP, p.KernelStart, p.KernelEnd, at, text[0x1000:0x1010])
	}
	if !slices.ContainsFunc(p.Warnings, func(w string) bool {
		return strings.Contains(w, "segment 0: p_paddr 0x100800 ignored: loaded at p_vaddr 0xc0100000 & 0x7ffffff = 0x100000")
	}) {
		t.Errorf("warnings %q, want one naming segment 0's p_paddr", p.Warnings)
	}
}

// TestLoadMemoryErrors: what does not fit in guest memory is named as it
// is: the whole layout (kernel, symbols, modules and the headroom above
// them) with the memory it needs, not the one item that crosses the end;
// a segment too large for any memory is the kernel file's fault.
func TestLoadMemoryErrors(t *testing.T) {
	// The kernel ends at 0x7fff00, so its symbols cross 8 MiB, as
	// netbsd 5.99's do; the module and the headroom go past that.
	big := stdKernel(1)
	big.Segs[1].Memsz = 0x7fff00 - 0x101000
	bigImg := big.Build()
	absurd := stdKernel(1)
	absurd.Segs[1].Memsz = 0xffffffff
	wraps := stdKernel(2)
	// Loaded at p_vaddr & EntryMask (0x201000), not at p_paddr (where it
	// would not wrap), it ends past 2^64.
	wraps.Segs[1].Paddr, wraps.Segs[1].Memsz = 0x1000, 0xfffffffffff00000
	// endsAt is stdKernel's i386 image with its data segment ending at
	// end.
	endsAt := func(end uint64) []byte {
		k := stdKernel(1)
		k.Segs[1].Memsz = end - 0x101000
		return k.Build()
	}
	fsimg := make([]byte, 1<<20)
	for _, tc := range []struct {
		name     string
		image    []byte
		memSize  int64 // 4 GiB and more are past a 32-bit int
		opts     Options
		is, isnt error
		need     uint64 // MemoryError.Need, when one is wanted
		msg      string
		not      string
	}{
		{"symbols cross the end, a module after", bigImg, 8 << 20,
			Options{Headroom: 1 << 20, Modules: []Module{{Name: "mr.img", Data: fsimg, Type: ModuleFS}}}, ErrTooLarge, ErrBadELF, 0xa01000,
			"guest memory too small: the kernel's layout (the kernel [0x100000, 0x7fff00), its symbols [0x7fff00, 0x80015c), module 0 (mr.img, 1048576 bytes) [0x801000, 0x901000), then 1024 KiB free for the kernel's bootstrap page tables) needs 11 MiB of guest memory, have 8 MiB",
			"symbol area"},
		{"the headroom alone", stdKernel(1).Build(), testMem, Options{Headroom: testMem}, ErrTooLarge, ErrBadELF, 0x10425c + testMem,
			"the kernel's layout (the kernel [0x100000, 0x104000), its symbols [0x104000, 0x10425c), then 16384 KiB free for the kernel's bootstrap page tables) needs 18 MiB", ""},
		// Without headroom asked for, locore's tables are still above
		// the symbols: 0x1c000 bytes (TestBootTables) from 0x801000.
		{"no headroom", bigImg, 8 << 20, Options{}, ErrTooLarge, ErrBadELF, 0x81d000,
			"the kernel's layout (the kernel [0x100000, 0x7fff00), its symbols [0x7fff00, 0x80015c), then 115 KiB free for the kernel's bootstrap page tables) needs 9 MiB", ""},
		// TestLoadAcceptsEdges loads a page less.
		{"the headroom a page over", stdKernel(1).Build(), testMem, Options{Headroom: testMem - 0x10425c + 0x1000}, ErrTooLarge, ErrBadELF, testMem + 0x1000,
			"then 15347 KiB free for the kernel's bootstrap page tables) needs 17 MiB of guest memory, have 16 MiB", ""},
		// A segment may end at 4 GiB; its symbols after it are then past
		// what locore maps.
		{"segment ending at 4 GiB", endsAt(1 << 32), testMem, Options{}, ErrBootMap, ErrBadELF, 0,
			"the kernel and its symbols end at 0x10000025c", ""},
		{"segment ending a byte past 4 GiB", endsAt(1<<32 + 1), testMem, Options{}, ErrBadELF, ErrTooLarge, 0,
			"segment 1: p_memsz 0xffeff001 at 0x101000 ends at 0x100000001, past the 4 GiB a 32-bit kernel addresses", ""},
		{"absurd p_memsz", absurd.Build(), testMem, Options{Headroom: 1 << 20}, ErrBadELF, ErrTooLarge, 0,
			"segment 1: p_memsz 0xffffffff at 0x101000 ends at 0x100100fff, past the 4 GiB a 32-bit kernel addresses", "another machine"},
		{"p_memsz wrapping", wraps.Build(), testMem, Options{Headroom: 1 << 20}, ErrBadELF, ErrTooLarge, 0,
			"segment 1: p_memsz 0xfffffffffff00000 at 0x201000 ends past the 4 GiB a 32-bit kernel addresses", "another machine"},
		// The kernel is entered in 32-bit mode, amd64's too: memory a
		// page past the 4 GiB that addresses is refused, whatever the
		// kernel, before the file is read.
		{"guest memory a page past 4 GiB", stdKernel(1).Build(), 1<<32 + 4096, Options{}, ErrAddressSpace, ErrTooLarge, 0,
			"a 32-bit entry addresses at most 4096 MiB", ""},
		{"amd64, guest memory a page past 4 GiB", stdKernel(2).Build(), 1<<32 + 4096, Options{}, ErrAddressSpace, ErrTooLarge, 0,
			"a 32-bit entry addresses at most 4096 MiB", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mem *guestmem.Memory
			if int64(int(tc.memSize)) != tc.memSize {
				t.Skipf("guest memory of %d bytes cannot be mapped where int is 32 bits", tc.memSize)
			}
			if tc.memSize > 1<<32 {
				mem = sparseMem(t, int(tc.memSize))
			} else {
				mem = guestmem.New(make([]byte, tc.memSize))
			}
			_, err := Load(mem, bytes.NewReader(tc.image), int64(len(tc.image)), tc.opts)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if !errors.Is(err, tc.is) || errors.Is(err, tc.isnt) {
				t.Errorf("error %q: want %v, not %v", err, tc.is, tc.isnt)
			}
			if !strings.Contains(err.Error(), tc.msg) || (tc.not != "" && strings.Contains(err.Error(), tc.not)) {
				t.Errorf("error %q\nwant it to say %q, and not %q", err, tc.msg, tc.not)
			}
			var me *MemoryError
			if errors.As(err, &me) != (tc.need != 0) || (me != nil && me.Need != tc.need) {
				t.Errorf("MemoryError %+v, want Need %#x (0: none)", me, tc.need)
			}
		})
	}
}

// TestBootTables: the room locore takes above what was loaded, worked out
// by hand from sys/arch/i386/i386/locore.S:638-666 (PAE, UPAGES 3: pages
// of 8 KiB, 4 + 3 + 1 of them besides nkptp[1]; nkptp[1] covers the
// tables' end in 2 MiB page tables, plus one) and amd64's TABLESIZE.
func TestBootTables(t *testing.T) {
	for _, tc := range []struct {
		name  string
		amd64 bool
		end   uint64
		want  uint64
	}{
		// esi 0x800000: nkptp 4 + 1 = 5, 13 pages reach 0x81a000, which
		// needs 5 + 1 = 6: 14 pages, 0x1c000.
		{"8 MiB", false, 0x800000, 0x1c000},
		// Not page aligned: rounded up first, the rounding counted.
		{"8 MiB less 0x100", false, 0x7fff00, 0x100 + 0x1c000},
		// 310 MiB: 155 + 1 = 156 page tables, 164 pages reach 0x13748000,
		// which needs 156 + 1 = 157: 165 pages, 0x14a000, past 1 MiB.
		{"310 MiB", false, 310 << 20, 0x14a000},
		{"amd64", true, 310 << 20, amd64TableSize},
	} {
		k := &kernel{class64: tc.amd64}
		if got := k.bootTables(tc.end); got != tc.want {
			t.Errorf("%s: bootTables(%#x) = %#x, want %#x", tc.name, tc.end, got, tc.want)
		}
	}
}
