package vmm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/bootplan"
	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/internal/bootelf/elftest"
	"github.com/smolvmm/smolvmm/multiboot"
	"github.com/smolvmm/smolvmm/netbsdboot"
)

// nbKernel is a minimal NetBSD-noted ELF of the class and machine.
func nbKernel(class byte, machine uint16) []byte {
	vbase, base := uint64(0xc0100000), uint64(0x100000)
	if class == 2 {
		vbase, base = 0xffffffff80200000, 0x200000
	}
	return elftest.File{Class: class, Machine: machine, Entry: vbase,
		Segs: []elftest.Seg{{Vaddr: vbase, Paddr: base, Data: []byte{0xf4}, Memsz: 0x1000}},
		Secs: []elftest.Sec{{Name: ".note.netbsd.ident", Type: 7, Data: elftest.NetBSDNote(false, 599001500)}},
	}.Build()
}

// kaslrKernel is an amd64 NetBSD kernel linked relocatable, as
// GENERIC_KASLR: ET_REL with the ident note and locore's start.
func kaslrKernel() []byte {
	sym, str := elftest.Symtab(2, false, []elftest.Sym{{Name: "start", Value: 0x20, Shndx: 1}})
	return elftest.File{Class: 2, Type: 1, Secs: []elftest.Sec{
		{Name: ".text", Type: 1, Flags: 6, Data: make([]byte, 0x100)},
		{Name: ".note.netbsd.ident", Type: 7, Data: elftest.NetBSDNote(false, 901000000)},
		{Name: ".symtab", Type: 2, Data: sym, Link: 4, Info: 1},
		{Name: ".strtab", Type: 3, Data: str},
	}}.Build()
}

// xenKernel is an i386 NetBSD kernel for Xen PV, as XEN3PAE_DOMU: a
// __xen_guest section and p_paddr = p_vaddr.
func xenKernel() []byte {
	return elftest.File{Class: 1, Machine: 3, Entry: 0xc0100000,
		Segs: []elftest.Seg{{Vaddr: 0xc0100000, Paddr: 0xc0100000, Data: []byte{0xf4}, Memsz: 0x1000}},
		Secs: []elftest.Sec{
			{Name: ".note.netbsd.ident", Type: 7, Data: elftest.NetBSDNote(false, 901000000)},
			{Name: "__xen_guest", Type: 1, Data: []byte("GUEST_OS=netbsd,LOADER=generic\x00")},
		},
	}.Build()
}

// nbMultibootKernel is a NetBSD-noted i386 ELF with a multiboot header
// (flags 2, memory information only), as GENERIC with options MULTIBOOT.
func nbMultibootKernel() []byte { return elftest.NetBSDMultibootKernel() }

// TestMultibootNetBSDAppend checks that a NetBSD kernel booted by
// multiboot gets the append line the native handoff would accept, with
// every boot flag where NetBSD's multiboot entry reads them, and that
// other multiboot kernels get it unchanged.
func TestMultibootNetBSDAppend(t *testing.T) {
	cmdline := func(t *testing.T, mem *guestmem.Memory, p bootplan.Plan) string {
		b := mem.Bytes()
		at := binary.LittleEndian.Uint32(b[p.EBX+16:])
		n := bytes.IndexByte(b[at:], 0)
		return string(b[at : int(at)+n])
	}
	for _, tc := range []struct {
		name, append, want string
		image              []byte
	}{
		{"NetBSD", "console=com root=ld0a -s", "netbsd -s console=com root=ld0a", nbMultibootKernel()},
		{"other kernel", "console=com root=ld0 -s", "demo console=com root=ld0 -s", guests.Demo},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := guestmem.New(make([]byte, 16<<20))
			name := strings.Fields(tc.want)[0]
			p, err := loadKernel(mem, tc.image, name, Config{Append: tc.append})
			if err != nil {
				t.Fatal(err)
			}
			if p.Protocol != bootplan.Multiboot {
				t.Fatalf("protocol %v", p.Protocol)
			}
			if got := cmdline(t, mem, p); got != tc.want {
				t.Errorf("command line %q, want %q", got, tc.want)
			}
		})
	}
}

