package netbsdboot

import (
	"bytes"
	"encoding/binary"
	"maps"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/internal/bootelf/elftest"
)

// modKernel is a NetBSD kernel of the class whose symbols (by name, at
// offsets from the text's start) make its symbol table, or it has none
// when syms is nil. Each function calls names, of those syms holds, is
// 0x20 bytes that call (E8 rel32) them.
func modKernel(class byte, calls map[string][]string, syms map[string]uint64) []byte {
	base, vbase := uint64(0x100000), uint64(0xc0100000)
	if class == 2 {
		base, vbase = 0x200000, 0xffffffff80200000
	}
	text := bytes.Repeat([]byte{0x90}, 0x200) // nop
	for fn, callees := range calls {
		at, ok := syms[fn]
		if !ok {
			continue
		}
		at += 2
		for _, c := range callees {
			to, ok := syms[c]
			if !ok {
				continue
			}
			text[at] = 0xe8
			binary.LittleEndian.PutUint32(text[at+1:], uint32(to-(at+5)))
			at += 5
		}
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
			if _, ok := calls[name]; ok {
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
// a kernel without MODULAR has no module_init_md. -current's (2023)
// leaves the seed to x86_rndseed, which every kernel calls, MODULAR or
// not. Judged by the symbol table, each module it will ignore gets a
// note; a kernel without symbols cannot be judged and gets none.
func TestLoadModuleNotes(t *testing.T) {
	all := map[string]uint64{"module_init_md": 0x10, "md_root_setconf": 0x100, "splash_setimage": 0x140, "rnd_seed": 0x180}
	with := func(m map[string]uint64, name string, at uint64) map[string]uint64 {
		out := maps.Clone(m)
		out[name] = at
		return out
	}
	without := func(m map[string]uint64, name string) map[string]uint64 {
		out := maps.Clone(m)
		delete(out, name)
		return out
	}
	current := with(all, "x86_rndseed", 0x40)
	// NetBSD 9.1's calls all three; 5.99's none; -current's the first two,
	// and x86_rndseed rnd_seed.
	calls91 := map[string][]string{"module_init_md": {"md_root_setconf", "splash_setimage", "rnd_seed"}}
	calls := func(callees ...string) map[string][]string { return map[string][]string{"module_init_md": callees} }
	callsCurrent := map[string][]string{"module_init_md": {"md_root_setconf", "splash_setimage"}, "x86_rndseed": {"rnd_seed"}}
	fs := Module{Name: "root.fs", Data: pattern(5000, 4), Type: ModuleFS}
	splash := Module{Name: "splash.jpg", Data: pattern(300, 5), Type: ModuleImage}
	seed := Module{Name: "entropy-file", Data: rndSeed(512), Type: ModuleRnd}
	kmod := Module{Name: "k.kmod", Data: elftest.Kmod(1, 64)}
	kmod64 := Module{Name: "k.kmod", Data: elftest.Kmod(2, 64)}
	for _, tc := range []struct {
		name   string
		kernel []byte
		mods   []Module
		want   []string // a piece of each module note, in order
	}{
		{"all there and called", modKernel(1, calls91, all), []Module{fs, splash, seed}, nil},
		{"amd64: all there and called", modKernel(2, calls91, all), []Module{fs, splash, seed}, nil},
		{"no md_root_setconf", modKernel(1, calls("splash_setimage", "rnd_seed"), without(all, "md_root_setconf")), []Module{kmod, fs},
			[]string{"the kernel will ignore module 1 (root.fs, fs): it has no md_root_setconf (built without options MEMORY_DISK_HOOKS and MEMORY_DISK_DYNAMIC)"}},
		{"no splash_setimage", modKernel(2, calls("md_root_setconf", "rnd_seed"), without(all, "splash_setimage")), []Module{splash},
			[]string{"the kernel will ignore module 0 (splash.jpg, splash): it has no splash_setimage (built without options SPLASHSCREEN)"}},
		{"no rnd_seed", modKernel(1, calls("md_root_setconf", "splash_setimage"), without(all, "rnd_seed")), []Module{seed},
			[]string{"the kernel will ignore module 0 (entropy-file, rndseed): it has no rnd_seed"}},
		{"module_init_md calls splash_setimage, not md_root_setconf", modKernel(1, calls("splash_setimage", "rnd_seed"), all), []Module{fs},
			[]string{"the kernel will ignore module 0 (root.fs, fs): its module_init_md never calls md_root_setconf"}},
		{"amd64: module_init_md calls none, as 5.99's", modKernel(2, calls(), all), []Module{fs, seed},
			[]string{"module 0 (root.fs, fs): its module_init_md never calls md_root_setconf", "module 1 (entropy-file, rndseed): its module_init_md never calls rnd_seed"}},
		{"not MODULAR, one module", modKernel(1, nil, without(all, "module_init_md")), []Module{kmod},
			[]string{"the kernel will ignore module 0 (k.kmod): it has no module_init_md (built without options MODULAR)"}},
		{"not MODULAR, two modules", modKernel(1, nil, without(all, "module_init_md")), []Module{fs, seed},
			[]string{"the kernel will ignore its 2 boot modules: it has no module_init_md"}},
		{"no symbols", modKernel(1, nil, nil), []Module{fs, splash, seed}, nil},
		{"-current: x86_rndseed hands the seed to rnd_seed", modKernel(2, callsCurrent, current), []Module{fs, splash, seed}, nil},
		{"-current i386: x86_rndseed hands the seed to rnd_seed", modKernel(1, callsCurrent, current), []Module{seed}, nil},
		{"-current, not MODULAR: x86_rndseed still reads the seed", modKernel(2, callsCurrent, without(current, "module_init_md")), []Module{seed}, nil},
		{"-current, not MODULAR: the seed is read, the rest ignored", modKernel(2, callsCurrent, without(current, "module_init_md")), []Module{fs, seed, kmod64},
			[]string{"the kernel will ignore module 0 (root.fs, fs): it has no module_init_md (built without options MODULAR)",
				"the kernel will ignore module 2 (k.kmod, kmod): it has no module_init_md (built without options MODULAR)"}},
		{"x86_rndseed never calls rnd_seed", modKernel(2, map[string][]string{"module_init_md": nil, "x86_rndseed": nil}, current), []Module{seed},
			[]string{"the kernel will ignore module 0 (entropy-file, rndseed): its x86_rndseed never calls rnd_seed"}},
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
