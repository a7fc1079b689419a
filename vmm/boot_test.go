package vmm

import (
	"bytes"
	"encoding/binary"
	"errors"
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

// nbMultibootKernel is a NetBSD-noted i386 ELF with a multiboot header
// (flags 2, memory information only), as GENERIC with options MULTIBOOT.
func nbMultibootKernel() []byte {
	magic, flags := uint32(multiboot.HeaderMagic), uint32(2)
	hdr := binary.LittleEndian.AppendUint32(nil, magic)
	hdr = binary.LittleEndian.AppendUint32(hdr, flags)
	hdr = binary.LittleEndian.AppendUint32(hdr, -(magic + flags))
	return elftest.File{Class: 1, Machine: 3, Entry: 0xc010000c,
		Segs: []elftest.Seg{{Vaddr: 0xc0100000, Paddr: 0x100000, Data: append(hdr, 0xf4), Memsz: 0x1000}},
		Secs: []elftest.Sec{{Name: ".note.netbsd.ident", Type: 7, Data: elftest.NetBSDNote(false, 901000000)}},
	}.Build()
}

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
	for _, tc := range []struct {
		name  string
		image []byte
		want  bootplan.Protocol
		is    []error
	}{
		{"multiboot guest", guests.Demo, bootplan.Multiboot, nil},
		{"NetBSD i386", nbKernel(1, 3), bootplan.NetBSD, nil},
		{"NetBSD amd64", nbKernel(2, 62), bootplan.NetBSD, nil},
		{"NetBSD sh3: native, refused by the loader", nbKernel(1, 42), bootplan.NetBSD, nil},
		{"plain ELF", plainELF, bootplan.Auto, []error{ErrNoBootProtocol, multiboot.ErrNotMultiboot, netbsdboot.ErrNotNetBSD}},
		{"text", []byte("hello"), bootplan.Auto, []error{ErrNoBootProtocol, netbsdboot.ErrNotELF}},
		{"NetBSD ELF with a broken multiboot header", badSum, bootplan.NetBSD, nil},
		{"plain ELF with a broken multiboot header", badSumPlain, bootplan.Auto, []error{multiboot.ErrBadChecksum}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := chooseProtocol(tc.image)
			if got != tc.want {
				t.Errorf("protocol %v, want %v", got, tc.want)
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
		{"module type", nbKernel(1, 3), Config{Modules: []multiboot.Module{{Name: "x", Data: []byte("\x7fELF"), Args: "initrd"}}}, 0, netbsdboot.ErrModule, "Modules", "check the modules and their types"},
		{"root without a partition, native", nbKernel(1, 3), Config{Append: "console=com root=ld0"}, 0, netbsdboot.ErrAppend, "Append", "root="},
		{"root without a partition, multiboot", nbMultibootKernel(), Config{Append: "console=com root=ld0"}, 0, multiboot.ErrAppend, "Append", "root="},
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