func TestChooseProtocol(t *testing.T) {
	plainELF := elftest.File{Entry: 0xc0100000, Segs: []elftest.Seg{{Vaddr: 0xc0100000, Paddr: 0x100000, Data: []byte{0xf4}}}}.Build()
	// The multiboot magic with flags 2 and a zero checksum at the start of
	// the text.
	badHeader := []byte{0x02, 0xb0, 0xad, 0x1b, 2, 0, 0, 0, 0, 0, 0, 0}
	badSum := elftest.File{Entry: 0xc0100000,
		Segs: []elftest.Seg{{Vaddr: 0xc0100000, Paddr: 0x100000, Data: badHeader}},
		Secs: []elftest.Sec{{Name: ".note.netbsd.ident", Type: 7, Data: elftest.NetBSDNote(false, 599001500)}},
	}.Build()
	badSumPlain := elftest.File{Entry: 0xc0100000, Segs: []elftest.Seg{{Vaddr: 0xc0100000, Paddr: 0x100000, Data: badHeader}}}.Build()
	// A multiboot2 header (magic, architecture i386, length 24, checksum,
	// end tag), 8-byte aligned in the text, as NetBSD 10 has one: amd64
	// without a v1 header, i386 after its v1 header.
	le, magic2, magic1 := binary.LittleEndian, uint32(0xE85250D6), uint32(multiboot.HeaderMagic)
	mb2 := le.AppendUint32(nil, magic2)
	mb2 = le.AppendUint32(mb2, 0)
	mb2 = le.AppendUint32(mb2, 24)
	mb2 = le.AppendUint32(mb2, -(magic2 + 24))
	mb2 = le.AppendUint32(le.AppendUint32(mb2, 0), 8)
	mb2Only := func(note bool) []byte {
		f := elftest.File{Class: 2, Entry: 0xffffffff80200000,
			Segs: []elftest.Seg{{Vaddr: 0xffffffff80200000, Paddr: 0x200000, Data: append(make([]byte, 16), mb2...), Memsz: 0x1000}}}
		if note {
			f.Secs = []elftest.Sec{{Name: ".note.netbsd.ident", Type: 7, Data: elftest.NetBSDNote(false, 1000000000)}}
		}
		return f.Build()
	}
	v1 := le.AppendUint32(le.AppendUint32(le.AppendUint32(nil, magic1), 2), -(magic1 + 2))
	bothHeaders := elftest.File{Class: 1, Machine: 3, Entry: 0xc0100000,
		Segs: []elftest.Seg{{Vaddr: 0xc0100000, Paddr: 0x100000, Data: append(append(v1, 0, 0, 0, 0), mb2...), Memsz: 0x1000}},
		Secs: []elftest.Sec{{Name: ".note.netbsd.ident", Type: 7, Data: elftest.NetBSDNote(false, 1000000000)}},
	}.Build()
	for _, tc := range []struct {
		name    string
		image   []byte
		modules int
		want    bootplan.Protocol
		reason  string
		is      []error
	}{
		{"multiboot guest", guests.Demo, 0, bootplan.Multiboot, "", nil},
		{"multiboot guest with modules", guests.Demo, 2, bootplan.Multiboot, "", nil},
		{"NetBSD i386", nbKernel(1, 3), 0, bootplan.NetBSD, "", nil},
		{"NetBSD i386 with modules", nbKernel(1, 3), 1, bootplan.NetBSD, "", nil},
		{"NetBSD amd64", nbKernel(2, 62), 0, bootplan.NetBSD, "", nil},
		{"NetBSD sh3: native, refused by the loader", nbKernel(1, 42), 0, bootplan.NetBSD, "", nil},
		{"NetBSD i386 with a multiboot header", nbMultibootKernel(), 0, bootplan.Multiboot, "", nil},
		{"NetBSD i386 with a multiboot header and modules", nbMultibootKernel(), 1, bootplan.NetBSD, reasonNetBSDModules, nil},
		{"NetBSD amd64 with a multiboot header", nbMultiboot64(false), 0, bootplan.NetBSD, reasonNetBSDELF64, nil},
		{"NetBSD amd64 with a multiboot header and modules", nbMultiboot64(false), 1, bootplan.NetBSD, reasonNetBSDModules, nil},
		{"NetBSD amd64 with the a.out kludge", nbMultiboot64(true), 0, bootplan.Multiboot, "", nil},
		{"NetBSD amd64 with the a.out kludge and modules", nbMultiboot64(true), 1, bootplan.NetBSD, reasonNetBSDModules, nil},
		{"plain ELF", plainELF, 0, bootplan.Auto, "", []error{ErrNoBootProtocol, multiboot.ErrNotMultiboot, netbsdboot.ErrNotNetBSD}},
		{"text", []byte("hello"), 0, bootplan.Auto, "", []error{ErrNoBootProtocol, netbsdboot.ErrNotELF}},
		{"NetBSD ELF with a broken multiboot header", badSum, 0, bootplan.NetBSD, "", nil},
		{"plain ELF with a broken multiboot header", badSumPlain, 0, bootplan.Auto, "", []error{multiboot.ErrBadChecksum}},
		{"multiboot2 only", mb2Only(false), 0, bootplan.Auto, "", []error{multiboot.ErrMultiboot2, multiboot.ErrNotMultiboot}},
		{"NetBSD amd64 10 with a multiboot2 header", mb2Only(true), 0, bootplan.NetBSD, "", nil},
		{"NetBSD i386 10 with multiboot v1 and v2 headers", bothHeaders, 0, bootplan.Multiboot, "", nil},
		{"NetBSD amd64 cut in its section headers", nbKernel(2, 62)[:len(nbKernel(2, 62))-10], 0, bootplan.Auto, "", []error{netbsdboot.ErrTruncated}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, reason, err := chooseProtocol(tc.image, tc.modules)
			if errors.Is(err, netbsdboot.ErrTruncated) && (errors.Is(err, ErrNoBootProtocol) || errors.Is(err, netbsdboot.ErrNotNetBSD)) {
				t.Errorf("error %v: a file cut short is called another kind of file", err)
			}
			if errors.Is(err, multiboot.ErrMultiboot2) && errors.Is(err, ErrNoBootProtocol) {
				t.Errorf("error %v: a multiboot2 kernel is called no multiboot kernel", err)
			}
			if got != tc.want || reason != tc.reason {
				t.Errorf("protocol %v (%q), want %v (%q)", got, reason, tc.want, tc.reason)
			}
			if len(tc.is) == 0 && err != nil {
				t.Errorf("error %v", err)
			}
			for _, e := range tc.is {
				if !errors.Is(err, e) {
					t.Errorf("error %v is not %v", err, e)
				}
			}
		})
	}
}

