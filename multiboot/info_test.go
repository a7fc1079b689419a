package multiboot

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
)

// infoCase is one loader configuration whose information structure is
// checked byte for byte.
type infoCase struct {
	name    string
	image   []byte
	memSize int
	opts    Options
	flags   uint32
	cmdline string
	mods    []wantMod
	shdrs   bool
}

// wantMod is a module entry as the guest must see it.
type wantMod struct {
	start, end uint32
	line       string
}

func TestInfoStructure(t *testing.T) {
	std := stdELF().build()
	stripped := stdELF()
	stripped.symtab = nil
	modA := pattern(5000, 7)
	tests := []infoCase{
		{
			name: "netbsd with symbols", image: std, memSize: testMem,
			opts:    Options{KernelName: "netbsd", Append: "-z console=com root=ld0a"},
			flags:   0x265, // memory, cmdline, ELF shdr, mmap, loader name
			cmdline: "netbsd -z console=com root=ld0a", shdrs: true,
		},
		{
			// NetBSD's setup_howto reads flags only from the word after
			// the name: -s and -v at the end would be lost.
			name: "NetBSD: flags gathered after the name", image: std, memSize: testMem,
			opts:    Options{KernelName: "netbsd", Append: "console=com -s root=ld0a\t-v -s", NetBSD: true},
			flags:   0x265,
			cmdline: "netbsd -sv console=com root=ld0a", shdrs: true,
		},
		{
			name: "another kernel: the line as given", image: std, memSize: testMem,
			opts:    Options{KernelName: "k", Append: "root=ld0  -s console=ttyS0 console_addr=0x2f8"},
			flags:   0x265,
			cmdline: "k root=ld0  -s console=ttyS0 console_addr=0x2f8", shdrs: true,
		},
		{
			// The console words NetBSD reads as meant pass unchanged.
			name: "NetBSD: console words", image: std, memSize: testMem,
			opts:    Options{KernelName: "netbsd", Append: "console=com console_addr=0x3f8 console_speed=115200 root=ld0a", NetBSD: true},
			flags:   0x265,
			cmdline: "netbsd console=com console_addr=0x3f8 console_speed=115200 root=ld0a", shdrs: true,
		},
		{
			// Wedges and interfaces: findroot passes them to setroot
			// by name (x86_autoconf.c:383-386).
			name: "NetBSD: root on a wedge by name", image: std, memSize: testMem,
			opts:    Options{KernelName: "netbsd", Append: "console=com root=NAME=netbsdroot", NetBSD: true},
			flags:   0x265,
			cmdline: "netbsd console=com root=NAME=netbsdroot", shdrs: true,
		},
		{
			name: "NetBSD: root on dk0, then NFS", image: std, memSize: testMem,
			opts:    Options{KernelName: "netbsd", Append: "console=com root=dk0 root=vioif0", NetBSD: true},
			flags:   0x265,
			cmdline: "netbsd console=com root=dk0 root=vioif0", shdrs: true,
		},
		{
			name: "no symbols, no append, default name", image: stripped.build(), memSize: 3 * mib,
			flags: 0x245, cmdline: "kernel",
		},
		{
			name: "modules after the symbols", image: std, memSize: 64 * mib,
			opts: Options{KernelName: "gnumach", Append: "root=device:hd0s1", Modules: []Module{
				{Name: "ext2fs.static", Data: modA, Args: "--host-priv-port=1"},
				{Name: "exec", Data: []byte{1, 2, 3}},
				{Name: "empty"},
			}},
			flags: 0x26d, cmdline: "gnumach root=device:hd0s1", shdrs: true,
			mods: []wantMod{
				{kp + 0x5000, kp + 0x5000 + 5000, "ext2fs.static --host-priv-port=1"},
				{kp + 0x7000, kp + 0x7003, "exec"},
				{kp + 0x8000, kp + 0x8000, "empty"},
			},
		},
		{
			name: "a.out kludge: no symbols", image: aoutImage(), memSize: testMem,
			opts: Options{KernelName: "k", Append: "x"}, flags: 0x245, cmdline: "k x",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkInfo(t, tc) })
	}
}

