package multiboot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
)

// wantPlan is what a successful load must return, Warnings aside.
type wantPlan struct {
	entry, kstart, kend, end uint32
	format                   string
	symbols                  bool
}

func TestLoadPlaces(t *testing.T) {
	sym, str := testSymtab()
	symAt := uint32(kp + 0x4000)
	strAt := symAt + uint32(len(sym))

	elfKludge := stdELF()
	// The header starts the text segment, so header_addr == load_addr maps
	// load_addr to the segment's file offset: load 0x200 bytes, BSS up to
	// 0x101000, entry 0x40 in.
	copy(elfKludge.segs[0].data, mbHeader(FlagMemoryInfo|FlagAOutKludge, kp, kp, kp+0x200, kp+0x1000, kp+0x40))

	stripped := stdELF()
	stripped.symtab, stripped.strtab = nil, nil

	video := stdELF()
	video.symtab = nil
	copy(video.segs[0].data, mbHeader(FlagPageAlign|FlagMemoryInfo|FlagVideoMode, 0, 0, 0, 0, 0, 0, 1024, 768, 32))

	phys := stdELF()
	phys.segs[0].vaddr, phys.segs[1].vaddr, phys.entry = kp, kp+0x1000, kp+0x30

	// entryAt is stdELF with e_entry at off from its link address: the
	// segments are [0, 0x200) and [0x1000, 0x4000) from it.
	entryAt := func(off uint32) []byte {
		e := stdELF()
		e.entry = kv + off
		return e.build()
	}
	elfAt := func(off uint32) wantPlan {
		return wantPlan{entry: kp + off, kstart: kp, kend: kp + 0x4000, end: strAt + uint32(len(str)), format: "elf", symbols: true}
	}
	aoutAt := func(entry uint32) wantPlan {
		return wantPlan{entry: entry, kstart: 0x200000, kend: 0x201800, end: 0x201800, format: "aout-kludge"}
	}
	room := lowAreaRoom(t)

	tests := []struct {
		name  string
		image []byte
		opts  Options
		want  wantPlan
		warn  string // the one warning expected, if any
		check func(t *testing.T, mem []byte, p Plan)
	}{
		{
			name:  "elf virtual entry, bss, symbols",
			image: stdELF().build(),
			opts:  Options{KernelName: "netbsd", Append: "console=com root=ld0a"},
			want:  wantPlan{entry: kp + 0x20, kstart: kp, kend: kp + 0x4000, end: strAt + uint32(len(str)), format: "elf", symbols: true},
			check: func(t *testing.T, mem []byte, p Plan) {
				e := stdELF()
				expectBytes(t, mem, kp, e.segs[0].data, "text segment")
				expectBytes(t, mem, kp+0x200, bytes.Repeat([]byte{fill}, 0xe00), "gap between segments (untouched)")
				expectBytes(t, mem, kp+0x1000, e.segs[1].data, "data segment")
				expectBytes(t, mem, kp+0x1080, make([]byte, 0x2f80), "BSS (zeroed)")
				expectBytes(t, mem, uint64(symAt), sym, "symbol table")
				expectBytes(t, mem, uint64(strAt), str, "string table")
				expectBytes(t, mem, uint64(p.End), []byte{fill}, "first byte after the string table")
			},
		},
		{
			name:  "elf without section headers",
			image: stripped.build(),
			opts:  Options{KernelName: "netbsd"},
			want:  wantPlan{entry: kp + 0x20, kstart: kp, kend: kp + 0x4000, end: kp + 0x4000, format: "elf"},
		},
		{
			name:  "elf linked at its physical address",
			image: phys.build(),
			want:  wantPlan{entry: kp + 0x30, kstart: kp, kend: kp + 0x4000, end: strAt + uint32(len(str)), format: "elf", symbols: true},
		},
		{
			name:  "a.out kludge",
			image: aoutImage(),
			want:  wantPlan{entry: 0x200100, kstart: 0x200000, kend: 0x201800, end: 0x201800, format: "aout-kludge"},
			check: func(t *testing.T, mem []byte, p Plan) {
				expectBytes(t, mem, 0x200000, aoutImage(), "a.out image")
				expectBytes(t, mem, 0x200800, make([]byte, 0x1000), "a.out BSS (zeroed)")
				expectBytes(t, mem, 0x1fffff, []byte{fill}, "byte before the image")
			},
		},
		{
			name:  "a.out kludge wins over ELF program headers",
			image: elfKludge.build(),
			want:  wantPlan{entry: kp + 0x40, kstart: kp, kend: kp + 0x1000, end: kp + 0x1000, format: "aout-kludge"},
			check: func(t *testing.T, mem []byte, p Plan) {
				expectBytes(t, mem, kp, elfKludge.segs[0].data, "text loaded through the kludge")
				expectBytes(t, mem, kp+0x200, make([]byte, 0xe00), "kludge BSS")
				expectBytes(t, mem, kp+0x1000, []byte{fill, fill}, "ELF data segment not loaded")
			},
		},
		{
			// The multiboot spec's example kernel asks for 1024x768x32.
			name:  "video mode accepted with a warning",
			image: video.build(),
			want:  wantPlan{entry: kp + 0x20, kstart: kp, kend: kp + 0x4000, end: kp + 0x4000, format: "elf"},
			warn:  "1024x768x32 video mode",
		},
		// An entry point on a segment's first or last byte (TestLoadErrors
		// refuses the bytes either side).
		{name: "elf entry at the text segment's first byte", image: entryAt(0), want: elfAt(0)},
		{name: "elf entry at the text segment's last byte", image: entryAt(0x1ff), want: elfAt(0x1ff)},
		{name: "elf entry at the data segment's first byte", image: entryAt(0x1000), want: elfAt(0x1000)},
		{name: "elf entry at the BSS's last byte", image: entryAt(0x3fff), want: elfAt(0x3fff)},
		{name: "a.out entry at load_addr", image: aoutWith(func(w []uint32) { w[4] = 0x200000 }), want: aoutAt(0x200000)},
		{name: "a.out entry at the byte before bss_end_addr", image: aoutWith(func(w []uint32) { w[4] = 0x2017ff }), want: aoutAt(0x2017ff)},
		{
			// The loop below checks the window's end is untouched.
			name:  "loader data ending at 0x9F000",
			image: stdELF().build(),
			opts:  Options{Modules: []Module{{Name: "m", Args: strings.Repeat("a", room)}}},
			// The empty module at the page after the symbols.
			want: wantPlan{entry: kp + 0x20, kstart: kp, kend: kp + 0x4000, end: kp + 0x5000, format: "elf", symbols: true},
			check: func(t *testing.T, mem []byte, p Plan) {
				expectBytes(t, mem, LowAreaEnd-2, []byte{'a', 0}, "module 0 command line's end")
			},
		},
		{
			name:  "command line of exactly 254 bytes",
			image: stripped.build(),
			opts:  Options{KernelName: "netbsd", Append: strings.Repeat("x", 254-7)},
			want:  wantPlan{entry: kp + 0x20, kstart: kp, kend: kp + 0x4000, end: kp + 0x4000, format: "elf"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mem := newMem(testMem)
			p, err := Load(mem, bytes.NewReader(tc.image), int64(len(tc.image)), tc.opts)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			got := wantPlan{p.Entry, p.KernelStart, p.KernelEnd, p.End, p.Format, p.Symbols}
			if got != tc.want {
				t.Fatalf("plan = %+v, want %+v", got, tc.want)
			}
			if p.EAX != 0x2BADB002 || p.EBX != LowAreaStart {
				t.Errorf("EAX, EBX = %#x, %#x; want 0x2badb002, %#x", p.EAX, p.EBX, LowAreaStart)
			}
			if tc.warn == "" && len(p.Warnings) != 0 || tc.warn != "" && (len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], tc.warn)) {
				t.Errorf("warnings %q, want %q", p.Warnings, tc.warn)
			}
			b := mem.Bytes()
			expectBytes(t, b, 0, bytes.Repeat([]byte{fill}, LowAreaStart), "memory below the loader's window")
			expectBytes(t, b, LowAreaEnd, bytes.Repeat([]byte{fill}, lowReserved-LowAreaEnd), "memory from the window's end to 1 MiB")
			if tc.check != nil {
				tc.check(t, b, p)
			}
		})
	}
}