func TestLoadKernelProtocols(t *testing.T) {
	mem := func() *guestmem.Memory { return guestmem.New(make([]byte, 16<<20)) }
	for _, tc := range []struct {
		name    string
		image   []byte
		cfg     Config
		want    bootplan.Protocol
		errIs   error
		field   string
		hintHas string
	}{
		{"auto multiboot", guests.Demo, Config{}, bootplan.Multiboot, nil, "", ""},
		{"auto netbsd", nbKernel(1, 3), Config{Append: "console=com"}, bootplan.NetBSD, nil, "", ""},
		{"forced multiboot on a NetBSD kernel without a header", nbKernel(1, 3), Config{Boot: bootplan.Multiboot}, 0, multiboot.ErrNotMultiboot, "Kernel", "pass a multiboot v1 kernel or a NetBSD"},
		{"forced netbsd on the multiboot guest", guests.Demo, Config{Boot: bootplan.NetBSD}, 0, netbsdboot.ErrNotNetBSD, "Kernel", "pass a multiboot v1 kernel or a NetBSD"},
		{"sh3", nbKernel(1, 42), Config{}, 0, netbsdboot.ErrMachine, "Kernel", "i386 or amd64"},
		{"amd64 KASLR kernel", kaslrKernel(), Config{}, 0, netbsdboot.ErrKASLR, "Kernel", "without KASLR, netbsd-GENERIC"},
		{"Xen PV kernel", xenKernel(), Config{}, 0, netbsdboot.ErrXenPV, "Kernel", "not built for Xen, netbsd-GENERIC"},
		{"module type", nbKernel(1, 3), Config{Modules: []multiboot.Module{{Name: "x", Data: []byte("\x7fELF"), Args: "initrd"}}}, 0, netbsdboot.ErrModule, "Modules", "check the modules and their types"},
		{"root without a partition, native", nbKernel(1, 3), Config{Append: "console=com root=ld0"}, 0, netbsdboot.ErrAppend, "Append", "root="},
		{"root without a partition, multiboot", nbMultibootKernel(), Config{Append: "console=com root=ld0"}, 0, multiboot.ErrAppend, "Append", "root="},
		// A NetBSD kernel cut short is called that, with the advice to
		// fetch it again, whether the end is lost from its section
		// headers (looking for the ident note) or from a segment
		// (loading it).
		{"amd64 kernel cut in its section headers", nbKernel(2, 62)[:len(nbKernel(2, 62))-10], Config{}, 0, netbsdboot.ErrTruncated, "Kernel", "cut short: download or copy it again"},
		{"kernel cut in a segment", cutInSegment(), Config{}, 0, netbsdboot.ErrTruncated, "Kernel", "cut short: download or copy it again"},
		{"module past what i386's locore maps", nbKernel(1, 3), Config{Modules: []multiboot.Module{{Name: "huge.img", Data: make([]byte, netbsdboot.BootMapI386), Args: "fs"}}},
			0, netbsdboot.ErrBootMap, "Modules", "pass smaller or fewer modules: more memory does not help"},
		// Refusals of the kernel file the loader words itself name
		// the field for an embedder.
		{"relocatable ELF", relocatable(guests.Demo), Config{}, 0, multiboot.ErrUnsupportedELF, "Kernel", ""},
		{"fs module", nbKernel(1, 3), Config{Modules: []multiboot.Module{{Name: "root.img", Data: []byte("ffs"), Args: "fs"}}}, bootplan.NetBSD, nil, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := loadKernel(mem(), tc.image, "kernel", tc.cfg)
			if tc.errIs != nil {
				if !errors.Is(err, tc.errIs) {
					t.Fatalf("error %v, want %v", err, tc.errIs)
				}
				if f, h := loadHint(err); f != tc.field || !strings.Contains(h, tc.hintHas) {
					t.Errorf("field %q hint %q, want %q and %q", f, h, tc.field, tc.hintHas)
				}
				return
			}
			if err != nil {
				t.Fatalf("loadKernel: %v", err)
			}
			if p.Protocol != tc.want || len(p.Regions) == 0 {
				t.Errorf("plan %+v", p)
			}
		})
	}
}

