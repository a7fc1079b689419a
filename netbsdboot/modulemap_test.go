package netbsdboot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/bootplan"
	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/internal/bootelf/elftest"
)

// kmod64TextOff is where elftest.Kmod(2, n)'s .text starts: the ELF64
// header, four section headers, one symbol and a one-byte string table;
// its text is the n-345 bytes after, aligned to 1.
const kmod64TextOff = 64 + 4*64 + 24 + 1

// firstModuleAt is where Load puts the first module after the class's
// stdKernel and its symbols.
func firstModuleAt(t *testing.T, class byte) uint64 {
	t.Helper()
	k := stdKernel(class).Build()
	p, err := Load(newMem(), bytes.NewReader(k), int64(len(k)), Options{Append: "console=com", Modules: []Module{{Name: "m", Data: []byte{1}, Type: ModuleFS}}})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	i := slices.IndexFunc(p.Regions, func(r bootplan.Region) bool { return strings.HasPrefix(r.What, "module m") })
	return p.Regions[i].Addr
}

// kmodSections is an amd64 kmod whose allocated sections are secs, after
// its symbol table and strings, each with the sh_addralign given (elftest
// writes 4).
func kmodSections(secs []elftest.Sec, aligns []uint64) []byte {
	sym, str := elftest.Symtab(2, false, []elftest.Sym{{Name: "f", Shndx: 3}})
	all := append([]elftest.Sec{
		{Name: ".symtab", Type: 2, Data: sym, Link: 2, Info: 1, Entsize: 24},
		{Name: ".strtab", Type: 3, Data: str},
	}, secs...)
	b := elftest.File{Class: 2, Type: 1, Secs: all}.Build()
	shoff := binary.LittleEndian.Uint64(b[40:])
	for i, a := range aligns {
		// Section 0 is null, 1 and 2 the symbols: secs start at 3.
		binary.LittleEndian.PutUint64(b[shoff+uint64(3+i)*64+48:], a)
	}
	return b
}

// TestKobjAlloc: kobj_load sizes a kmod's code (SHF_EXECINSTR), read-only
// data (no SHF_WRITE) and data (the rest) over its SHT_PROGBITS and
// SHT_NOBITS sections, aligning each section to its sh_addralign first
// (9.1 sys/kern/subr_kobj.c:393-416), whether allocated or not, and takes
// each total, page rounded, from module_map (:424-462).
func TestKobjAlloc(t *testing.T) {
	for _, tc := range []struct {
		name   string
		secs   []elftest.Sec
		aligns []uint64
		want   kobjAlloc
		bytes  uint64 // of module_map
	}{
		{"code only", []elftest.Sec{{Name: ".text", Type: 1, Flags: 6, Data: make([]byte, 5)}}, []uint64{4},
			kobjAlloc{text: 5}, 4096},
		{
			"each kind, aligned",
			[]elftest.Sec{
				{Name: ".text", Type: 1, Flags: 6, Data: make([]byte, 5)},                 // 5
				{Name: ".text.x", Type: 1, Flags: 6, Data: make([]byte, 3)},               // at 16: 19
				{Name: ".rodata", Type: 1, Flags: 2, Data: make([]byte, 10)},              // 10
				{Name: ".comment", Type: 1, Flags: 0x30, Data: make([]byte, 7)},           // not allocated, copied all the same: at 16, 23
				{Name: ".data", Type: 1, Flags: 3, Data: make([]byte, 1)},                 // 1
				{Name: ".bss", Type: 8, Flags: 3, Data: make([]byte, 4096)},               // at 64: 4160
				{Name: ".note", Type: 7, Flags: 2, Data: make([]byte, 100)},               // neither PROGBITS nor NOBITS
				{Name: ".rodata.big", Type: 8, Flags: 2, Data: make([]byte, 3*4096-23+1)}, // at 23 (align 1): 3 pages and a byte
			},
			[]uint64{4, 16, 8, 16, 4, 64, 4, 1},
			kobjAlloc{text: 19, rodata: 3*4096 + 1, data: 4160},
			4096 + 4*4096 + 2*4096,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := kmodSections(tc.secs, tc.aligns)
			got, why, _ := checkKobj(b, true)
			if why != "" {
				t.Fatalf("checkKobj refused it: %s", why)
			}
			if got != tc.want || got.mapBytes() != tc.bytes {
				t.Errorf("checkKobj = %+v (%d bytes of module_map), want %+v (%d)", got, got.mapBytes(), tc.want, tc.bytes)
			}
		})
	}
}