// expectBytes fails unless mem holds want at addr.
func expectBytes(t *testing.T, mem []byte, addr uint64, want []byte, what string) {
	t.Helper()
	got := mem[addr : addr+uint64(len(want))]
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(want) && got[i] == want[i] {
			i++
		}
		t.Errorf("%s at %#x: byte %#x is %#x, want %#x", what, addr, addr+uint64(i), got[i], want[i])
	}
}

func TestLoadErrors(t *testing.T) {
	std := stdELF().build()

	far := append(make([]byte, 0x2008), mbHeader(FlagMemoryInfo)...)
	badSum := mbHeader(FlagMemoryInfo)
	badSum[8]++
	withHeader := func(h []byte) []byte {
		e := stdELF()
		copy(e.segs[0].data, h)
		return e.build()
	}
	modify := func(f func(*tELF)) []byte {
		e := stdELF()
		f(&e)
		return e.build()
	}
	room := lowAreaRoom(t)
	tests := []struct {
		name  string
		image []byte
		opts  Options
		is    []error
		msg   []string
		need  uint64 // MemoryError.Need when non-zero
		// memSize is the guest memory's size when not testMem: such
		// memory is mapped on demand (sparseMem). An int64: 4 GiB and
		// more are past a 32-bit int.
		memSize int64
	}{
		{name: "empty file", image: nil, is: []error{ErrNotMultiboot}, msg: []string{"the file is empty"}},
		{name: "short file", image: make([]byte, 100), is: []error{ErrNotMultiboot}, msg: []string{"in the file's 100 bytes"}},
		{name: "no header", image: make([]byte, 10000), is: []error{ErrNotMultiboot}, msg: []string{"0x1badb002", "8192"}},
		{name: "header past 8 KiB", image: far, is: []error{ErrNotMultiboot, ErrHeaderTooFar}, msg: []string{"0x2008"}},
		{name: "header straddling 8 KiB", image: append(make([]byte, 8184), mbHeader(FlagMemoryInfo)...), is: []error{ErrHeaderTooFar}, msg: []string{"0x1ff8"}},
		{name: "unaligned header", image: append(make([]byte, 0x102), mbHeader(FlagMemoryInfo)...), is: []error{ErrNotMultiboot}},
		{name: "bad checksum", image: withHeader(badSum), is: []error{ErrNotMultiboot, ErrBadChecksum}, msg: []string{"offset 0x80"}},
		{name: "unknown required flags", image: withHeader(mbHeader(FlagMemoryInfo | 1<<5 | 1<<15)), is: []error{ErrUnsupportedFlags}, msg: []string{"bit(s) 5, 15", "0x8022"}},
		{name: "not ELF without kludge", image: append(mbHeader(FlagMemoryInfo), make([]byte, 100)...), is: []error{ErrNotELF}, msg: []string{"flag 16"}},
		{name: "ELF64", image: modify(func(e *tELF) { e.class = 2 }), is: []error{ErrUnsupportedELF}, msg: []string{"an ELF64 file for Intel 80386 (i386), e_machine 3"}},
		{name: "ELF64 x86-64", image: modify(func(e *tELF) { e.class, e.machine = 2, 62 }), is: []error{ErrUnsupportedELF}, msg: []string{"an ELF64 file for AMD x86-64 (amd64), e_machine 62; a multiboot v1 kernel must be ELF32 i386"}},
		{name: "x86-64 machine", image: modify(func(e *tELF) { e.machine = 62 }), is: []error{ErrUnsupportedELF}, msg: []string{"an ELF32 file for AMD x86-64 (amd64), e_machine 62, want Intel 80386"}},
		{name: "relocatable object", image: modify(func(e *tELF) { e.etype = 1 }), is: []error{ErrUnsupportedELF}, msg: []string{"e_type 1"}},
		{name: "overlapping segments", image: modify(func(e *tELF) { e.segs[1].paddr = kp + 0x100 }),
			is: []error{ErrOverlap}, msg: []string{"segment 0 [0x100000, 0x100200)", "segment 1 [0x100100, 0x103100)"}},
		{name: "segment beyond memory", image: modify(func(e *tELF) { e.segs[1].paddr = 0x3ff000 }),
			is: []error{ErrTooLarge}, msg: []string{"the kernel's layout (the kernel [0x100000, 0x402000), its symbol and string tables [0x402000, 0x40203b)) needs 5 MiB", "needs 5 MiB of guest memory, have 4 MiB", "have 4 MiB"}, need: 0x402000 + 0x30 + 11},
		// The symbols cross the end; the module after them is what
		// needs the memory, with the headroom: the layout is named.
		{name: "symbols crossing the end, a module after", image: modify(func(e *tELF) { e.segs[1].paddr = 0x3fd000 }),
			opts: Options{Headroom: mib, Modules: []Module{{Name: "mr", Data: make([]byte, mib)}}},
			is:   []error{ErrTooLarge}, msg: []string{"the kernel's layout (the kernel [0x100000, 0x400000), its symbol and string tables [0x400000, 0x40003b), module 0 (mr, 1048576 bytes) [0x401000, 0x501000), then 1024 KiB free for the kernel's bootstrap page tables) needs 7 MiB"},
			need: 0x601000},
		{name: "segment linked above 4 GiB", image: modify(func(e *tELF) { e.segs[1].paddr, e.segs[1].memsz = 0xfffff000, 0x2000 }),
			is: []error{ErrTooLarge}, msg: []string{"4 GiB"}},
		{name: "segment in low memory", image: modify(func(e *tELF) { e.segs[1].paddr = 0x9000 }), is: []error{ErrLowMemory}, msg: []string{"segment 1 [0x9000, 0xc000)"}},
		{name: "filesz above memsz", image: modify(func(e *tELF) { e.segs[1].memsz = 0x10 }), is: []error{ErrBadELF}, msg: []string{"segment 1", "p_filesz 0x80 > p_memsz 0x10"}},
		{name: "entry outside segments", image: modify(func(e *tELF) { e.entry = 0xc0900000 }), is: []error{ErrBadELF}, msg: []string{"0xc0900000"}},
		// Past the segments [kv, kv+0x200) and [kv+0x1000, kv+0x4000), by
		// one byte (TestLoadPlaces loads their first and last bytes).
		{name: "entry at the text segment's end", image: modify(func(e *tELF) { e.entry = kv + 0x200 }), is: []error{ErrBadELF}, msg: []string{"e_entry 0xc0100200 lies in no PT_LOAD"}},
		{name: "entry a byte before the data segment", image: modify(func(e *tELF) { e.entry = kv + 0xfff }), is: []error{ErrBadELF}, msg: []string{"e_entry 0xc0100fff lies in no PT_LOAD"}},
		{name: "entry at the BSS's end", image: modify(func(e *tELF) { e.entry = kv + 0x4000 }), is: []error{ErrBadELF}, msg: []string{"e_entry 0xc0104000 lies in no PT_LOAD"}},
		{name: "entry a byte before the kernel", image: modify(func(e *tELF) { e.entry = kv - 1 }), is: []error{ErrBadELF}, msg: []string{"e_entry 0xc00fffff lies in no PT_LOAD"}},
		{name: "no loadable segment", image: modify(func(e *tELF) { e.segs[0].typ, e.segs[1].typ = 4, 4 }), is: []error{ErrBadELF}, msg: []string{"no PT_LOAD"}},
		{name: "truncated segment", image: std[:0x120], is: []error{ErrTruncated}, msg: []string{"segment 0"}},
		{name: "truncated section headers", image: std[:len(std)-1], is: []error{ErrTruncated}, msg: []string{"section header table"}},
		{name: "truncated program headers", image: phoffAt(std, uint32(len(std)-16)), is: []error{ErrTruncated}, msg: []string{"program header table"}},
		// An ELF32 section header is 40 bytes (Elf32_Shdr): the table
		// handed to the kernel is read in entries of that size.
		{name: "section header entries of 48 bytes", image: shentsizeAt(std, 48), is: []error{ErrBadELF}, msg: []string{"e_shentsize 48, want 40"}},
		{name: "section header entries of 32 bytes", image: shentsizeAt(std, 32), is: []error{ErrBadELF}, msg: []string{"e_shentsize 32, want 40"}},
		{name: "section header entries of 0 bytes", image: shentsizeAt(std, 0), is: []error{ErrBadELF}, msg: []string{"e_shentsize 0, want 40"}},
		// A 32-bit guest addresses 4 GiB: memory a page past that is
		// refused before anything is read or written.
		{name: "guest memory a page past 4 GiB", image: std, memSize: 1<<32 + 4096, is: []error{ErrAddressSpace}, msg: []string{"a 32-bit guest addresses at most 4096 MiB"}},
		{name: "command line of 255 bytes", image: std, opts: Options{KernelName: "netbsd", Append: strings.Repeat("x", 255-7)},
			is: []error{ErrCmdline}, msg: []string{"255 bytes", "limit is 254"}},
		{name: "kernel name with a space", image: std, opts: Options{KernelName: "my kernel"}, is: []error{ErrCmdline}, msg: []string{`"my kernel"`}},
		{name: "NUL in append", image: std, opts: Options{Append: "a\x00b"}, is: []error{ErrCmdline}, msg: []string{"NUL"}},
		{name: "NetBSD: root device without a partition", image: std, opts: Options{Append: "console=com root=ld0", NetBSD: true},
			is: []error{ErrAppend}, msg: []string{`root="ld0"`, "such as ld0a"}},
		{name: "NetBSD: root device with two unit digits", image: std, opts: Options{Append: "root=ld10a", NetBSD: true},
			is: []error{ErrAppend}, msg: []string{`root="ld10a"`}},
		{name: "NetBSD: wedge unit past 9", image: std, opts: Options{Append: "console=com root=dk10", NetBSD: true},
			is: []error{ErrAppend}, msg: []string{`root="dk10"`, "(dk1)"}},
		{name: "NetBSD: partition past p", image: std, opts: Options{Append: "root=ld0z", NetBSD: true},
			is: []error{ErrAppend}, msg: []string{`root="ld0z"`}},
		{name: "NetBSD: no driver name", image: std, opts: Options{Append: "root=0a", NetBSD: true},
			is: []error{ErrAppend}, msg: []string{`root="0a"`}},
		{name: "NetBSD: unknown boot flag", image: std, opts: Options{Append: "root=ld0a -k", NetBSD: true},
			is: []error{ErrAppend}, msg: []string{`"-k"`}},
		// setup_console passes only com and pc on; the kernel then
		// stays on its display and a smolvmm guest prints nothing.
		{name: "NetBSD: console the kernel ignores", image: std, opts: Options{Append: "console=ttyS0 root=ld0a", NetBSD: true},
			is: []error{ErrAppend}, msg: []string{`console="ttyS0"`, "console=com", "console=pc"}},
		// The kernel reads 01770 as decimal 1770 (0x6ea): no UART there.
		{name: "NetBSD: console_addr read as decimal", image: std, opts: Options{Append: "console=com console_addr=01770 root=ld0a", NetBSD: true},
			is: []error{ErrAppend}, msg: []string{`console_addr="01770" is port 0x6ea`, "only serial port is at 0x3f8"}},
		{name: "NetBSD: console on a port with no UART", image: std, opts: Options{Append: "console=com console_addr=0x2f8 root=ld0a", NetBSD: true},
			is: []error{ErrAppend}, msg: []string{`console_addr="0x2f8" is port 0x2f8`}},
		// The kernel keeps 9 characters of it: 0x000003f.
		{name: "NetBSD: console_addr cut short by the kernel", image: std, opts: Options{Append: "console=com console_addr=0x000003f8 root=ld0a", NetBSD: true},
			is: []error{ErrAppend}, msg: []string{`console_addr="0x000003f8"`, "at most 9 characters"}},
		{name: "NetBSD: console_speed not decimal", image: std, opts: Options{Append: "console=com console_speed=fast root=ld0a", NetBSD: true},
			is: []error{ErrAppend}, msg: []string{`console_speed="fast"`, "decimal digits"}},
		{name: "NetBSD: console_speed the 16550 cannot make", image: std, opts: Options{Append: "console=com console_speed=230400 root=ld0a", NetBSD: true},
			is: []error{ErrAppend}, msg: []string{`console_speed="230400"`, "within 3%"}},
		// NetBSD's multiboot entry (9.1 arch/i386/i386/multiboot.c)
		// never reads the module list: the kernel would not see them.
		{name: "NetBSD: modules", image: std, opts: Options{Append: "console=com root=ld0a", NetBSD: true,
			Modules: []Module{{Name: "miniroot.kmod", Data: []byte("\x7fELF"), Args: "kmod"}, {Name: "fs.img", Data: []byte("ffs")}}},
			is: []error{ErrNetBSDModules}, msg: []string{"2 boot modules (miniroot.kmod, fs.img)", "never reads"}},
		{name: "NUL in module args", image: std, opts: Options{Modules: []Module{{Name: "m", Args: "\x00"}}}, is: []error{ErrCmdline}, msg: []string{"module 0"}},
		{name: "module beyond memory", image: std, opts: Options{Modules: []Module{{Name: "big", Data: make([]byte, 3*mib)}}},
			is: []error{ErrTooLarge}, msg: []string{"module 0 (big"}, need: kp + 0x5000 + 3*mib},
		{name: "loader data past 0x9F000", image: std, opts: Options{Modules: []Module{{Name: "m", Args: strings.Repeat("a", 0x9F000)}}},
			is: []error{ErrLowAreaFull}, msg: []string{"module 0 command line"}},
		// One byte more than TestLoadPlaces loads.
		{name: "loader data ending a byte past 0x9F000", image: std, opts: Options{Modules: []Module{{Name: "m", Args: strings.Repeat("a", room+1)}}},
			is: []error{ErrLowAreaFull}, msg: []string{"module 0 command line", "would end at 0x9f001, past 0x9f000"}},
		{name: "a.out load_addr above header_addr", image: aoutWith(func(w []uint32) { w[1] = 0x200100 }), is: []error{ErrBadAOut}, msg: []string{"load_addr 0x200100 above header_addr"}},
		// The header is at file offset 0x40: header_addr - load_addr
		// past that puts load_addr before the file's first byte.
		{name: "a.out load_addr before the file", image: aoutWith(func(w []uint32) { w[0] = 0x200080 }), is: []error{ErrBadAOut},
			msg: []string{"header_addr 0x200080 - load_addr 0x200000 = 0x80, but the header is at file offset 0x40: load_addr would be before the file's start"}},
		{name: "a.out load_addr a byte before the file", image: aoutWith(func(w []uint32) { w[0] = 0x200041 }), is: []error{ErrBadAOut},
			msg: []string{"= 0x41, but the header is at file offset 0x40: load_addr would be before the file's start"}},
		{name: "a.out load_end below load_addr", image: aoutWith(func(w []uint32) { w[2] = 0x1ff000 }), is: []error{ErrBadAOut},
			msg: []string{"load_end_addr 0x1ff000 below load_addr 0x200000"}},
		{name: "a.out load_end a byte below load_addr", image: aoutWith(func(w []uint32) { w[2] = 0x1fffff }), is: []error{ErrBadAOut},
			msg: []string{"load_end_addr 0x1fffff below load_addr 0x200000"}},
		{name: "a.out load_end past the file", image: aoutWith(func(w []uint32) { w[2] = 0x200900 }), is: []error{ErrTruncated}},
		{name: "a.out bss_end below load_end", image: aoutWith(func(w []uint32) { w[3] = 0x200700 }), is: []error{ErrBadAOut}},
		{name: "a.out entry outside", image: aoutWith(func(w []uint32) { w[4] = 0x300000 }), is: []error{ErrBadAOut}, msg: []string{"entry_addr 0x300000"}},
		{name: "a.out entry at bss_end_addr", image: aoutWith(func(w []uint32) { w[4] = 0x201800 }), is: []error{ErrBadAOut}, msg: []string{"entry_addr 0x201800 outside the image [0x200000, 0x201800)"}},
		{name: "a.out entry a byte before load_addr", image: aoutWith(func(w []uint32) { w[4] = 0x1fffff }), is: []error{ErrBadAOut}, msg: []string{"entry_addr 0x1fffff outside the image [0x200000, 0x201800)"}},
		{name: "a.out in low memory", image: aoutWith(func(w []uint32) { w[0], w[1], w[2], w[3], w[4] = 0x8040, 0x8000, 0, 0, 0x8100 }), is: []error{ErrLowMemory}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mem := newMem(testMem)
			if tc.memSize != 0 {
				if int64(int(tc.memSize)) != tc.memSize {
					t.Skipf("guest memory of %d bytes cannot be mapped where int is 32 bits", tc.memSize)
				}
				mem = sparseMem(t, int(tc.memSize))
			}
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
			// Facts only: vmm's hint and smolvmm say what to pass.
			if strings.Contains(err.Error(), "; pass") || strings.Contains(err.Error(), "give the guest") {
				t.Errorf("error %q advises", err)
			}
			var me *MemoryError
			if errors.As(err, &me) && tc.need != 0 && me.Need != tc.need {
				t.Errorf("MemoryError.Need = %#x, want %#x", me.Need, tc.need)
			}
			if i := changed(mem.Bytes()[:testMem]); i >= 0 {
				t.Errorf("a refused kernel changed guest memory at %#x", i)
			}
		})
	}
}