// TestLoadHintModules: a kmod built for another NetBSD release than the
// kernel's got the hint to check the modules' types, which are right;
// the hint is now to take the kmod of the kernel's release.
func TestLoadHintModules(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		hintHas string
	}{
		{"kmod of another release", fmt.Errorf("%w: %w: module 0 (m.kmod) was built for NetBSD 9.3", netbsdboot.ErrModule, netbsdboot.ErrKmodVersion), "kmod from the kernel's own NetBSD release"},
		{"kmod for another machine", fmt.Errorf("%w: module 0 (m.kmod), a kmod, does not suit an i386 kernel", netbsdboot.ErrModule), "check the modules and their types"},
		// multiboot says the window is full; the hint what to pass.
		{"loader window full", fmt.Errorf("%w: module 0 command line (651265 bytes) would end at 0x9f001, past 0x9f000", multiboot.ErrLowAreaFull), "pass fewer or shorter modules"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if f, h := loadHint(tc.err); f != "Modules" || !strings.Contains(h, tc.hintHas) {
				t.Errorf("field %q hint %q, want Modules and %q", f, h, tc.hintHas)
			}
		})
	}
}

// TestLoadHintCommandLine: a multiboot command line the loader refuses
// names the Config field its text came from (the kernel's name, a
// module's, Append), and a boot protocol that is none of bootplan's is
// an ErrConfig naming Boot: both had no field.
func TestLoadHintCommandLine(t *testing.T) {
	mem := func() *guestmem.Memory { return guestmem.New(make([]byte, 16<<20)) }
	mod := func(name, args string) []multiboot.Module {
		return []multiboot.Module{{Name: name, Data: []byte("data"), Args: args}}
	}
	for _, tc := range []struct {
		name    string // the kernel's
		cfg     Config
		errIs   []error
		field   string
		hintHas string
	}{
		{"demo", Config{Append: strings.Repeat("x", 300)}, []error{multiboot.ErrCmdline}, "Append", "shorten the command line"},
		{"demo", Config{Append: "a\x00b"}, []error{multiboot.ErrCmdline}, "Append", "NUL byte"},
		{"my kernel", Config{}, []error{multiboot.ErrCmdline}, "Kernel", "without white space"},
		{"demo", Config{Modules: mod("init\x00rd", "")}, []error{multiboot.ErrCmdline}, "Modules", "NUL bytes out of the modules'"},
		{"demo", Config{Modules: mod("initrd", "a\x00")}, []error{multiboot.ErrCmdline}, "Modules", "NUL bytes out of the modules'"},
		{"demo", Config{Boot: bootplan.Protocol(7)}, []error{bootplan.ErrProtocol, ErrConfig}, "Boot", "bootplan.Auto"},
	} {
		t.Run(tc.field+" "+tc.hintHas, func(t *testing.T) {
			_, err := loadKernel(mem(), guests.Demo, tc.name, tc.cfg)
			for _, e := range tc.errIs {
				if !errors.Is(err, e) {
					t.Fatalf("error %v, want %v", err, e)
				}
			}
			if f, h := loadHint(err); f != tc.field || !strings.Contains(h, tc.hintHas) {
				t.Errorf("%v: field %q hint %q, want %q and %q", err, f, h, tc.field, tc.hintHas)
			}
		})
	}
}

