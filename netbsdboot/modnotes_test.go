package netbsdboot

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/internal/bootelf/elftest"
)

// modKernel is a NetBSD kernel of the class whose text holds at 0x10 a
// module_init_md of 0x20 bytes that calls (E8 rel32) the functions at
// callees, offsets from the text's start; syms (by name, at offsets from
// the text's start) make its symbol table, or it has none when syms is
// nil.
func modKernel(class byte, callees []uint64, syms map[string]uint64) []byte {
	base, vbase := uint64(0x100000), uint64(0xc0100000)
	if class == 2 {
		base, vbase = 0x200000, 0xffffffff80200000
	}
	text := bytes.Repeat([]byte{0x90}, 0x200) // nop
	for i, c := range callees {
		at := uint64(0x12 + 5*i)
		text[at] = 0xe8
		binary.LittleEndian.PutUint32(text[at+1:], uint32(c-(at+5)))
	}
	f := elftest.File{
		Class: class, Entry: vbase,
		Segs: []elftest.Seg{{Flags: 5, Vaddr: vbase, Paddr: base, Data: text, Memsz: 0x1000}},
		Secs: []elftest.Sec{
			{Name: ".text", Type: 1, Flags: 6, Addr: vbase, Data: text},
			{Name: ".note.netbsd.ident", Type: 7, Data: elftest.NetBSDNote(false, 901000000)},
		},
	}
	if syms != nil {
		var ss []elftest.Sym
		for name, off := range syms {
			s := elftest.Sym{Name: name, Value: vbase + off, Shndx: 1}
			if name == "module_init_md" {
				s.Size = 0x20
			}
			ss = append(ss, s)
		}
		sym, str := elftest.Symtab(class, false, ss)
		f.Secs = append(f.Secs, elftest.Sec{Name: ".symtab", Type: 2, Data: sym, Link: 4, Info: 1},
			elftest.Sec{Name: ".strtab", Type: 3, Data: str})
	}
	return f.Build()
}

// module_init_md (NetBSD 9.1 sys/arch/x86/x86/x86_machdep.c:244-285) hands
// a file system image to md_root_setconf, a splash image to
// splash_setimage and an entropy seed to rnd_seed, and has none of them
// without their kernel options; NetBSD 5.99's passes over all but kmods;
// a kernel without MODULAR has no module_init_md. Judged by the symbol
// table, each module it will ignore gets a note; a kernel without symbols
// cannot be judged and gets none.
func TestLoadModuleNotes(t *testing.T) {
	all := map[string]uint64{"module_init_md": 0x10, "md_root_setconf": 0x100, "splash_setimage": 0x140, "rnd_seed": 0x180}
	// NetBSD 9.1's calls all three; 5.99's none.
	calls := []uint64{0x100, 0x140, 0x180}
	without := func(name string) map[string]uint64 {
		m := map[string]uint64{}
		for k, v := range all {
			if k != name {
				m[k] = v
			}
		}
		return m
	}
	fs := Module{Name: "root.fs", Data: pattern(5000, 4), Type: ModuleFS}
	splash := Module{Name: "splash.jpg", Data: pattern(300, 5), Type: ModuleImage}
	seed := Module{Name: "entropy-file", Data: rndSeed(512), Type: ModuleRnd}
	for _, tc := range []struct {
		name   string
		kernel []byte
		mods   []Module
		want   []string // a piece of each module note, in order
	}{
		{"all there and called", modKernel(1, calls, all), []Module{fs, splash, seed}, nil},
		{"amd64: all there and called", modKernel(2, calls, all), []Module{fs, splash, seed}, nil},
		{"no md_root_setconf", modKernel(1, calls[1:], without("md_root_setconf")), []Module{{Name: "k.kmod", Data: elftest.Kmod(1, 64)}, fs},
			[]string{"the kernel will ignore module 1 (root.fs, fs): it has no md_root_setconf (built without options MEMORY_DISK_HOOKS and MEMORY_DISK_DYNAMIC)"}},
		{"no splash_setimage", modKernel(2, []uint64{0x100, 0x180}, without("splash_setimage")), []Module{splash},
			[]string{"the kernel will ignore module 0 (splash.jpg, splash): it has no splash_setimage (built without options SPLASHSCREEN)"}},
		{"no rnd_seed", modKernel(1, calls[:2], without("rnd_seed")), []Module{seed},
			[]string{"the kernel will ignore module 0 (entropy-file, rndseed): it has no rnd_seed"}},
		{"module_init_md calls splash_setimage, not md_root_setconf", modKernel(1, calls[1:], all), []Module{fs},
			[]string{"the kernel will ignore module 0 (root.fs, fs): its module_init_md never calls md_root_setconf"}},
		{"amd64: module_init_md calls none, as 5.99's", modKernel(2, nil, all), []Module{fs, seed},
			[]string{"module 0 (root.fs, fs): its module_init_md never calls md_root_setconf", "module 1 (entropy-file, rndseed): its module_init_md never calls rnd_seed"}},
		{"not MODULAR, one module", modKernel(1, nil, without("module_init_md")), []Module{{Name: "k.kmod", Data: elftest.Kmod(1, 64)}},
			[]string{"the kernel will ignore module 0 (k.kmod): it has no module_init_md (built without options MODULAR)"}},
		{"not MODULAR, two modules", modKernel(1, nil, without("module_init_md")), []Module{fs, seed},
			[]string{"the kernel will ignore its 2 boot modules: it has no module_init_md"}},
		{"no symbols", modKernel(1, nil, nil), []Module{fs, splash, seed}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Load(newMem(), bytes.NewReader(tc.kernel), int64(len(tc.kernel)), Options{Append: "console=com", Modules: tc.mods})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, n := range p.Notices {
				if strings.Contains(n, "will ignore") {
					got = append(got, n)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("module notes %q, want %d: %q (all notices %q)", got, len(tc.want), tc.want, p.Notices)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("note %d %q, want %q", i, got[i], w)
				}
			}
		})
	}
}