// lowAreaRoom is how many bytes of arguments module "m" takes for its
// command line ("m ", the arguments and a NUL) to end exactly at
// LowAreaEnd when the standard image is loaded with that module alone:
// the command line goes last, unaligned, where a short one put it.
func lowAreaRoom(t *testing.T) int {
	t.Helper()
	std := stdELF().build()
	mem := newMem(testMem)
	p, err := Load(mem, bytes.NewReader(std), int64(len(std)), Options{Modules: []Module{{Name: "m", Args: "a"}}})
	if err != nil {
		t.Fatal(err)
	}
	b := mem.Bytes()
	list := binary.LittleEndian.Uint32(b[p.EBX+InfoOffModsAddr:])
	line := binary.LittleEndian.Uint32(b[list+8:])
	return LowAreaEnd - int(line) - len("m ") - 1
}

// aoutWith returns aoutImage with its five kludge words (header_addr,
// load_addr, load_end_addr, bss_end_addr, entry_addr) changed by f and the
// checksum still valid.
func aoutWith(f func(w []uint32)) []byte {
	b := aoutImage()
	h := parseHeader(b[0x40:])
	w := []uint32{h.HeaderAddr, h.LoadAddr, h.LoadEndAddr, h.BSSEndAddr, h.EntryAddr}
	f(w)
	copy(b[0x40:], mbHeader(h.Flags, w...))
	return b
}