// cutInSegment is a NetBSD i386 kernel whose ident note (a PT_NOTE, no
// sections) is whole but whose text segment runs past the file's end.
func cutInSegment() []byte {
	b := elftest.File{Entry: 0xc0100000, Segs: []elftest.Seg{
		{Type: 4, Data: elftest.NetBSDNote(false, 901000000)},
		{Vaddr: 0xc0100000, Paddr: 0x100000, Data: make([]byte, 0x2000)},
	}}.Build()
	return b[:len(b)-0x100]
}

// mbHeader is a multiboot v1 header with flags, followed by addrs (the
// a.out kludge's five address fields, when flags has bit 16).
func mbHeader(flags uint32, addrs ...uint32) []byte {
	le := binary.LittleEndian
	h := le.AppendUint32(nil, multiboot.HeaderMagic)
	h = le.AppendUint32(h, flags)
	h = le.AppendUint32(h, -(multiboot.HeaderMagic + flags))
	for _, a := range addrs {
		h = le.AppendUint32(h, a)
	}
	return h
}

// nbMultiboot64 is a NetBSD-noted ELF64 amd64 kernel (linked at
// 0xffffffff80200000, loaded at 2 MiB) with a multiboot v1 header at the
// start of its text: flags 2 (memory information) as i386 GENERIC's, or
// with the a.out kludge, whose addresses load the whole file so that the
// header lands at 2 MiB and enter just after it.
func nbMultiboot64(kludge bool) []byte {
	build := func(hdr []byte) []byte {
		return elftest.File{Class: 2, Machine: 62, Entry: 0xffffffff80200000,
			Segs: []elftest.Seg{{Vaddr: 0xffffffff80200000, Paddr: 0x200000, Data: append(hdr, 0xf4), Memsz: 0x1000}},
			Secs: []elftest.Sec{{Name: ".note.netbsd.ident", Type: 7, Data: elftest.NetBSDNote(false, 1000000000)}},
		}.Build()
	}
	if !kludge {
		return build(mbHeader(2))
	}
	flags := uint32(multiboot.FlagMemoryInfo | multiboot.FlagAOutKludge)
	image := build(mbHeader(flags, 0, 0, 0, 0, 0))
	_, off, err := multiboot.FindHeader(bytes.NewReader(image), int64(len(image)))
	if err != nil {
		panic(err)
	}
	// header_addr, load_addr (file offset 0), load_end_addr and
	// bss_end_addr 0 (the whole file, no BSS), entry_addr after the
	// header; the checksum covers only magic and flags.
	const at = 0x200000
	for i, v := range []uint32{at, at - uint32(off), 0, 0, at + 32} {
		binary.LittleEndian.PutUint32(image[off+12+4*int64(i):], v)
	}
	return image
}