// TestLoadAMD64ModuleMap: amd64's kobj_load links each boot kmod into
// module_map, which is what the 96 MiB locore maps at boot leaves past
// what was loaded (9.1 sys/arch/amd64/amd64/machdep.c:1582-1584,
// locore.S:644-647, 868-871): BOOTMAP_VA_SIZE less the page-rounded endpa.
// A kmod that no longer finds room there, after the kmods before it, fails
// "out of memory" and the kernel boots without it, so it is refused before
// anything is written, whatever the guest's memory (ErrModule and
// ErrBootMap). A module after it shrinks the room too. i386 links its
// modules in kernel_map.
func TestLoadAMD64ModuleMap(t *testing.T) {
	at := firstModuleAt(t, 2)
	const text = 32 << 20
	kmod := elftest.Kmod(2, kmod64TextOff+text) // ends 345 bytes into its last page
	fsAt := at + text + pageSize
	// An fs image after it, leaving module_map exactly the kmod's text:
	// BootMapAMD64 - (fsAt + pad) = text.
	pad := BootMapAMD64 - fsAt - text
	fs := func(n uint64) Module { return Module{Name: "fs.img", Data: make([]byte, n), Type: ModuleFS} }
	half := Module{Name: "half.kmod", Data: elftest.Kmod(2, kmod64TextOff+16<<20)}
	bss := kmodSections([]elftest.Sec{
		{Name: ".text", Type: 1, Flags: 6, Data: make([]byte, 16)},
		{Name: ".bss", Type: 8, Flags: 3, Data: make([]byte, 96<<20)},
	}, []uint64{16, 64})
	for _, tc := range []struct {
		name  string
		class byte
		mods  []Module
		want  []string // nil: it loads
	}{
		{"text filling module_map", 2, []Module{{Name: "miniroot.kmod", Data: kmod}, fs(pad)}, nil},
		{"a byte more of the fs image after it", 2, []Module{{Name: "miniroot.kmod", Data: kmod}, fs(pad + 1)}, []string{
			fmt.Sprintf("module 0 (miniroot.kmod), a kmod, needs %d bytes (32.0 MiB) of the amd64 kernel's module_map to be linked (code %d, read-only data 0, data 0 bytes, as kobj_load sums them, each page rounded)", text, text),
			fmt.Sprintf("but only %d bytes (32.0 MiB) are left", text-pageSize),
			fmt.Sprintf("what was loaded (ending at %#x)", fsAt+pad+1),
			`kobj_load would fail ("out of memory") and the kernel would boot without it`,
		}},
		{"a byte more of text", 2, []Module{{Name: "miniroot.kmod", Data: elftest.Kmod(2, kmod64TextOff+text+1)}, fs(pad)}, []string{
			fmt.Sprintf("module 0 (miniroot.kmod), a kmod, needs %d bytes (32.0 MiB)", text+pageSize),
			fmt.Sprintf("(code %d, read-only data 0, data 0 bytes,", text+1),
			fmt.Sprintf("but only %d bytes (32.0 MiB) are left", text),
		}},
		// 48 MiB of text after 50 MiB loaded: the auditor's case.
		{"text larger than what the boot mapping leaves", 2, []Module{{Name: "miniroot.kmod", Data: elftest.Kmod(2, 48<<20)}}, []string{
			"module 0 (miniroot.kmod), a kmod, needs 50331648 bytes (48.0 MiB)",
			fmt.Sprintf("but only %d bytes", BootMapAMD64-(at+48<<20)),
		}},
		// Each fits alone; the third finds the first two's 32 MiB taken.
		{"kmods sharing module_map", 2, []Module{half, {Name: "rnd", Data: rndSeed(1), Type: ModuleRnd}, {Name: "half2.kmod", Data: half.Data}, {Name: "half3.kmod", Data: half.Data}}, []string{
			"module 3 (half3.kmod), a kmod, needs 16777216 bytes (16.0 MiB)",
			fmt.Sprintf("module_map holds %d bytes, of which the kmods before it, module 0 (half.kmod) and module 2 (half2.kmod), take 33554432", BootMapAMD64-(at+48<<20+4*pageSize)),
		}},
		{"BSS past what is left", 2, []Module{{Name: "bss.kmod", Data: bss}}, []string{
			"module 0 (bss.kmod), a kmod, needs 100667392 bytes (96.0 MiB) of the amd64 kernel's module_map to be linked (code 16, read-only data 0, data 100663296 bytes,",
		}},
		{"i386: kernel_map", 1, []Module{{Name: "miniroot.kmod", Data: elftest.Kmod(1, 48<<20)}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := stdKernel(tc.class).Build()
			const memSize = 128 << 20 // above BootMapAMD64 and the tables
			mem := guestmem.New(bytes.Repeat([]byte{fill}, memSize))
			_, err := Load(mem, bytes.NewReader(k), int64(len(k)), Options{Append: "console=com root=md0a", Modules: tc.mods})
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrModule) || !errors.Is(err, ErrBootMap) || errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v, want ErrModule and ErrBootMap", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nwant it saying %q", err, w)
				}
			}
			b := make([]byte, memSize)
			mem.ReadAt(b, 0)
			if n := bytes.Count(b, []byte{fill}); n != memSize {
				t.Errorf("refused, yet %d bytes of memory were written", memSize-n)
			}
		})
	}
}