func TestFindHeader(t *testing.T) {
	img := aoutImage()
	h, off, err := FindHeader(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	flags := uint32(0x10003)
	want := Header{Magic: HeaderMagic, Flags: flags, Checksum: -(HeaderMagic + flags),
		HeaderAddr: 0x200040, LoadAddr: 0x200000, LoadEndAddr: 0x200800, BSSEndAddr: 0x201800, EntryAddr: 0x200100,
		ModeType: binary.LittleEndian.Uint32(img[0x60:]), Width: binary.LittleEndian.Uint32(img[0x64:]),
		Height: binary.LittleEndian.Uint32(img[0x68:]), Depth: binary.LittleEndian.Uint32(img[0x6c:])}
	if off != 0x40 || h != want {
		t.Errorf("FindHeader = %+v at %#x, want %+v at 0x40", h, off, want)
	}
}

// shentsizeAt returns a copy of the ELF image b with e_shentsize set to n.
func shentsizeAt(b []byte, n uint16) []byte {
	b = bytes.Clone(b)
	binary.LittleEndian.PutUint16(b[46:], n)
	return b
}

// phoffAt returns a copy of the ELF image b with e_phoff set to off.
func phoffAt(b []byte, off uint32) []byte {
	b = bytes.Clone(b)
	binary.LittleEndian.PutUint32(b[28:], off)
	return b
}

// TestLoadBSSOnlySegmentOffset loads a kernel whose last PT_LOAD is pure
// BSS (p_filesz 0) with a p_offset past the end of the file, as a linker
// or strip tool may leave it: nothing is read from the file for such a
// segment, so its offset must not matter, and its memory must be zeroed.
// TestLoadHeadroom checks that Options.Headroom bytes must stay free above
// everything placed: exactly that much fits, one byte more is refused.
func TestLoadHeadroom(t *testing.T) {
	std := stdELF().build()
	plan, err := Load(newMem(testMem), bytes.NewReader(std), int64(len(std)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	free := uint64(testMem) - uint64(plan.End)
	if _, err := Load(newMem(testMem), bytes.NewReader(std), int64(len(std)), Options{Headroom: free}); err != nil {
		t.Errorf("Headroom = all free memory (%d bytes): %v", free, err)
	}
	mem := newMem(testMem)
	_, err = Load(mem, bytes.NewReader(std), int64(len(std)), Options{Headroom: free + 1})
	var me *MemoryError
	if !errors.As(err, &me) || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Headroom one byte over: err = %v, want a *MemoryError", err)
	}
	if me.Need != testMem+1 || !strings.Contains(err.Error(), "bootstrap page tables") {
		t.Errorf("error %q (Need %#x), want Need %#x and a word on the bootstrap page tables", err, me.Need, testMem+1)
	}
	if i := changed(mem.Bytes()); i >= 0 {
		t.Errorf("a refused kernel changed guest memory at %#x", i)
	}
}

func TestLoadBSSOnlySegmentOffset(t *testing.T) {
	e := stdELF()
	e.symtab, e.strtab = nil, nil
	e.segs = append(e.segs, tSeg{vaddr: kv + 0x4000, paddr: kp + 0x4000, memsz: 0x2000})
	for _, off := range []uint32{0, 0x7fff_f000} {
		b := e.build()
		binary.LittleEndian.PutUint32(b[52+2*32+4:], off) // third program header's p_offset
		mem := newMem(testMem)
		p, err := Load(mem, bytes.NewReader(b), int64(len(b)), Options{})
		if err != nil {
			t.Fatalf("p_offset %#x: Load: %v", off, err)
		}
		if p.KernelEnd != kp+0x6000 {
			t.Errorf("p_offset %#x: KernelEnd %#x, want %#x", off, p.KernelEnd, kp+0x6000)
		}
		expectBytes(t, mem.Bytes(), kp+0x4000, make([]byte, 0x2000), "BSS-only segment")
	}
}

// A NetBSD kernel given no console= starts on the display (setup_console
// in multiboot.c), which this machine lacks: the plan says so in its
// Notices, which the CLI prints without -v. Other kernels read no
// console=, and get no notice.
func TestLoadConsoleNotice(t *testing.T) {
	std := stdELF().build()
	tests := []struct {
		name   string
		opts   Options
		notice bool
	}{
		{"NetBSD without console=", Options{Append: "-s root=ld0a", NetBSD: true}, true},
		{"NetBSD with no append line", Options{NetBSD: true}, true},
		{"NetBSD on the serial line", Options{Append: "console=com root=ld0a", NetBSD: true}, false},
		{"NetBSD on the display, as asked", Options{Append: "console=pc root=ld0a", NetBSD: true}, false},
		{"another kernel", Options{Append: "hello"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Load(newMem(testMem), bytes.NewReader(std), int64(len(std)), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			got := len(p.Notices) == 1 && strings.Contains(p.Notices[0], "no console= given") && slices.Contains(p.Warnings, p.Notices[0])
			if got != tt.notice || !tt.notice && len(p.Notices) != 0 {
				t.Errorf("notices %q (warnings %q), want a console notice: %v", p.Notices, p.Warnings, tt.notice)
			}
			if bp := p.Boot(); !slices.Equal(bp.Notices, p.Notices) {
				t.Errorf("boot plan notices %q, want %q", bp.Notices, p.Notices)
			}
		})
	}
}

// NetBSD's multiboot entry reads only the boot flags after the kernel
// name, the first console=, console_addr=, console_speed= and root=
// (optstr_get), and takes the command line's first word with a '/' as the
// boot path (setup_bootpath, sys/arch/i386/i386/multiboot.c): every other
// word, and a word that becomes the boot path, gets a notice, as the
// native handoff gives for the words it cannot pass.
func TestLoadNetBSDUnreadWords(t *testing.T) {
	std := stdELF().build()
	tests := []struct {
		name string
		opts Options
		want []string // a piece of each notice, in order
	}{
		{"all read", Options{Append: "-s console=com console_addr=0x3f8 console_speed=115200 root=ld0a", NetBSD: true}, nil},
		{"unknown words", Options{Append: "console=com root=ld0a single foo=bar", NetBSD: true},
			[]string{`"single" is ignored by NetBSD's multiboot entry`, `"foo=bar" is ignored by NetBSD's multiboot entry`}},
		{"a later console= and root=", Options{Append: "console=com root=ld0a root=wd0a console=pc", NetBSD: true},
			[]string{`"root=wd0a" is ignored: NetBSD's multiboot entry reads only the first root=`, `"console=pc" is ignored: NetBSD's multiboot entry reads only the first console=`}},
		{"a path becomes the boot path", Options{Append: "console=com root=ld0a init=/sbin/init single", NetBSD: true},
			[]string{`"init=/sbin/init" is ignored by NetBSD's multiboot entry, except that its "/sbin/init" becomes the booted kernel's path`, `"single" is ignored`}},
		{"only the first path", Options{Append: "console=com /a /b", NetBSD: true},
			[]string{`"/a" is ignored by NetBSD's multiboot entry, except that its "/a" becomes`, `"/b" is ignored by NetBSD's multiboot entry: it reads`}},
		{"a kernel name with a path takes it", Options{KernelName: "/netbsd", Append: "console=com /a", NetBSD: true},
			[]string{`"/a" is ignored by NetBSD's multiboot entry: it reads`}},
		{"another kernel reads its own", Options{Append: "init=/sbin/init single"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Load(newMem(testMem), bytes.NewReader(std), int64(len(std)), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Notices) != len(tt.want) {
				t.Fatalf("notices %q, want %d: %q", p.Notices, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(p.Notices[i], w) || !slices.Contains(p.Warnings, p.Notices[i]) {
					t.Errorf("notice %d %q (warnings %q), want %q", i, p.Notices[i], p.Warnings, w)
				}
			}
		})
	}
}