// bootinfoModules returns the native handoff's BTINFO_MODULELIST (module
// count, then each module's name) from the bootinfo table whose address
// is the third stack word above the plan's ESP; ok is false without one.
func bootinfoModules(t *testing.T, mem *guestmem.Memory, p bootplan.Plan) (names []string, ok bool) {
	t.Helper()
	le, b := binary.LittleEndian, mem.Bytes()
	table := le.Uint32(b[p.ESP+12:])
	for i := range le.Uint32(b[table:]) {
		rec := le.Uint32(b[table+4+4*i:])
		if le.Uint32(b[rec+4:]) != netbsdboot.BtinfoModuleList {
			continue
		}
		body := b[rec+8:]
		for j := range le.Uint32(body) {
			path := body[8+92*j : 8+92*j+80]
			names = append(names, string(path[:bytes.IndexByte(path, 0)]))
		}
		return names, true
	}
	return nil, false
}

// TestNetBSDModulesBootNatively: NetBSD's multiboot entry never reads the
// multiboot module list (NetBSD 9.1 arch/i386/i386/multiboot.c), so a
// NetBSD kernel given modules boots by the native handoff, whose
// BTINFO_MODULELIST the kernel reads, even when it has a multiboot
// header; forced to multiboot it is refused rather than booted without
// its modules. Other multiboot kernels keep multiboot's module list.
func TestNetBSDModulesBootNatively(t *testing.T) {
	kmod := []multiboot.Module{{Name: "miniroot.kmod", Data: elftest.Kmod(1, 104)}}
	t.Run("auto, NetBSD with a multiboot header", func(t *testing.T) {
		mem := guestmem.New(make([]byte, 16<<20))
		p, err := loadKernel(mem, nbMultibootKernel(), "netbsd", Config{Append: "console=com", Modules: kmod})
		if err != nil {
			t.Fatal(err)
		}
		if p.Protocol != bootplan.NetBSD || p.EAX == multiboot.BootloaderMagic {
			t.Fatalf("protocol %v, EAX %#x: want the native handoff", p.Protocol, p.EAX)
		}
		if names, ok := bootinfoModules(t, mem, p); !ok || len(names) != 1 || names[0] != "miniroot.kmod" {
			t.Errorf("BTINFO_MODULELIST %q (found %t), want miniroot.kmod", names, ok)
		}
		if p.Reason != reasonNetBSDModules {
			t.Errorf("reason %q, want %q", p.Reason, reasonNetBSDModules)
		}
	})
	t.Run("auto, NetBSD with a multiboot header, no modules", func(t *testing.T) {
		p, err := loadKernel(guestmem.New(make([]byte, 16<<20)), nbMultibootKernel(), "netbsd", Config{Append: "console=com"})
		if err != nil || p.Protocol != bootplan.Multiboot {
			t.Fatalf("protocol %v, error %v: want multiboot, as before", p.Protocol, err)
		}
	})
	t.Run("forced multiboot, NetBSD", func(t *testing.T) {
		mem := guestmem.New(make([]byte, 16<<20))
		p, err := loadKernel(mem, nbMultibootKernel(), "netbsd", Config{Append: "console=com", Modules: kmod, Boot: bootplan.Multiboot})
		if !errors.Is(err, multiboot.ErrNetBSDModules) {
			t.Fatalf("plan %v, error %v: want %v", p.Protocol, err, multiboot.ErrNetBSDModules)
		}
		if !strings.Contains(err.Error(), "miniroot.kmod") {
			t.Errorf("error %q does not name the module", err)
		}
		if f, h := loadHint(err); f != "Boot" || !strings.Contains(h, "native handoff") {
			t.Errorf("field %q hint %q, want Boot and the native handoff", f, h)
		}
		if !bytes.Equal(mem.Bytes(), make([]byte, 16<<20)) {
			t.Error("the refused kernel was written to guest memory")
		}
	})
	for _, boot := range []bootplan.Protocol{bootplan.Auto, bootplan.Multiboot} {
		t.Run(boot.String()+", not NetBSD", func(t *testing.T) {
			mem := guestmem.New(make([]byte, 16<<20))
			p, err := loadKernel(mem, guests.Demo, "demo", Config{Modules: []multiboot.Module{{Name: "initrd.img", Data: []byte("data"), Args: "initrd"}}, Boot: boot})
			if err != nil || p.Protocol != bootplan.Multiboot {
				t.Fatalf("protocol %v, error %v: want multiboot", p.Protocol, err)
			}
			b, le := mem.Bytes(), binary.LittleEndian
			if flags, count := le.Uint32(b[p.EBX:]), le.Uint32(b[p.EBX+20:]); flags&0x8 == 0 || count != 1 {
				t.Errorf("multiboot info flags %#x, mods_count %d: want flag 0x8 and one module", flags, count)
			}
		})
	}
}