// checkInfo loads tc and compares every byte of the information structure
// and of what its pointers lead to.
func checkInfo(t *testing.T, tc infoCase) {
	mem := newMem(tc.memSize)
	p, err := Load(mem, bytes.NewReader(tc.image), int64(len(tc.image)), tc.opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	b := mem.Bytes()
	le := binary.LittleEndian
	info := b[p.EBX : p.EBX+InfoSize]
	ptr := func(off int) uint32 { return le.Uint32(info[off:]) }

	// Every structure the info points to must sit in the window, apart
	// from every other one.
	var regions [][2]uint32
	region := func(addr uint32, n int, what string) []byte {
		t.Helper()
		end := addr + uint32(n)
		if addr < LowAreaStart || end > LowAreaEnd {
			t.Fatalf("%s [%#x, %#x) outside [%#x, %#x)", what, addr, end, LowAreaStart, LowAreaEnd)
		}
		for _, r := range regions {
			if addr < r[1] && r[0] < end {
				t.Errorf("%s [%#x, %#x) overlaps [%#x, %#x)", what, addr, end, r[0], r[1])
			}
		}
		regions = append(regions, [2]uint32{addr, end})
		return b[addr:end]
	}
	region(p.EBX, InfoSize, "info structure")

	want := make([]byte, InfoSize)
	put := func(off int, v uint32) { le.PutUint32(want[off:], v) }
	put(0, tc.flags)
	put(4, 640)
	put(8, uint32((tc.memSize-mib)/1024))
	put(16, ptr(16))
	put(44, 72)
	put(48, ptr(48))
	put(64, ptr(64))
	if got := region(ptr(16), len(tc.cmdline)+1, "cmdline"); string(got) != tc.cmdline+"\x00" {
		t.Errorf("cmdline = %q, want %q", got, tc.cmdline+"\x00")
	}
	if got := region(ptr(64), 8, "loader name"); string(got) != "smolvmm\x00" {
		t.Errorf("loader name = %q", got)
	}
	mmap := region(ptr(48), 72, "mmap")
	wantMmap := []struct {
		base, length uint64
		typ          uint32
	}{{0, 0xA0000, 1}, {0xA0000, 0x60000, 2}, {0x100000, uint64(tc.memSize) - 0x100000, 1}}
	for i, e := range wantMmap {
		m := mmap[24*i:]
		if le.Uint32(m) != 20 || le.Uint64(m[4:]) != e.base || le.Uint64(m[12:]) != e.length || le.Uint32(m[20:]) != e.typ {
			t.Errorf("mmap entry %d = % x, want size 20 base %#x length %#x type %d", i, m[:24], e.base, e.length, e.typ)
		}
	}
	if tc.shdrs {
		put(28, tShnum)
		put(32, 40)
		put(36, ptr(36))
		put(40, tSecShstr)
		checkShdrs(t, b, tc.image, region(ptr(36), 40*tShnum, "section headers"))
	}
	if len(tc.mods) > 0 {
		put(20, uint32(len(tc.mods)))
		put(24, ptr(24))
		arr := region(ptr(24), 16*len(tc.mods), "module list")
		for i, m := range tc.mods {
			e := arr[16*i:]
			line := region(le.Uint32(e[8:]), len(m.line)+1, fmt.Sprintf("module %d string", i))
			got := wantMod{le.Uint32(e), le.Uint32(e[4:]), string(line)}
			if got != (wantMod{m.start, m.end, m.line + "\x00"}) || le.Uint32(e[12:]) != 0 {
				t.Errorf("module %d = %+v reserved %#x, want %+v reserved 0", i, got, le.Uint32(e[12:]), m)
			}
			expectBytes(t, b, uint64(m.start), tc.opts.Modules[i].Data, fmt.Sprintf("module %d data", i))
		}
		if last := tc.mods[len(tc.mods)-1]; p.End != last.end {
			t.Errorf("Plan.End = %#x, want the last module's end %#x", p.End, last.end)
		}
	}
	if !bytes.Equal(info, want) {
		for i := range want {
			if info[i] != want[i] {
				t.Errorf("info byte %d = %#x, want %#x", i, info[i], want[i])
			}
		}
	}
}

// checkShdrs compares the copied section header array with the file's:
// equal except sh_addr of .symtab and .strtab, which must hold the physical
// addresses where the tables' bytes now are.
func checkShdrs(t *testing.T, mem, image, got []byte) {
	t.Helper()
	le := binary.LittleEndian
	file := image[shdrOffset(image):][:40*tShnum]
	want := bytes.Clone(file)
	for _, i := range []int{tSecSymtab, tSecStrtab} {
		sh := got[40*i:]
		addr, off, size := le.Uint32(sh[12:]), le.Uint32(file[40*i+16:]), le.Uint32(file[40*i+20:])
		if addr < kp || addr%4 != 0 {
			t.Errorf("section %d sh_addr %#x: want a 4-byte aligned address above 1 MiB", i, addr)
		}
		expectBytes(t, mem, uint64(addr), image[off:off+size], fmt.Sprintf("section %d contents", i))
		le.PutUint32(want[40*i+12:], addr)
	}
	if le.Uint32(got[40*tSecStrtab+12:]) < le.Uint32(got[40*tSecSymtab+12:]) {
		t.Error("string table placed before the symbol table")
	}
	if !bytes.Equal(got, want) {
		t.Errorf("section headers differ from the file's beyond the patched sh_addr:\n got % x\nwant % x", got, want)
	}
}