// TestNetBSDELF64WithMultibootHeader: a multiboot v1 loader takes only
// ELF32 files unless the header carries the a.out kludge's addresses, so
// an amd64 NetBSD kernel with a plain multiboot header boots by the
// native handoff under auto, and forced to multiboot is refused with the
// native handoff as the way; with the kludge, multiboot loads it as
// before.
func TestNetBSDELF64WithMultibootHeader(t *testing.T) {
	for _, tc := range []struct {
		name   string
		kludge bool
		boot   bootplan.Protocol
		want   bootplan.Protocol
		format string
	}{
		{"auto", false, bootplan.Auto, bootplan.NetBSD, "elf64"},
		{"auto, a.out kludge", true, bootplan.Auto, bootplan.Multiboot, "aout-kludge"},
		{"forced multiboot, a.out kludge", true, bootplan.Multiboot, bootplan.Multiboot, "aout-kludge"},
		{"forced netbsd", false, bootplan.NetBSD, bootplan.NetBSD, "elf64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := loadKernel(guestmem.New(make([]byte, 16<<20)), nbMultiboot64(tc.kludge), "netbsd", Config{Append: "console=com", Boot: tc.boot})
			if err != nil {
				t.Fatal(err)
			}
			if p.Protocol != tc.want || p.Format != tc.format {
				t.Errorf("protocol %v, format %q; want %v, %q", p.Protocol, p.Format, tc.want, tc.format)
			}
		})
	}
	t.Run("forced multiboot", func(t *testing.T) {
		_, err := loadKernel(guestmem.New(make([]byte, 16<<20)), nbMultiboot64(false), "netbsd", Config{Append: "console=com", Boot: bootplan.Multiboot})
		if !errors.Is(err, multiboot.ErrUnsupportedELF) || !errors.Is(err, ErrNetBSDELF64) {
			t.Fatalf("error %v, want %v and %v", err, multiboot.ErrUnsupportedELF, ErrNetBSDELF64)
		}
		if f, h := loadHint(err); f != "Boot" || !strings.Contains(h, "native handoff") {
			t.Errorf("field %q hint %q, want Boot and the native handoff", f, h)
		}
	})
}

// relocatable is the ELF image with e_type ET_REL, as an object file
// given for a kernel has.
func relocatable(image []byte) []byte {
	b := bytes.Clone(image)
	b[16], b[17] = 1, 0
	return b
}
